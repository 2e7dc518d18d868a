-- Two equality filters together. Through the one-column indexes of 0003, the first page of
-- "alice's failed sessions" or "web-1's command sessions" scanned all of alice's (or web-1's)
-- sessions when few of them matched, or none did: up to 100 ms at a million sessions. Each
-- index here leads with a pair of filter columns, then the list order, then the other filter
-- columns, so the pair's matches come out in list order and the rest is checked inside the
-- index, as in 0003. The pairs are those whose second column can be rare within the first
-- (a status such as `running`, a type, a connection); a type with a status is not among them:
-- every type is common enough that the type index finds a page of any status quickly.
-- `cargo xtask bench list` measures every combination and prints the plan of any that misses.
CREATE INDEX sessions_by_user_status_start ON sessions
    (username, status, started_at_us, id, connection_name, session_type);
CREATE INDEX sessions_by_connection_status_start ON sessions
    (connection_name, status, started_at_us, id, username, session_type);
CREATE INDEX sessions_by_user_type_start ON sessions
    (username, session_type, started_at_us, id, connection_name, status);
CREATE INDEX sessions_by_connection_type_start ON sessions
    (connection_name, session_type, started_at_us, id, username, status);
CREATE INDEX sessions_by_user_connection_start ON sessions
    (username, connection_name, started_at_us, id, session_type, status);
