-- The Realtime dead letter: events bound for the Realtime table that overflowed the in-memory
-- backlog while the Realtime target (another database) was failing. They wait here, in the
-- control store, and are replayed into the target when it is back, in stream order: epoch by
-- epoch (in the order each epoch first spilled), by offset within one (DESIGN.md invariant 2:
-- committed, held, or counted; never silently lost).
--
-- A row is the Realtime table's row (same columns, same types) plus the spill bookkeeping.
-- Rows are never updated: a replay writes them to the target and deletes them in one control
-- store transaction, so a crash in between replays them again, which the target's
-- `ON CONFLICT (id) DO NOTHING` makes harmless.
CREATE TABLE switchyard.realtime_dead_letter (
    -- Spill order: it orders the epochs for replay.
    id          bigint       GENERATED ALWAYS AS IDENTITY,
    event_id    uuid         NOT NULL,
    event_type  varchar(50)  NOT NULL,
    "timestamp" timestamptz  NOT NULL,
    source      varchar(100) NOT NULL,
    data        jsonb        NOT NULL,
    metadata    jsonb        NOT NULL DEFAULT '{}',
    category    varchar(20)  NOT NULL,
    -- The event's stream position (epoch, offset) in the run that accepted it.
    sequence_id bigint       NOT NULL,
    epoch       text         NOT NULL,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT realtime_dead_letter_pkey PRIMARY KEY (id),
    -- An event spills at most once; a second spill of the same id is a no-op.
    CONSTRAINT realtime_dead_letter_event_id_unique UNIQUE (event_id)
);

-- Replay reads the oldest epoch's rows by offset.
CREATE INDEX realtime_dead_letter_epoch_sequence
    ON switchyard.realtime_dead_letter (epoch, sequence_id);

COMMENT ON TABLE switchyard.realtime_dead_letter IS
    'Realtime events that overflowed the in-memory backlog; replayed into the target in stream order';
