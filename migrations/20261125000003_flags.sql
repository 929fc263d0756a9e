-- Feature flags, their audit log and the flag set's global revision.
--
-- A flag's definition (type, variants, per-environment state) is one jsonb document in the
-- shape of `switchyard::flags::model::Flag`: the flag is always read and written whole, and
-- compiled into the in-memory snapshot that evaluation uses, so nothing queries inside it.

CREATE TABLE switchyard.flags (
    key        text        PRIMARY KEY,
    definition jsonb       NOT NULL,
    -- Increases by one on every write to this flag; it is the flag's ETag.
    version    bigint      NOT NULL DEFAULT 1,
    archived   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flags_key_format CHECK (key ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
    CONSTRAINT flags_version_positive CHECK (version >= 1)
);

-- One row: the revision of the whole flag set. Every flag write bumps it in the same
-- transaction (which also serializes flag writes) and NOTIFYs the new value.
CREATE TABLE switchyard.flag_revision (
    singleton  boolean     PRIMARY KEY DEFAULT true,
    revision   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flag_revision_singleton CHECK (singleton)
);
INSERT INTO switchyard.flag_revision (singleton, revision) VALUES (true, 0);

-- Every write, in the transaction of the write: who, when, what, why, before and after.
CREATE TABLE switchyard.flag_audit (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_key   text        NOT NULL,
    actor      text        NOT NULL,
    action     text        NOT NULL,
    reason     text,
    before     jsonb,
    after      jsonb,
    version    bigint      NOT NULL,
    revision   bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flag_audit_flag_key_id ON switchyard.flag_audit (flag_key, id DESC);
CREATE INDEX flag_audit_created_at ON switchyard.flag_audit (created_at);
