-- Sessions: one per query or command run through Loupe or recorded into it. Append-only apart
-- from the counters and the end state. The user's name and the connection's name and kind are
-- copied in, so the list needs no joins to filter and reads the same after a rename.
CREATE TABLE sessions (
    id              TEXT    PRIMARY KEY NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (id),
    username        TEXT    NOT NULL,
    connection_id   TEXT,
    connection_name TEXT    NOT NULL,
    connection_kind TEXT    NOT NULL,
    session_type    TEXT    NOT NULL,
    verb            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    summary         TEXT    NOT NULL,
    -- The whole input as submitted; a re-run runs exactly this. Not read by the list.
    input           TEXT    NOT NULL,
    -- The server node that runs (or receives) the session; it marks its own running sessions
    -- interrupted when it starts again after dying.
    node_id         TEXT    NOT NULL,
    started_at_us   BIGINT  NOT NULL,
    ended_at_us     BIGINT,
    exit_code       INTEGER,
    event_count     BIGINT  NOT NULL DEFAULT 0,
    input_bytes     BIGINT  NOT NULL DEFAULT 0,
    output_bytes    BIGINT  NOT NULL DEFAULT 0,
    row_count       BIGINT  NOT NULL DEFAULT 0,
    labels          TEXT    NOT NULL DEFAULT '{}',
    rerun_of        TEXT,
    truncated       BOOLEAN NOT NULL DEFAULT FALSE,
    error           TEXT
);
-- The list is read newest first, keyset-paginated on (started_at_us, id). Each index leads
-- with one filter column, then the list order, then every other filter column: whichever
-- filters a request combines, the most selective one's index yields candidates in list order
-- and the others are checked inside the index, so the page and the capped count are index-only
-- scans that never touch the table (see list_sessions and count_sessions).
CREATE INDEX sessions_by_start ON sessions
    (started_at_us, id, username, connection_name, session_type, status);
CREATE INDEX sessions_by_user_start ON sessions
    (username, started_at_us, id, connection_name, session_type, status);
CREATE INDEX sessions_by_connection_start ON sessions
    (connection_name, started_at_us, id, username, session_type, status);
CREATE INDEX sessions_by_type_start ON sessions
    (session_type, started_at_us, id, username, connection_name, status);
CREATE INDEX sessions_by_status_start ON sessions
    (status, started_at_us, id, username, connection_name, session_type);
CREATE INDEX sessions_by_node_status ON sessions (node_id, status);

-- The activity log. Output and rows live in their own tables; these rows carry their sizes.
CREATE TABLE session_events (
    session_id TEXT    NOT NULL REFERENCES sessions (id),
    seq        BIGINT  NOT NULL,
    at_us      BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    summary    TEXT    NOT NULL,
    body       TEXT,
    code       TEXT,
    exit_code  INTEGER,
    columns    TEXT,
    bytes      BIGINT  NOT NULL DEFAULT 0,
    row_count  BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, seq)
);

-- Text output in chunks of at most 64 KiB with their byte offsets: any window of any output is
-- one range scan of the primary key.
CREATE TABLE output_chunks (
    session_id  TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    byte_offset BIGINT  NOT NULL,
    at_us       BIGINT  NOT NULL,
    stream      TEXT    NOT NULL,
    data        BYTEA   NOT NULL,
    PRIMARY KEY (session_id, seq, byte_offset)
);

-- Result rows in pages of at most 1000, as JSON arrays; same idea as output_chunks.
CREATE TABLE row_pages (
    session_id TEXT    NOT NULL,
    seq        BIGINT  NOT NULL,
    first_row  BIGINT  NOT NULL,
    row_count  INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (session_id, seq, first_row)
);

-- Read access to one session for a user or a group.
CREATE TABLE session_shares (
    id            TEXT   PRIMARY KEY NOT NULL,
    session_id    TEXT   NOT NULL REFERENCES sessions (id),
    user_id       TEXT   REFERENCES users (id),
    group_id      TEXT   REFERENCES user_groups (id) ON DELETE CASCADE,
    note          TEXT,
    created_by    TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX session_shares_by_session ON session_shares (session_id);
CREATE INDEX session_shares_by_user ON session_shares (user_id, session_id);
CREATE INDEX session_shares_by_group ON session_shares (group_id, session_id);
