-- Terminal sessions: shell and ssh connections, and keyframes of their screens. See the SQLite
-- migration of the same name for what each part is.
ALTER TABLE connections DROP CONSTRAINT IF EXISTS connections_kind_check;
ALTER TABLE connections ADD CONSTRAINT connections_kind_check
    CHECK (kind IN ('postgres', 'mysql', 'sqlite', 'command', 'shell', 'ssh'));
ALTER TABLE connections ADD COLUMN terminal TEXT;

CREATE TABLE terminal_keyframes (
    session_id  TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    byte_offset BIGINT  NOT NULL,
    at_us       BIGINT  NOT NULL,
    cols        INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    screen      TEXT    NOT NULL,
    PRIMARY KEY (session_id, seq, byte_offset)
);
CREATE INDEX terminal_keyframes_by_time ON terminal_keyframes (session_id, at_us);
