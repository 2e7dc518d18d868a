//! Reading sessions: the record, the list (keyset-paginated on indexed columns) and its
//! capped count, events, output chunks and row pages.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! sessions_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            // ---- sessions -------------------------------------------------------------

            pub async fn create_session(&self, session: &NewSessionRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, username, connection_id, connection_name,
                        connection_kind, session_type, verb, status, summary, input, node_id,
                        started_at_us, labels, rerun_of, agent_token_id, agent_name)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                )
                .bind(&session.id)
                .bind(&session.user_id)
                .bind(&session.username)
                .bind(&session.connection_id)
                .bind(&session.connection_name)
                .bind(&session.connection_kind)
                .bind(session.session_type.as_str())
                .bind(session.verb.as_str())
                .bind(session.status.as_str())
                .bind(&session.summary)
                .bind(&session.input)
                .bind(&session.node_id)
                .bind(session.started_at_us)
                .bind(&session.labels)
                .bind(&session.rerun_of)
                .bind(session.agent.as_ref().map(|(id, _)| id))
                .bind(session.agent.as_ref().map(|(_, name)| name))
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "a session with this id already exists"))?;
                Ok(())
            }

            pub async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// The whole input a session was started with.
            pub async fn session_input(&self, id: &str) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT input FROM sessions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            /// One page of the list, newest first.
            pub async fn list_sessions(&self, filter: &SessionFilter, limit: u32) -> StoreResult<Vec<SessionRecord>> {
                let mut query = list_query("", filter, limit);
                Ok(query.build_query_as().fetch_all(&self.pool).await?)
            }

            /// The database's plan for `list_sessions` with this filter, one line per step
            /// (SQLite's `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN` text): what the
            /// list bench prints for a filter combination that misses its target.
            pub async fn explain_list_sessions(&self, filter: &SessionFilter, limit: u32) -> StoreResult<Vec<String>> {
                let explain = if <$db as sqlx::Database>::NAME == "SQLite" {
                    "EXPLAIN QUERY PLAN "
                } else {
                    "EXPLAIN "
                };
                let mut query = list_query(explain, filter, limit);
                let rows = query.build().fetch_all(&self.pool).await?;
                // SQLite's detail is its last column, PostgreSQL's only one.
                Ok(rows
                    .iter()
                    .map(|row| sqlx::Row::try_get::<String, _>(row, sqlx::Row::len(row) - 1))
                    .collect::<Result<_, _>>()?)
            }

            /// How many sessions match, counting no further than `cap` (an index range scan of at
            /// most `cap` entries, however many sessions there are).
            pub async fn count_sessions(&self, filter: &SessionFilter, cap: u32) -> StoreResult<i64> {
                let now = now_us();
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM sessions s WHERE 1 = 1",
                );
                push_session_filter(&mut query, filter, now);
                query.push(" LIMIT ").push_bind(i64::from(cap)).push(") capped");
                Ok(query.build_query_scalar().fetch_one(&self.pool).await?)
            }

            pub async fn session_events(&self, session_id: &str, after: i64, limit: u32) -> StoreResult<Vec<EventRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM session_events WHERE session_id = $1 AND seq > $2
                     ORDER BY seq LIMIT $3"
                ))
                .bind(session_id)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            pub async fn event(&self, session_id: &str, seq: i64) -> StoreResult<Option<EventRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM session_events WHERE session_id = $1 AND seq = $2"
                ))
                .bind(session_id)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// The chunks overlapping bytes [start, end) of an event's output: one range scan of
            /// the primary key, since no chunk is longer than MAX_CHUNK_BYTES.
            pub async fn output_chunks(&self, session_id: &str, seq: i64, start: i64, end: i64) -> StoreResult<Vec<ChunkRecord>> {
                Ok(sqlx::query_as(
                    "SELECT byte_offset, at_us, stream, data FROM output_chunks
                     WHERE session_id = $1 AND seq = $2 AND byte_offset > $3 AND byte_offset < $4
                     ORDER BY byte_offset",
                )
                .bind(session_id)
                .bind(seq)
                .bind(start - MAX_CHUNK_BYTES as i64)
                .bind(end)
                .fetch_all(&self.pool)
                .await?)
            }

            /// The row pages overlapping rows [start, end) of a result set; like `output_chunks`.
            pub async fn row_pages(&self, session_id: &str, seq: i64, start: i64, end: i64) -> StoreResult<Vec<RowPageRecord>> {
                Ok(sqlx::query_as(
                    "SELECT first_row, row_count, data FROM row_pages
                     WHERE session_id = $1 AND seq = $2 AND first_row > $3 AND first_row < $4
                     ORDER BY first_row",
                )
                .bind(session_id)
                .bind(seq)
                .bind(start - MAX_PAGE_ROWS as i64)
                .bind(end)
                .fetch_all(&self.pool)
                .await?)
            }
        }

        /// The list's query after `prefix`: the inner query picks the page's ids by an
        /// index-only scan; only those rows are then read from the table.
        fn list_query<'a>(prefix: &str, filter: &'a SessionFilter, limit: u32) -> sqlx::QueryBuilder<'a, $db> {
            let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                "{prefix}SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id IN (SELECT s.id FROM sessions s WHERE 1 = 1"
            ));
            push_session_filter(&mut query, filter, now_us());
            query.push(" ORDER BY s.started_at_us DESC, s.id DESC LIMIT ").push_bind(i64::from(limit));
            query.push(") ORDER BY s.started_at_us DESC, s.id DESC");
            query
        }

        /// The WHERE conditions of the session list and its count.
        fn push_session_filter<'a>(query: &mut sqlx::QueryBuilder<'a, $db>, filter: &'a SessionFilter, now: i64) {
            if let Some(username) = &filter.username {
                query.push(" AND s.username = ").push_bind(username.as_str());
            }
            if let Some(connection) = &filter.connection {
                query.push(" AND s.connection_name = ").push_bind(connection.as_str());
            }
            if let Some(kind) = &filter.session_type {
                query.push(" AND s.session_type = ").push_bind(kind.as_str());
            }
            if !filter.statuses.is_empty() {
                query.push(" AND s.status IN (");
                let mut list = query.separated(", ");
                for status in &filter.statuses {
                    list.push_bind(status.as_str());
                }
                query.push(")");
            }
            if let Some(from) = filter.from_us {
                query.push(" AND s.started_at_us >= ").push_bind(from);
            }
            if let Some(to) = filter.to_us {
                query.push(" AND s.started_at_us < ").push_bind(to);
            }
            if let Some(prefix) = &filter.id_prefix {
                // Ids are lower-case hex and dashes, all below '~'.
                query.push(" AND s.id >= ").push_bind(prefix.as_str());
                query.push(" AND s.id < ").push_bind(format!("{prefix}~"));
            }
            if let Some((started, id)) = &filter.before {
                // A row value, so both databases seek straight to the cursor in the index.
                query.push(" AND (s.started_at_us, s.id) < (").push_bind(*started);
                query.push(", ").push_bind(id.as_str()).push(")");
            }
            if let Visibility::Restricted { user_id, username, group_ids } = &filter.visibility {
                query.push(" AND (s.username = ").push_bind(username.as_str());
                query.push(" OR s.id IN (SELECT session_id FROM session_shares WHERE 1 = 1");
                push_live_share(query, user_id, group_ids, now);
                query.push("))");
            }
        }
    };
}

pub(crate) use sessions_queries;
