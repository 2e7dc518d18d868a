//! Users' SSH public keys, for Loupe's SSH listener.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! ssh_keys_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            pub async fn create_ssh_key(&self, key: &SshKeyRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, created_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&key.id)
                .bind(&key.user_id)
                .bind(&key.name)
                .bind(&key.public_key)
                .bind(&key.fingerprint)
                .bind(key.created_at_us)
                .execute(&self.pool)
                .await
                .map_err(|error| on_unique(error, "this key is already registered"))?;
                Ok(())
            }

            pub async fn list_ssh_keys(&self, user_id: &str) -> StoreResult<Vec<SshKeyRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, user_id, name, public_key, fingerprint, created_at_us FROM ssh_keys
                     WHERE user_id = $1 ORDER BY created_at_us",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            /// Removes `user_id`'s key `id`; false when they have no such key.
            pub async fn delete_ssh_key(&self, user_id: &str, id: &str) -> StoreResult<bool> {
                Ok(sqlx::query("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            /// The key with this fingerprint, if someone registered it.
            pub async fn ssh_key_by_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<SshKeyRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, user_id, name, public_key, fingerprint, created_at_us FROM ssh_keys
                     WHERE fingerprint = $1",
                )
                .bind(fingerprint)
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use ssh_keys_queries;
