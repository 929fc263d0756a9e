-- The consistency validator's closed windows: one row per window and category, written when
-- the window closes (windows with no events are not stored), pruned after
-- SWITCHYARD_VALIDATION_REPORT_RETENTION_DAYS. Served by GET /v1/validation/reports.
CREATE TABLE switchyard.validation_reports (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL,
    category            text        NOT NULL,
    -- Events resolved in the window, and those both paths carried with the same payload.
    expected            bigint      NOT NULL,
    matched             bigint      NOT NULL,
    -- NULL when nothing was expected.
    consistency_percent double precision,
    threshold_percent   double precision NOT NULL,
    breached            boolean     NOT NULL,
    -- {"missing_in_realtime": n, ...}: all six types.
    discrepancies       jsonb       NOT NULL,
    -- {"payload_mismatch": [ids], ...}: up to five per type seen.
    examples            jsonb       NOT NULL,
    -- {"websocket": {p50, p95, p99}, "realtime": {...}, "difference": {...}} in ms.
    latency_ms          jsonb       NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT validation_reports_category_check CHECK (
        category IN ('critical', 'performance', 'user_activity', 'system', 'debug')
    ),
    CONSTRAINT validation_reports_window_check CHECK (window_end >= window_start)
);

-- Newest first, optionally per category.
CREATE INDEX validation_reports_window_end ON switchyard.validation_reports (window_end DESC, id DESC);
CREATE INDEX validation_reports_category_window_end
    ON switchyard.validation_reports (category, window_end DESC);
