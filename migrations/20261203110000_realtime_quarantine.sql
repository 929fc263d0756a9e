-- The Realtime quarantine: events the Realtime target refused for their content (a data error,
-- SQLSTATE class 22; a constraint, class 23; a trigger's `raise exception`, P0001). The worker
-- splits a refused batch until it has found the rows the target will not take, writes the
-- rest, and sets those rows aside here with the error, so one bad event never stops the path
-- (DESIGN.md invariant 2: committed, held, counted or quarantined; never silently lost).
--
-- The row is kept as JSON text, not jsonb: what the target refused may be exactly what jsonb
-- cannot hold (a NUL character, escaped as \u0000 in the text). Rows are never updated; an
-- operator reads them, fixes the cause and re-sends or deletes them.
CREATE TABLE switchyard.realtime_quarantine (
    id          bigint       GENERATED ALWAYS AS IDENTITY,
    event_id    uuid         NOT NULL,
    -- The event's stream position (epoch, offset) in the run that accepted it.
    epoch       text         NOT NULL,
    sequence_id bigint       NOT NULL,
    -- The Realtime row as the worker tried to write it (compact JSON text).
    row_json    text         NOT NULL,
    -- The target's SQLSTATE (e.g. 22P05, 23514, P0001) and message.
    sqlstate    varchar(5),
    error       text         NOT NULL,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT realtime_quarantine_pkey PRIMARY KEY (id),
    -- An event is quarantined at most once; a second refusal of the same id is a no-op.
    CONSTRAINT realtime_quarantine_event_id_unique UNIQUE (event_id)
);

CREATE INDEX realtime_quarantine_created_at ON switchyard.realtime_quarantine (created_at);

COMMENT ON TABLE switchyard.realtime_quarantine IS
    'Realtime events the target refused for their content, set aside with the error so later events keep flowing';
