//! Shares of sessions.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! shares_queries {
    ($store:ty, $db:ty) => {
        impl $store {
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

pub(crate) use shares_queries;
