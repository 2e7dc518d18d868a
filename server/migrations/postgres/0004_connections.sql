-- The databases and command targets people reach through Loupe. The target's URL (with its
-- password) is stored encrypted in the secret column; everything else is plain.
CREATE TABLE connections (
    id              TEXT    PRIMARY KEY NOT NULL,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('postgres', 'mysql', 'sqlite', 'command')),
    session_type    TEXT    NOT NULL,
    command         TEXT,
    secret          BYTEA,
    timeout_seconds INTEGER,
    tags            TEXT    NOT NULL DEFAULT '[]',
    created_at_us   BIGINT  NOT NULL,
    updated_at_us   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX connections_by_name ON connections (name);
