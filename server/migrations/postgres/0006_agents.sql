-- Sessions recorded through the ingest API belong to the agent that opened them: the API token
-- (its id, and its name as it was then). Only that token appends to or closes them; sessions
-- Loupe runs itself have neither, and the ingest API refuses them.
ALTER TABLE sessions ADD COLUMN agent_token_id TEXT;
ALTER TABLE sessions ADD COLUMN agent_name TEXT;

-- Reviewers see the sessions of the commands they review (sessions::visible_session).
CREATE INDEX reviews_by_session ON reviews (session_id);
