//! Terminal keyframes: a terminal session's screen at points of its output, so playback can
//! start anywhere (see the `terminal_keyframes` migration).
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! keyframes_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            pub async fn insert_keyframe(&self, session_id: &str, keyframe: &KeyframeRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO terminal_keyframes (session_id, seq, byte_offset, at_us, cols, rows, screen)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(session_id)
                .bind(keyframe.seq)
                .bind(keyframe.byte_offset)
                .bind(keyframe.at_us)
                .bind(keyframe.cols)
                .bind(keyframe.rows)
                .bind(&keyframe.screen)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// The latest keyframe of output event `seq` taken at or before `at_us` and standing at
            /// most at byte `within` (one past the stored output is of no use): one seek of the
            /// time index.
            pub async fn keyframe_before(&self, session_id: &str, seq: i64, at_us: i64, within: i64) -> StoreResult<Option<KeyframeRecord>> {
                Ok(sqlx::query_as(
                    "SELECT seq, byte_offset, at_us, cols, rows, screen FROM terminal_keyframes
                     WHERE session_id = $1 AND at_us <= $2 AND seq = $3 AND byte_offset <= $4
                     ORDER BY at_us DESC, byte_offset DESC LIMIT 1",
                )
                .bind(session_id)
                .bind(at_us)
                .bind(seq)
                .bind(within)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// How many keyframes a session has and their screens' total size in bytes.
            pub async fn keyframe_totals(&self, session_id: &str) -> StoreResult<(i64, i64)> {
                let (count, bytes): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(SUM(LENGTH(screen)) AS BIGINT) FROM terminal_keyframes
                     WHERE session_id = $1",
                )
                .bind(session_id)
                .fetch_one(&self.pool)
                .await?;
                Ok((count, bytes.unwrap_or(0)))
            }
        }
    };
}

pub(crate) use keyframes_queries;
