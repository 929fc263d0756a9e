-- Every operator action on a circuit breaker (`POST /v1/breakers/{name}`), like the flag audit
-- log: who, when, why, the state found and the state the action sets. The row is committed
-- before the action takes effect, so no action happens unaudited: when the row cannot be
-- written the request fails (503) and the breaker is left as it was. The transitions the
-- action causes are in `breaker_transitions` as well, with the same actor.
CREATE TABLE switchyard.breaker_actions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    breaker      text        NOT NULL,
    action       text        NOT NULL,
    -- The API key's name.
    actor        text        NOT NULL,
    reason       text,
    before_state text        NOT NULL,
    after_state  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT breaker_actions_action_check CHECK (
        action IN ('force_open', 'force_closed', 'disable', 'reset', 'auto')
    ),
    CONSTRAINT breaker_actions_before_state_check CHECK (
        before_state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled')
    ),
    CONSTRAINT breaker_actions_after_state_check CHECK (
        after_state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled')
    )
);

-- The actions on one breaker, newest first.
CREATE INDEX breaker_actions_breaker_created_at
    ON switchyard.breaker_actions (breaker, created_at DESC, id DESC);
