//! The audit trail.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! audit_queries {
    ($store:ty, $db:ty) => {
        impl $store {
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

            /// Every action the trail holds, in byte order (sorted here: PostgreSQL's collation
            /// would order them differently from SQLite), for the audit page's picker.
            pub async fn audit_actions(&self) -> StoreResult<Vec<String>> {
                let mut actions: Vec<String> =
                    sqlx::query_scalar("SELECT DISTINCT action FROM audit_events")
                        .fetch_all(&self.pool)
                        .await?;
                actions.sort_unstable();
                Ok(actions)
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
        }
    };
}

pub(crate) use audit_queries;
