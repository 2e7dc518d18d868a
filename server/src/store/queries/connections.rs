//! Connections.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! connections_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            // ---- connections ----------------------------------------------------------

            pub async fn create_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO connections (id, name, kind, session_type, command, secret, timeout_seconds,
                        tags, review, terminal, created_at_us, updated_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                )
                .bind(&connection.id)
                .bind(&connection.name)
                .bind(connection.kind.as_str())
                .bind(connection.session_type.as_str())
                .bind(&connection.command)
                .bind(&connection.secret)
                .bind(connection.timeout_seconds)
                .bind(&connection.tags)
                .bind(&connection.review)
                .bind(&connection.terminal)
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
                        tags = $6, review = $7, terminal = $8, updated_at_us = $9
                     WHERE id = $1",
                )
                .bind(&connection.id)
                .bind(&connection.name)
                .bind(&connection.command)
                .bind(&connection.secret)
                .bind(connection.timeout_seconds)
                .bind(&connection.tags)
                .bind(&connection.review)
                .bind(&connection.terminal)
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
        }
    };
}

pub(crate) use connections_queries;
