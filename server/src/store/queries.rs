//! The SQL both backends share, written once. SQLite and PostgreSQL agree on everything used
//! here (`$n` parameters, `ON CONFLICT`, `RETURNING`), so [`shared_queries!`] expands the same
//! method bodies into `impl SqliteStore` and `impl PostgresStore`, each typed for its own pool.
//! Anything that differs between them lives in that backend's own file instead.

macro_rules! shared_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            pub async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            pub async fn instance(&self) -> StoreResult<Instance> {
                let inserted = sqlx::query(
                    "INSERT INTO loupe_instance (singleton, instance_id, created_at_us)
                     VALUES (1, $1, $2) ON CONFLICT (singleton) DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected();
                let (id, created_at_us): (String, i64) =
                    sqlx::query_as("SELECT instance_id, created_at_us FROM loupe_instance")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(Instance { id, created_at_us, first_start: inserted == 1 })
            }

            pub async fn close(&self) {
                self.pool.close().await;
            }

            // ---- users ----------------------------------------------------------------

            pub async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO users (id, username, display_name, role, disabled, password_hash,
                                        created_at_us, updated_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&user.id)
                .bind(&user.username)
                .bind(&user.display_name)
                .bind(&user.role)
                .bind(user.disabled)
                .bind(&user.password_hash)
                .bind(user.created_at_us)
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "a user with this username already exists"))?;
                Ok(())
            }

            pub async fn user_by_id(&self, id: &str) -> StoreResult<UserRecord> {
                sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
                Ok(sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"))
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            pub async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
                Ok(sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"))
                    .fetch_all(&self.pool)
                    .await?)
            }

            pub async fn count_users(&self) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
            }

            pub async fn update_user(&self, id: &str, update: &UserUpdate) -> StoreResult<()> {
                let changed = sqlx::query(
                    "UPDATE users SET
                        display_name  = COALESCE($2, display_name),
                        role          = COALESCE($3, role),
                        disabled      = COALESCE($4, disabled),
                        password_hash = COALESCE($5, password_hash),
                        updated_at_us = $6
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&update.display_name)
                .bind(update.role.map(|role| role.as_str()))
                .bind(update.disabled)
                .bind(&update.password_hash)
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected();
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            // ---- groups ---------------------------------------------------------------

            pub async fn create_group(&self, group: &GroupRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO user_groups (id, name, description, created_at_us)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&group.id)
                .bind(&group.name)
                .bind(&group.description)
                .bind(group.created_at_us)
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "a group with this name already exists"))?;
                Ok(())
            }

            pub async fn group_by_id(&self, id: &str) -> StoreResult<GroupRecord> {
                sqlx::query_as(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            pub async fn group_by_name(&self, name: &str) -> StoreResult<Option<GroupRecord>> {
                Ok(sqlx::query_as(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            pub async fn list_groups(&self) -> StoreResult<Vec<GroupRecord>> {
                Ok(sqlx::query_as(&format!("SELECT {GROUP_COLUMNS} FROM user_groups ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await?)
            }

            pub async fn update_group(
                &self,
                id: &str,
                name: Option<&str>,
                description: Option<&str>,
            ) -> StoreResult<()> {
                let changed = sqlx::query(
                    "UPDATE user_groups SET name = COALESCE($2, name),
                                            description = COALESCE($3, description)
                     WHERE id = $1",
                )
                .bind(id)
                .bind(name)
                .bind(description)
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "a group with this name already exists"))?
                .rows_affected();
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            pub async fn delete_group(&self, id: &str) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM user_groups WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            /// Adds a member; true if they were not one already.
            pub async fn add_group_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
                Ok(sqlx::query(
                    "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)
                     ON CONFLICT (group_id, user_id) DO NOTHING",
                )
                .bind(group_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            /// Removes a member; true if they were one.
            pub async fn remove_group_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool> {
                Ok(sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                    .bind(group_id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            /// Memberships, optionally of one group or of one user only.
            pub async fn memberships(
                &self,
                group_id: Option<&str>,
                user_id: Option<&str>,
            ) -> StoreResult<Vec<MembershipRecord>> {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT m.group_id, g.name AS group_name, m.user_id, u.username, u.display_name
                     FROM group_members m
                     JOIN user_groups g ON g.id = m.group_id
                     JOIN users u ON u.id = m.user_id WHERE 1 = 1",
                );
                if let Some(group_id) = group_id {
                    query.push(" AND m.group_id = ").push_bind(group_id);
                }
                if let Some(user_id) = user_id {
                    query.push(" AND m.user_id = ").push_bind(user_id);
                }
                query.push(" ORDER BY g.name, u.username");
                Ok(query.build_query_as().fetch_all(&self.pool).await?)
            }

            // ---- browser logins -------------------------------------------------------

            pub async fn create_login_session(
                &self,
                token_hash: &str,
                user_id: &str,
                expires_at_us: i64,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO login_sessions (token_hash, user_id, created_at_us, expires_at_us)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(now_us())
                .bind(expires_at_us)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// The enabled user a live login session belongs to.
            pub async fn login_session_user(&self, token_hash: &str) -> StoreResult<Option<UserRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {USER_COLUMNS_OF_U} FROM login_sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = $1 AND s.expires_at_us > $2 AND NOT u.disabled"
                ))
                .bind(token_hash)
                .bind(now_us())
                .fetch_optional(&self.pool)
                .await?)
            }

            pub async fn delete_login_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM login_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Ends every browser login of a user (after a password reset or disabling).
            pub async fn delete_login_sessions_of(&self, user_id: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM login_sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Forgets browser logins that have expired.
            pub async fn purge_expired_logins(&self) -> StoreResult<()> {
                sqlx::query("DELETE FROM login_sessions WHERE expires_at_us <= $1")
                    .bind(now_us())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            // ---- API tokens -----------------------------------------------------------

            pub async fn create_token(&self, token: &TokenRecord, token_hash: &str) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at_us,
                                             expires_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&token.id)
                .bind(&token.user_id)
                .bind(&token.name)
                .bind(&token.prefix)
                .bind(token_hash)
                .bind(token.created_at_us)
                .bind(token.expires_at_us)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn list_tokens(&self, user_id: &str) -> StoreResult<Vec<TokenRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at_us DESC"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            pub async fn token_by_id(&self, id: &str) -> StoreResult<TokenRecord> {
                sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            /// The token and its enabled owner, if the token is live (not revoked, not expired).
            pub async fn token_user(
                &self,
                token_hash: &str,
            ) -> StoreResult<Option<(TokenRecord, UserRecord)>> {
                let now = now_us();
                let token: Option<TokenRecord> = sqlx::query_as(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1
                       AND revoked_at_us IS NULL AND (expires_at_us IS NULL OR expires_at_us > $2)"
                ))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(token) = token else { return Ok(None) };
                let user = self.user_by_id(&token.user_id).await?;
                Ok((!user.disabled).then_some((token, user)))
            }

            pub async fn touch_token(&self, id: &str) -> StoreResult<()> {
                sqlx::query("UPDATE api_tokens SET last_used_at_us = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now_us())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Revokes a live token; false if it was already revoked.
            pub async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE api_tokens SET revoked_at_us = $2 WHERE id = $1 AND revoked_at_us IS NULL",
                )
                .bind(id)
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            pub async fn revoke_tokens_of(&self, user_id: &str) -> StoreResult<u64> {
                Ok(sqlx::query(
                    "UPDATE api_tokens SET revoked_at_us = $2 WHERE user_id = $1 AND revoked_at_us IS NULL",
                )
                .bind(user_id)
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            // ---- audit trail ----------------------------------------------------------

            pub async fn record_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO audit_events (at_us, actor_id, actor_name, action, target, detail, address)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(now_us())
                .bind(&event.actor_id)
                .bind(&event.actor_name)
                .bind(event.action)
                .bind(&event.target)
                .bind(&event.detail)
                .bind(&event.address)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT id, at_us, actor_name, action, target, detail, address
                     FROM audit_events WHERE 1 = 1",
                );
                if let Some(actor) = &filter.actor {
                    query.push(" AND actor_name = ").push_bind(actor);
                }
                if let Some(action) = &filter.action {
                    query.push(" AND action = ").push_bind(action);
                }
                if let Some(from) = filter.from_us {
                    query.push(" AND at_us >= ").push_bind(from);
                }
                if let Some(to) = filter.to_us {
                    query.push(" AND at_us < ").push_bind(to);
                }
                if let Some(before) = filter.before_id {
                    query.push(" AND id < ").push_bind(before);
                }
                query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(filter.limit));
                Ok(query.build_query_as().fetch_all(&self.pool).await?)
            }

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
                .bind(&session.session_type)
                .bind(&session.verb)
                .bind(&session.status)
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
                let now = now_us();
                // The inner query picks the page's ids by an index-only scan; only those rows
                // are then read from the table.
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id IN (SELECT s.id FROM sessions s WHERE 1 = 1"
                ));
                push_session_filter(&mut query, filter, now);
                query.push(" ORDER BY s.started_at_us DESC, s.id DESC LIMIT ").push_bind(i64::from(limit));
                query.push(") ORDER BY s.started_at_us DESC, s.id DESC");
                Ok(query.build_query_as().fetch_all(&self.pool).await?)
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

            pub async fn session_write_state(&self, session_id: &str) -> StoreResult<Option<SessionWriteState>> {
                Ok(sqlx::query_as(
                    "SELECT user_id, status, event_count, output_bytes, truncated FROM sessions WHERE id = $1",
                )
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Applies a recorder batch in one transaction.
            pub async fn write_batch(&self, ops: &[WriteOp]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                for op in ops {
                    match op {
                        WriteOp::Event { session_id, event } => {
                            sqlx::query(
                                "INSERT INTO session_events (session_id, seq, at_us, kind, summary, body,
                                    code, exit_code, columns, bytes, row_count)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                            )
                            .bind(session_id)
                            .bind(event.seq)
                            .bind(event.at_us)
                            .bind(&event.kind)
                            .bind(&event.summary)
                            .bind(&event.body)
                            .bind(&event.code)
                            .bind(event.exit_code)
                            .bind(&event.columns)
                            .bind(event.bytes)
                            .bind(event.row_count)
                            .execute(&mut *tx)
                            .await?;
                        }
                        WriteOp::Chunk { session_id, seq, chunk } => {
                            sqlx::query(
                                "INSERT INTO output_chunks (session_id, seq, byte_offset, at_us, stream, data)
                                 VALUES ($1, $2, $3, $4, $5, $6)",
                            )
                            .bind(session_id)
                            .bind(*seq)
                            .bind(chunk.byte_offset)
                            .bind(chunk.at_us)
                            .bind(&chunk.stream)
                            .bind(&chunk.data)
                            .execute(&mut *tx)
                            .await?;
                        }
                        WriteOp::RowPage { session_id, seq, page } => {
                            sqlx::query(
                                "INSERT INTO row_pages (session_id, seq, first_row, row_count, data)
                                 VALUES ($1, $2, $3, $4, $5)",
                            )
                            .bind(session_id)
                            .bind(*seq)
                            .bind(page.first_row)
                            .bind(page.row_count)
                            .bind(&page.data)
                            .execute(&mut *tx)
                            .await?;
                        }
                        WriteOp::EventGrowth { session_id, seq, bytes, rows } => {
                            sqlx::query(
                                "UPDATE session_events SET bytes = bytes + $3, row_count = row_count + $4
                                 WHERE session_id = $1 AND seq = $2",
                            )
                            .bind(session_id)
                            .bind(*seq)
                            .bind(*bytes)
                            .bind(*rows)
                            .execute(&mut *tx)
                            .await?;
                        }
                        WriteOp::SessionGrowth { session_id, events, input_bytes, output_bytes, rows } => {
                            sqlx::query(
                                "UPDATE sessions SET event_count = event_count + $2,
                                    input_bytes = input_bytes + $3, output_bytes = output_bytes + $4,
                                    row_count = row_count + $5
                                 WHERE id = $1",
                            )
                            .bind(session_id)
                            .bind(*events)
                            .bind(*input_bytes)
                            .bind(*output_bytes)
                            .bind(*rows)
                            .execute(&mut *tx)
                            .await?;
                        }
                        WriteOp::Truncated { session_id } => {
                            sqlx::query("UPDATE sessions SET truncated = TRUE WHERE id = $1")
                                .bind(session_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        WriteOp::Finish { session_id, status, ended_at_us, exit_code, error } => {
                            sqlx::query(
                                "UPDATE sessions SET status = $2, ended_at_us = $3,
                                    exit_code = COALESCE($4, exit_code), error = COALESCE($5, error)
                                 WHERE id = $1 AND status IN ('running', 'pending_review')",
                            )
                            .bind(session_id)
                            .bind(status)
                            .bind(*ended_at_us)
                            .bind(*exit_code)
                            .bind(error)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// Marks this node's running sessions interrupted: after a crash nothing is running
            /// them any more. Returns how many there were.
            pub async fn interrupt_running(&self, node_id: &str, reason: &str) -> StoreResult<u64> {
                Ok(sqlx::query(
                    "UPDATE sessions SET status = 'interrupted', ended_at_us = $3, error = $2
                     WHERE node_id = $1 AND status = 'running'",
                )
                .bind(node_id)
                .bind(reason)
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            // ---- connections ----------------------------------------------------------

            pub async fn create_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO connections (id, name, kind, session_type, command, secret, timeout_seconds,
                        tags, review, created_at_us, updated_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                )
                .bind(&connection.id)
                .bind(&connection.name)
                .bind(&connection.kind)
                .bind(&connection.session_type)
                .bind(&connection.command)
                .bind(&connection.secret)
                .bind(connection.timeout_seconds)
                .bind(&connection.tags)
                .bind(&connection.review)
                .bind(connection.created_at_us)
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "a connection with this name already exists"))?;
                Ok(())
            }

            /// The connection with this id, or else with this name.
            pub async fn connection(&self, id_or_name: &str) -> StoreResult<Option<ConnectionRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1
                     UNION ALL SELECT {CONNECTION_COLUMNS} FROM connections WHERE name = $1 LIMIT 1"
                ))
                .bind(id_or_name)
                .fetch_optional(&self.pool)
                .await?)
            }

            pub async fn list_connections(&self) -> StoreResult<Vec<ConnectionRecord>> {
                Ok(sqlx::query_as(&format!("SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await?)
            }

            /// Replaces a connection's editable fields with `connection`'s.
            pub async fn update_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
                let changed = sqlx::query(
                    "UPDATE connections SET name = $2, command = $3, secret = $4, timeout_seconds = $5,
                        tags = $6, review = $7, updated_at_us = $8
                     WHERE id = $1",
                )
                .bind(&connection.id)
                .bind(&connection.name)
                .bind(&connection.command)
                .bind(&connection.secret)
                .bind(connection.timeout_seconds)
                .bind(&connection.tags)
                .bind(&connection.review)
                .bind(now_us())
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "a connection with this name already exists"))?
                .rows_affected();
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            pub async fn delete_connection(&self, id: &str) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM connections WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            // ---- reviews --------------------------------------------------------------

            pub async fn create_review(&self, review: &ReviewRecord, reviewer_groups: &[String]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(&format!(
                    "INSERT INTO reviews ({REVIEW_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
                ))
                .bind(&review.id)
                .bind(&review.kind)
                .bind(&review.state)
                .bind(&review.connection_id)
                .bind(&review.connection_name)
                .bind(&review.connection_kind)
                .bind(&review.requester_id)
                .bind(&review.reason)
                .bind(&review.input)
                .bind(&review.session_id)
                .bind(review.access_seconds)
                .bind(&review.rules)
                .bind(review.created_at_us)
                .bind(review.expires_at_us)
                .bind(review.decided_at_us)
                .bind(review.access_until_us)
                .bind(review.closed_at_us)
                .bind(&review.closed_by)
                .bind(&review.closing_note)
                .execute(&mut *tx)
                .await?;
                for group in reviewer_groups {
                    sqlx::query("INSERT INTO review_reviewers (review_id, group_id) VALUES ($1, $2)")
                        .bind(&review.id)
                        .bind(group)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn review(&self, id: &str) -> StoreResult<Option<ReviewRecord>> {
                Ok(sqlx::query_as(&format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            pub async fn review_decisions(&self, review_id: &str) -> StoreResult<Vec<DecisionRecord>> {
                Ok(sqlx::query_as(
                    "SELECT review_id, reviewer_id, verdict, note, groups, at_us FROM review_decisions
                     WHERE review_id = $1 ORDER BY at_us, reviewer_id",
                )
                .bind(review_id)
                .fetch_all(&self.pool)
                .await?)
            }

            /// Newest first.
            pub async fn list_reviews(&self, filter: &ReviewFilter) -> StoreResult<Vec<ReviewRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {REVIEW_COLUMNS} FROM reviews WHERE 1 = 1"
                ));
                if let Some(requester) = &filter.requester_id {
                    query.push(" AND requester_id = ").push_bind(requester.as_str());
                }
                if let Some(groups) = &filter.reviewer_groups {
                    query.push(" AND ");
                    push_reviewed_by(&mut query, groups);
                }
                if let Some((user_id, groups)) = &filter.visible_to {
                    query.push(" AND (requester_id = ").push_bind(user_id.as_str()).push(" OR ");
                    push_reviewed_by(&mut query, groups);
                    query.push(")");
                }
                if !filter.states.is_empty() {
                    query.push(" AND state IN (");
                    let mut list = query.separated(", ");
                    for state in &filter.states {
                        list.push_bind(state.as_str());
                    }
                    query.push(")");
                }
                if let Some(kind) = &filter.kind {
                    query.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(name) = &filter.connection_name {
                    query.push(" AND connection_name = ").push_bind(name.as_str());
                }
                if let Some(session) = &filter.session_id {
                    query.push(" AND session_id = ").push_bind(session.as_str());
                }
                if let Some((created, id)) = &filter.before {
                    query.push(" AND (created_at_us, id) < (").push_bind(*created);
                    query.push(", ").push_bind(id.as_str()).push(")");
                }
                query.push(" ORDER BY created_at_us DESC, id DESC LIMIT ").push_bind(i64::from(filter.limit));
                Ok(query.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Pending reviews this person may decide and has not: the navigation's badge.
            pub async fn count_waiting_reviews(&self, user_id: &str, group_ids: &[String]) -> StoreResult<i64> {
                if group_ids.is_empty() {
                    return Ok(0);
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM reviews WHERE state = 'pending' AND expires_at_us > ",
                );
                query.push_bind(now_us());
                query.push(" AND requester_id <> ").push_bind(user_id).push(" AND ");
                push_reviewed_by(&mut query, group_ids);
                query.push(" AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.review_id = reviews.id AND d.reviewer_id = ");
                query.push_bind(user_id).push(")");
                Ok(query.build_query_scalar().fetch_one(&self.pool).await?)
            }

            /// Records one reviewer's decision and moves the review on when it is decided. The
            /// review's row is taken first, so deciders queue behind each other and each sees
            /// what the one before left: two approvals at the same moment make one decision.
            pub async fn decide_review(&self, decision: &DecisionRecord, tally: Tally) -> StoreResult<DecideOutcome> {
                let now = decision.at_us;
                let mut tx = self.pool.begin().await?;
                let taken = sqlx::query(
                    "UPDATE reviews SET state = state WHERE id = $1 AND state = 'pending' AND expires_at_us > $2",
                )
                .bind(&decision.review_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 0 {
                    let state: Option<(String, i64)> =
                        sqlx::query_as("SELECT state, expires_at_us FROM reviews WHERE id = $1")
                            .bind(&decision.review_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    return match state {
                        None => Err(StoreError::NotFound),
                        Some((state, _)) if state != "pending" => Ok(DecideOutcome::NotPending { state }),
                        Some(_) => Ok(DecideOutcome::NotPending { state: "expired".into() }),
                    };
                }
                let inserted = sqlx::query(
                    "INSERT INTO review_decisions (review_id, reviewer_id, verdict, note, groups, at_us)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (review_id, reviewer_id) DO NOTHING",
                )
                .bind(&decision.review_id)
                .bind(&decision.reviewer_id)
                .bind(&decision.verdict)
                .bind(&decision.note)
                .bind(&decision.groups)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(DecideOutcome::AlreadyDecided);
                }
                let state = if decision.verdict == "reject" {
                    sqlx::query(
                        "UPDATE reviews SET state = 'rejected', decided_at_us = $2, closed_at_us = $2,
                            closed_by = $3, closing_note = $4
                         WHERE id = $1",
                    )
                    .bind(&decision.review_id)
                    .bind(now)
                    .bind(&decision.reviewer_id)
                    .bind(&decision.note)
                    .execute(&mut *tx)
                    .await?;
                    "rejected"
                } else {
                    let review: ReviewRecord =
                        sqlx::query_as(&format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = $1"))
                            .bind(&decision.review_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    let decisions: Vec<DecisionRecord> = sqlx::query_as(
                        "SELECT review_id, reviewer_id, verdict, note, groups, at_us FROM review_decisions
                         WHERE review_id = $1",
                    )
                    .bind(&decision.review_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    if tally(&review, &decisions) {
                        let access_until = review.access_seconds.map(|seconds| now + seconds * 1_000_000);
                        sqlx::query(
                            "UPDATE reviews SET state = 'approved', decided_at_us = $2, access_until_us = $3
                             WHERE id = $1",
                        )
                        .bind(&decision.review_id)
                        .bind(now)
                        .bind(access_until)
                        .execute(&mut *tx)
                        .await?;
                        "approved"
                    } else {
                        "pending"
                    }
                };
                tx.commit().await?;
                Ok(DecideOutcome::Recorded { state: state.to_owned() })
            }

            /// Moves a review from `from` to the final state `to`, only if it is still in
            /// `from`; false when it was not (someone else moved it first).
            pub async fn move_review(&self, id: &str, from: &str, to: &str, by: Option<&str>, note: Option<&str>) -> StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE reviews SET state = $3, closed_at_us = $4, closed_by = COALESCE($5, closed_by),
                        closing_note = COALESCE($6, closing_note)
                     WHERE id = $1 AND state = $2",
                )
                .bind(id)
                .bind(from)
                .bind(to)
                .bind(now_us())
                .bind(by)
                .bind(note)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            /// Reviews whose time is up: pending past their expiry, access past its window, and
            /// approved commands that were never started (their server stopped in between).
            pub async fn due_reviews(&self, now: i64) -> StoreResult<Vec<ReviewRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {REVIEW_COLUMNS} FROM reviews
                     WHERE (state = 'pending' AND expires_at_us <= $1)
                        OR (state = 'approved' AND kind = 'access' AND access_until_us <= $1)
                        OR (state = 'approved' AND kind = 'command' AND decided_at_us <= $2)
                     LIMIT 500"
                ))
                .bind(now)
                .bind(now - 60_000_000)
                .fetch_all(&self.pool)
                .await?)
            }

            /// The access this person holds on this connection now, if any.
            pub async fn active_access(&self, connection_id: &str, user_id: &str) -> StoreResult<Option<ReviewRecord>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {REVIEW_COLUMNS} FROM reviews
                     WHERE connection_id = $1 AND requester_id = $2 AND state = 'approved'
                       AND kind = 'access' AND access_until_us > $3
                     ORDER BY access_until_us DESC LIMIT 1"
                ))
                .bind(connection_id)
                .bind(user_id)
                .bind(now_us())
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Moves a session held for review to running on `node_id`; false if it was not held.
            pub async fn begin_reviewed_session(&self, session_id: &str, node_id: &str) -> StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE sessions SET status = 'running', node_id = $2 WHERE id = $1 AND status = 'pending_review'",
                )
                .bind(session_id)
                .bind(node_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            // ---- shares ---------------------------------------------------------------

            pub async fn create_shares(&self, shares: &[ShareRecord]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                for share in shares {
                    sqlx::query(
                        "INSERT INTO session_shares (id, session_id, user_id, group_id, note, created_by,
                            created_at_us, expires_at_us)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&share.id)
                    .bind(&share.session_id)
                    .bind(&share.user_id)
                    .bind(&share.group_id)
                    .bind(&share.note)
                    .bind(&share.created_by)
                    .bind(share.created_at_us)
                    .bind(share.expires_at_us)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// The live shares of a session.
            pub async fn list_shares(&self, session_id: &str) -> StoreResult<Vec<ShareRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, session_id, user_id, group_id, note, created_by, created_at_us, expires_at_us
                     FROM session_shares WHERE session_id = $1 AND revoked_at_us IS NULL
                       AND (expires_at_us IS NULL OR expires_at_us > $2)
                     ORDER BY created_at_us",
                )
                .bind(session_id)
                .bind(now_us())
                .fetch_all(&self.pool)
                .await?)
            }

            /// Revokes a live share of the session; false if there was none.
            pub async fn revoke_share(&self, session_id: &str, share_id: &str) -> StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE session_shares SET revoked_at_us = $3
                     WHERE session_id = $1 AND id = $2 AND revoked_at_us IS NULL",
                )
                .bind(session_id)
                .bind(share_id)
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            /// Whether a live share gives this user (or one of their groups) the session.
            pub async fn is_shared_with(&self, session_id: &str, user_id: &str, group_ids: &[String]) -> StoreResult<bool> {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM session_shares WHERE session_id = ",
                );
                query.push_bind(session_id);
                push_live_share(&mut query, user_id, group_ids, now_us());
                let count: i64 = query.build_query_scalar().fetch_one(&self.pool).await?;
                Ok(count > 0)
            }

            pub async fn reviews_session(&self, session_id: &str, group_ids: &[String]) -> StoreResult<bool> {
                if group_ids.is_empty() {
                    return Ok(false);
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM reviews r JOIN review_reviewers rr ON rr.review_id = r.id
                     WHERE r.session_id = ",
                );
                query.push_bind(session_id).push(" AND rr.group_id IN (");
                let mut groups = query.separated(", ");
                for group in group_ids {
                    groups.push_bind(group.as_str());
                }
                query.push(")");
                let count: i64 = query.build_query_scalar().fetch_one(&self.pool).await?;
                Ok(count > 0)
            }
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

        /// `<one of these groups reviews the review>`, never true for no groups.
        fn push_reviewed_by<'a>(query: &mut sqlx::QueryBuilder<'a, $db>, groups: &'a [String]) {
            if groups.is_empty() {
                query.push("1 = 0");
                return;
            }
            query.push("id IN (SELECT review_id FROM review_reviewers WHERE group_id IN (");
            let mut list = query.separated(", ");
            for group in groups {
                list.push_bind(group.as_str());
            }
            query.push("))");
        }

        /// `AND <the share is live and names this user or one of their groups>`.
        fn push_live_share<'a>(query: &mut sqlx::QueryBuilder<'a, $db>, user_id: &'a str, group_ids: &'a [String], now: i64) {
            query.push(" AND revoked_at_us IS NULL AND (expires_at_us IS NULL OR expires_at_us > ");
            query.push_bind(now).push(") AND (user_id = ").push_bind(user_id);
            if !group_ids.is_empty() {
                query.push(" OR group_id IN (");
                let mut list = query.separated(", ");
                for group in group_ids {
                    list.push_bind(group.as_str());
                }
                query.push(")");
            }
            query.push(")");
        }
    };
}

pub(crate) use shared_queries;
