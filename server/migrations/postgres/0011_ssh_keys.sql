-- Public keys people log in to Loupe's SSH listener with (`ssh alice+web-1@loupe`), registered
-- on their profile. A key belongs to one user: its SHA-256 fingerprint is unique.
CREATE TABLE ssh_keys (
    id            TEXT   PRIMARY KEY NOT NULL,
    user_id       TEXT   NOT NULL REFERENCES users (id),
    name          TEXT   NOT NULL,
    public_key    TEXT   NOT NULL,
    fingerprint   TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX ssh_keys_by_fingerprint ON ssh_keys (fingerprint);
CREATE INDEX ssh_keys_by_user ON ssh_keys (user_id);
