-- Terminal sessions: shell and ssh connections, and keyframes of their screens.
--
-- SQLite cannot change a CHECK constraint in place, so connections is rebuilt with the two new
-- kinds (https://www.sqlite.org/lang_altertable.html#otheralter); nothing references it by
-- foreign key. `terminal` holds a shell or ssh connection's settings as JSON (the ssh key or
-- password is sealed in `secret`, like a database URL).
CREATE TABLE connections_new (
    id              TEXT    PRIMARY KEY NOT NULL,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL
                    CHECK (kind IN ('postgres', 'mysql', 'sqlite', 'command', 'shell', 'ssh')),
    session_type    TEXT    NOT NULL,
    command         TEXT,
    secret          BLOB,
    timeout_seconds INTEGER,
    tags            TEXT    NOT NULL DEFAULT '[]',
    created_at_us   BIGINT  NOT NULL,
    updated_at_us   BIGINT  NOT NULL,
    review          TEXT,
    terminal        TEXT
);
INSERT INTO connections_new
    (id, name, kind, session_type, command, secret, timeout_seconds, tags, created_at_us,
     updated_at_us, review)
SELECT id, name, kind, session_type, command, secret, timeout_seconds, tags, created_at_us,
       updated_at_us, review
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
CREATE UNIQUE INDEX connections_by_name ON connections (name);

-- The screen of a terminal session at a point of its output: `screen` is escape sequences that
-- draw it on a blank terminal of `cols`×`rows` (asciinema's avt dump), valid once the output
-- event `seq` has `byte_offset` bytes. Playback from any moment starts at the keyframe before
-- it and replays only the bytes after. Derived from the output: written beside it, not through
-- the event log, and a reader ignores one past the output it can read.
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
