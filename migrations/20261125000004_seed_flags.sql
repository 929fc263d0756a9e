-- The flags that govern the broadcast path (DESIGN.md), with the legacy defaults. Editable
-- like any other flag. Each one has a variant named `off` holding its safe value, so an
-- environment that has not been configured (the kill switch, or SWITCHYARD_ENVIRONMENT naming
-- an environment other than `production`) falls back to it.
INSERT INTO switchyard.flags (key, definition) VALUES
('broadcast.strategy', '{
  "key": "broadcast.strategy", "type": "string",
  "description": "Which delivery paths carry events: websocket (only switchyard''s own), dual (both, compared), realtime (the cut-over). The global override: wins over the per-category routes.",
  "variants": {"off": "websocket", "websocket": "websocket", "dual": "dual", "realtime": "realtime"},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "websocket",
    "rollout": {"percentage": 100, "variant": "websocket"}}}
}'),
('broadcast.category.critical', '{
  "key": "broadcast.category.critical", "type": "json",
  "description": "Route of critical events: enabled, percentage dual-written to Realtime (sticky by event id), adapters.",
  "variants": {"off": {"enabled": false, "percentage": 0, "adapters": ["websocket"]},
               "legacy": {"enabled": true, "percentage": 100, "adapters": ["websocket", "realtime"]}},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "legacy",
    "rollout": {"percentage": 100, "variant": "legacy"}}}
}'),
('broadcast.category.performance', '{
  "key": "broadcast.category.performance", "type": "json",
  "description": "Route of performance events: enabled, percentage dual-written to Realtime (sticky by event id), adapters.",
  "variants": {"off": {"enabled": false, "percentage": 0, "adapters": ["websocket"]},
               "legacy": {"enabled": true, "percentage": 50, "adapters": ["websocket"]}},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "legacy",
    "rollout": {"percentage": 100, "variant": "legacy"}}}
}'),
('broadcast.category.user_activity', '{
  "key": "broadcast.category.user_activity", "type": "json",
  "description": "Route of user_activity events: enabled, percentage dual-written to Realtime (sticky by event id), adapters.",
  "variants": {"off": {"enabled": false, "percentage": 0, "adapters": ["websocket"]},
               "legacy": {"enabled": false, "percentage": 0, "adapters": ["realtime"]}},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "legacy",
    "rollout": {"percentage": 100, "variant": "legacy"}}}
}'),
('broadcast.category.system', '{
  "key": "broadcast.category.system", "type": "json",
  "description": "Route of system events: enabled, percentage dual-written to Realtime (sticky by event id), adapters.",
  "variants": {"off": {"enabled": false, "percentage": 0, "adapters": ["websocket"]},
               "legacy": {"enabled": true, "percentage": 100, "adapters": ["websocket", "realtime"]}},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "legacy",
    "rollout": {"percentage": 100, "variant": "legacy"}}}
}'),
('broadcast.category.debug', '{
  "key": "broadcast.category.debug", "type": "json",
  "description": "Route of debug events: enabled, percentage dual-written to Realtime (sticky by event id), adapters.",
  "variants": {"off": {"enabled": false, "percentage": 0, "adapters": ["websocket"]},
               "legacy": {"enabled": false, "percentage": 0, "adapters": []}},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "legacy",
    "rollout": {"percentage": 100, "variant": "legacy"}}}
}'),
('dashboard.transport', '{
  "key": "dashboard.transport", "type": "string",
  "description": "Which transport a dashboard (targeting key = client id) listens on: the client-side rollout of Realtime. Answers websocket for everyone while the Realtime breaker is not closed.",
  "variants": {"off": "websocket", "websocket": "websocket", "realtime": "realtime"},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "websocket",
    "rollout": {"percentage": 0, "variant": "realtime"}}}
}'),
('realtime.breaker.mode', '{
  "key": "realtime.breaker.mode", "type": "string",
  "description": "The Realtime breaker: auto (by its failure policy), force_open, force_closed, disabled (every call passes, nothing is counted).",
  "variants": {"off": "auto", "auto": "auto", "force_open": "force_open", "force_closed": "force_closed", "disabled": "disabled"},
  "environments": {"production": {"enabled": true, "off_variant": "off", "default_variant": "auto",
    "rollout": {"percentage": 100, "variant": "auto"}}}
}'),
('validation.enabled', '{
  "key": "validation.enabled", "type": "boolean",
  "description": "Compare the two paths while events are dual-written (the legacy MONITORING_ENABLE_VALIDATION)."
}');

-- The seeds are version 1 of each flag: record them so history and restore cover them.
INSERT INTO switchyard.flag_audit (flag_key, actor, action, reason, before, after, version, revision)
SELECT key, 'migration', 'create', 'seeded with the legacy defaults', NULL, definition, 1, 1
FROM switchyard.flags;

UPDATE switchyard.flag_revision SET revision = 1;
