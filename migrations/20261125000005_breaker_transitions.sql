-- Every state change of every circuit breaker: the policy's own (trips, probes, recoveries)
-- and the operators' (forced states, resets, with the API key's name as actor).
--
-- Rows are written by a background task fed by the breaker's transition stream, never on the
-- call path: `at` is when the breaker changed, `created_at` when the row reached the store
-- (later, or never if the store was down; those are counted and logged instead).
CREATE TABLE switchyard.breaker_transitions (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    breaker    text        NOT NULL,
    from_state text        NOT NULL,
    to_state   text        NOT NULL,
    -- The policy's verdict, the probe, or the operator's action and reason, in words.
    reason     text        NOT NULL,
    -- NULL for the policy's own transitions.
    actor      text,
    at         timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT breaker_transitions_from_state_check CHECK (
        from_state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled')
    ),
    CONSTRAINT breaker_transitions_to_state_check CHECK (
        to_state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled')
    )
);

-- The history of one breaker, newest first.
CREATE INDEX breaker_transitions_breaker_at ON switchyard.breaker_transitions (breaker, at DESC, id DESC);
