-- Guarded rollout plans, their audit trail, and scheduled flag changes.
--
-- A plan moves one flag's percentage in one environment through stages by itself. Each step
-- it takes is an ordinary audited flag write (actor `rollout:<id>`, in `flag_audit`) committed
-- in the same transaction as the plan's new state here; everything else that changes a plan
-- (created, paused, resumed, aborted, a guardrail breach) is a row in `rollout_events`, also
-- in the transaction of the change.

CREATE TABLE switchyard.rollouts (
    id                 uuid        PRIMARY KEY,
    flag_key           text        NOT NULL,
    environment        text        NOT NULL,
    -- [{"percentage": 10, "hold_ms": 600000}, ...]: validated by `switchyard::rollout`.
    stages             jsonb       NOT NULL,
    -- {"breaker_closed": [...], "min_consistency": 99.9, "max_realtime_p99_ms": 100}
    guardrails         jsonb       NOT NULL,
    on_breach          text        NOT NULL,
    status             text        NOT NULL,
    -- Index into `stages` of the stage in force; NULL before the first (after a rollback from
    -- stage 0, the flag is back at `initial_percentage`).
    stage              integer,
    percentage         integer     NOT NULL,
    -- The percentage the flag had in this environment when the plan started.
    initial_percentage integer     NOT NULL,
    -- When the stage in force was applied (or the plan resumed): its hold counts from here.
    stage_since        timestamptz NOT NULL,
    -- The flag version the plan last wrote or accepted: any other version means a human
    -- changed the flag underneath it, and the plan pauses.
    flag_version       bigint      NOT NULL,
    -- Why the status last changed, in words.
    reason             text        NOT NULL,
    created_by         text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rollouts_on_breach_check CHECK (on_breach IN ('rollback', 'abort')),
    CONSTRAINT rollouts_status_check CHECK (
        status IN ('running', 'paused', 'completed', 'rolled_back', 'aborted')
    ),
    CONSTRAINT rollouts_percentage_check CHECK (percentage BETWEEN 0 AND 100),
    CONSTRAINT rollouts_initial_percentage_check CHECK (initial_percentage BETWEEN 0 AND 100)
);

-- At most one live (running or paused) plan per flag and environment: a second is a 409.
CREATE UNIQUE INDEX rollouts_one_live_plan
    ON switchyard.rollouts (flag_key, environment) WHERE status IN ('running', 'paused');
CREATE INDEX rollouts_created_at ON switchyard.rollouts (created_at DESC);

-- Every change of a plan's state: who (an API key's name, or the plan itself), what, why.
CREATE TABLE switchyard.rollout_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollout_id  uuid        NOT NULL REFERENCES switchyard.rollouts (id),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    from_status text,
    to_status   text        NOT NULL,
    stage       integer,
    percentage  integer     NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollout_events_rollout_id ON switchyard.rollout_events (rollout_id, id);

-- A flag change to apply once at a time. The row is claimed (pending -> applied) in the
-- transaction of the flag write it causes (actor `schedule:<id>`), so it is applied exactly
-- once however many instances share the database and however often they restart.
CREATE TABLE switchyard.flag_schedules (
    id            uuid        PRIMARY KEY,
    flag_key      text        NOT NULL,
    environment   text        NOT NULL,
    at            timestamptz NOT NULL,
    -- {"action": "on" | "off" | "percentage", "percentage": n}
    change        jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'pending',
    -- Why it failed, or who cancelled it.
    reason        text,
    -- The flag version the change produced.
    flag_version  bigint,
    created_by    text        NOT NULL,
    cancelled_by  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flag_schedules_status_check CHECK (
        status IN ('pending', 'applied', 'cancelled', 'failed')
    )
);
CREATE INDEX flag_schedules_due ON switchyard.flag_schedules (at) WHERE status = 'pending';
CREATE INDEX flag_schedules_flag_key ON switchyard.flag_schedules (flag_key, at);
