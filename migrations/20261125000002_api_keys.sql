-- API keys of the control store. Only a SHA-256 of each key is kept: keys are 256-bit random
-- strings, so a fast hash is enough (as with GitHub tokens), and the plain key is shown once.
CREATE SCHEMA IF NOT EXISTS switchyard;

CREATE TABLE switchyard.api_keys (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    scope      text        NOT NULL,
    -- First characters of the key, shown in listings so an operator can tell keys apart.
    prefix     text        NOT NULL,
    key_hash   bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT api_keys_scope_check CHECK (scope IN ('admin', 'publish', 'read')),
    CONSTRAINT api_keys_name_check CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_keys_key_hash_unique UNIQUE (key_hash)
);

-- One active key per name, so `keys revoke NAME` is unambiguous; revoked names may be reused.
CREATE UNIQUE INDEX api_keys_active_name_unique ON switchyard.api_keys (name) WHERE revoked_at IS NULL;
