//! Users, groups, browser logins and API tokens.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! identity_queries {
    ($store:ty, $db:ty) => {
        impl $store {
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
                .bind(user.role.as_str())
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
        }
    };
}

pub(crate) use identity_queries;
