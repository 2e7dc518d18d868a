-- Reviews: just-in-time access to a connection and approval of single commands. A connection's
-- rules are JSON in connections.review (NULL: nothing to approve). Each review keeps a copy of
-- the rules it was made under, so changing a connection does not change what a pending review
-- needs; review_reviewers lists its reviewer groups for the inbox queries.
ALTER TABLE connections ADD COLUMN review TEXT;

CREATE TABLE reviews (
    id               TEXT    PRIMARY KEY NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('access', 'command')),
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'executed',
                             'rejected', 'cancelled', 'expired', 'revoked')),
    connection_id    TEXT    NOT NULL,
    connection_name  TEXT    NOT NULL,
    connection_kind  TEXT    NOT NULL,
    requester_id     TEXT    NOT NULL REFERENCES users (id),
    reason           TEXT    NOT NULL,
    input            TEXT,
    session_id       TEXT    REFERENCES sessions (id),
    access_seconds   BIGINT,
    rules            TEXT    NOT NULL,
    created_at_us    BIGINT  NOT NULL,
    expires_at_us    BIGINT  NOT NULL,
    decided_at_us    BIGINT,
    access_until_us  BIGINT,
    closed_at_us     BIGINT,
    closed_by        TEXT,
    closing_note     TEXT
);
CREATE INDEX reviews_by_created ON reviews (created_at_us, id);
CREATE INDEX reviews_by_requester ON reviews (requester_id, created_at_us, id);
CREATE INDEX reviews_by_state ON reviews (state, expires_at_us);
CREATE INDEX reviews_access ON reviews (connection_id, requester_id, state, access_until_us);

CREATE TABLE review_reviewers (
    review_id TEXT NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, review_id)
);

-- One decision per reviewer per review: the primary key refuses a second.
CREATE TABLE review_decisions (
    review_id   TEXT    NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    reviewer_id TEXT    NOT NULL REFERENCES users (id),
    verdict     TEXT    NOT NULL CHECK (verdict IN ('approve', 'reject')),
    note        TEXT,
    groups      TEXT    NOT NULL,
    at_us       BIGINT  NOT NULL,
    PRIMARY KEY (review_id, reviewer_id)
);
