-- The Realtime table: what Supabase Realtime streams to dashboards as postgres_changes.
-- Columns are the legacy table's (REFERENCE.md section 1) plus switchyard's stream position
-- (epoch, sequence_id = offset) and the category it classified the event into, so a dashboard
-- that switches from Realtime to the WebSocket path can resume without a gap.
CREATE SCHEMA IF NOT EXISTS monitoring;

CREATE TABLE IF NOT EXISTS monitoring.monitoring_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type  varchar(50)  NOT NULL,
    "timestamp" timestamptz  NOT NULL,
    source      varchar(100) NOT NULL,
    data        jsonb        NOT NULL,
    metadata    jsonb        NOT NULL DEFAULT '{}',
    created_at  timestamptz  DEFAULT now(),
    category    varchar(20),
    sequence_id bigint,
    epoch       text
);

COMMENT ON COLUMN monitoring.monitoring_events.sequence_id IS 'switchyard stream offset within epoch';
COMMENT ON COLUMN monitoring.monitoring_events.epoch IS 'switchyard stream epoch (new on every start)';

-- The five legacy indexes.
CREATE INDEX IF NOT EXISTS idx_monitoring_events_timestamp
    ON monitoring.monitoring_events ("timestamp" DESC);
CREATE INDEX IF NOT EXISTS idx_monitoring_events_type_timestamp
    ON monitoring.monitoring_events (event_type, "timestamp" DESC);
CREATE INDEX IF NOT EXISTS idx_monitoring_events_source_timestamp
    ON monitoring.monitoring_events (source, "timestamp" DESC);
CREATE INDEX IF NOT EXISTS idx_monitoring_events_created_at
    ON monitoring.monitoring_events (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_monitoring_events_type_source_timestamp
    ON monitoring.monitoring_events (event_type, source, "timestamp" DESC);

-- Supabase creates this publication itself; a plain Postgres does not have it. Either way the
-- table ends up in it exactly once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        CREATE PUBLICATION supabase_realtime;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_publication_tables
        WHERE pubname = 'supabase_realtime' AND schemaname = 'monitoring' AND tablename = 'monitoring_events'
    ) THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE monitoring.monitoring_events;
    END IF;
END
$$;

-- Supabase's roles. Roles are global to the server, and several databases may be migrated at
-- once (tests do), so a concurrent creation by another migration counts as success.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['service_role', 'authenticated', 'anon'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;

-- The legacy docs promised these policies and never wrote them: the service role may do
-- everything, signed-in dashboards may read, anonymous clients get nothing.
ALTER TABLE monitoring.monitoring_events ENABLE ROW LEVEL SECURITY;

GRANT USAGE ON SCHEMA monitoring TO service_role, authenticated;
GRANT ALL ON monitoring.monitoring_events TO service_role;
GRANT SELECT ON monitoring.monitoring_events TO authenticated;
REVOKE ALL ON monitoring.monitoring_events FROM anon;

DROP POLICY IF EXISTS service_role_all ON monitoring.monitoring_events;
CREATE POLICY service_role_all ON monitoring.monitoring_events
    FOR ALL TO service_role USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS authenticated_read ON monitoring.monitoring_events;
CREATE POLICY authenticated_read ON monitoring.monitoring_events
    FOR SELECT TO authenticated USING (true);
