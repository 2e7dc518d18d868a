-- Who uses Loupe. Users are disabled, never deleted, so the history they left keeps its author.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'auditor', 'user')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    created_at_us BIGINT  NOT NULL,
    updated_at_us BIGINT  NOT NULL
);
-- Usernames are stored lower-cased, so this also makes them unique regardless of case.
CREATE UNIQUE INDEX users_by_username ON users (username);

CREATE TABLE user_groups (
    id            TEXT   PRIMARY KEY NOT NULL,
    name          TEXT   NOT NULL,
    description   TEXT   NOT NULL DEFAULT '',
    created_at_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_groups_by_name ON user_groups (name);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
-- "Which groups is this user in", asked on every visibility check.
CREATE INDEX group_members_by_user ON group_members (user_id, group_id);

-- Browser logins. Only a hash of the cookie's secret is stored.
CREATE TABLE login_sessions (
    token_hash    TEXT   PRIMARY KEY NOT NULL,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
CREATE INDEX login_sessions_by_user ON login_sessions (user_id);

-- API tokens for the CLI and agents. Only a hash of the secret is stored.
CREATE TABLE api_tokens (
    id              TEXT   PRIMARY KEY NOT NULL,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT   NOT NULL,
    prefix          TEXT   NOT NULL,
    token_hash      TEXT   NOT NULL,
    created_at_us   BIGINT NOT NULL,
    expires_at_us   BIGINT,
    last_used_at_us BIGINT,
    revoked_at_us   BIGINT
);
CREATE UNIQUE INDEX api_tokens_by_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at_us);

-- Security events, append-only. The actor's name is copied in so the trail reads the same
-- whatever happens to the account later.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us      BIGINT NOT NULL,
    actor_id   TEXT,
    actor_name TEXT,
    action     TEXT   NOT NULL,
    target     TEXT,
    detail     TEXT,
    address    TEXT
);
-- The trail is read newest first (by id), optionally narrowed to one actor or one action.
CREATE INDEX audit_events_by_actor ON audit_events (actor_name, id);
CREATE INDEX audit_events_by_action ON audit_events (action, id);
