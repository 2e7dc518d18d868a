//! Writing sessions: the recorder's batched transaction, and marking a node's running
//! sessions interrupted at start.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! recording_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            pub async fn session_write_state(&self, session_id: &str) -> StoreResult<Option<SessionWriteState>> {
                Ok(sqlx::query_as(
                    "SELECT user_id, status, event_count, output_bytes, truncated FROM sessions WHERE id = $1",
                )
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Applies a recorder batch in one transaction, regrouped into few statements
            /// (see `store::batch`).
            pub async fn write_batch(&self, ops: &[WriteOp]) -> StoreResult<()> {
                use $crate::store::batch::{Compacted, runs};
                let batch = Compacted::of(ops);
                let mut tx = self.pool.begin().await?;
                for run in runs(&batch.events) {
                    sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO session_events (session_id, seq, at_us, kind, summary, body,
                            code, exit_code, columns, bytes, row_count) ",
                    )
                    .push_values(run, |mut row, new| {
                        let event = new.event;
                        row.push_bind(new.session_id)
                            .push_bind(event.seq)
                            .push_bind(event.at_us)
                            .push_bind(event.kind.as_str())
                            .push_bind(event.summary.as_str())
                            .push_bind(event.body.as_deref())
                            .push_bind(event.code.as_deref())
                            .push_bind(event.exit_code)
                            .push_bind(event.columns.as_deref())
                            .push_bind(event.bytes + new.bytes)
                            .push_bind(event.row_count + new.rows);
                    })
                    .build()
                    .execute(&mut *tx)
                    .await?;
                }
                for run in runs(&batch.chunks) {
                    sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO output_chunks (session_id, seq, byte_offset, at_us, stream, data) ",
                    )
                    .push_values(run, |mut row, (session_id, seq, chunk)| {
                        row.push_bind(*session_id)
                            .push_bind(*seq)
                            .push_bind(chunk.byte_offset)
                            .push_bind(chunk.at_us)
                            .push_bind(chunk.stream.as_str())
                            .push_bind(chunk.data.as_slice());
                    })
                    .build()
                    .execute(&mut *tx)
                    .await?;
                }
                for run in runs(&batch.pages) {
                    sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO row_pages (session_id, seq, first_row, row_count, data) ",
                    )
                    .push_values(run, |mut row, (session_id, seq, page)| {
                        row.push_bind(*session_id)
                            .push_bind(*seq)
                            .push_bind(page.first_row)
                            .push_bind(page.row_count)
                            .push_bind(page.data.as_str());
                    })
                    .build()
                    .execute(&mut *tx)
                    .await?;
                }
                for (session_id, seq, bytes, rows) in &batch.event_growth {
                    sqlx::query(
                        "UPDATE session_events SET bytes = bytes + $3, row_count = row_count + $4
                         WHERE session_id = $1 AND seq = $2",
                    )
                    .bind(*session_id)
                    .bind(*seq)
                    .bind(*bytes)
                    .bind(*rows)
                    .execute(&mut *tx)
                    .await?;
                }
                for (session_id, [events, input_bytes, output_bytes, rows]) in &batch.session_growth {
                    sqlx::query(
                        "UPDATE sessions SET event_count = event_count + $2,
                            input_bytes = input_bytes + $3, output_bytes = output_bytes + $4,
                            row_count = row_count + $5
                         WHERE id = $1",
                    )
                    .bind(*session_id)
                    .bind(*events)
                    .bind(*input_bytes)
                    .bind(*output_bytes)
                    .bind(*rows)
                    .execute(&mut *tx)
                    .await?;
                }
                for session_id in &batch.truncated {
                    sqlx::query("UPDATE sessions SET truncated = TRUE WHERE id = $1")
                        .bind(*session_id)
                        .execute(&mut *tx)
                        .await?;
                }
                for (session_id, status, ended_at_us, exit_code, error) in &batch.finishes {
                    sqlx::query(
                        "UPDATE sessions SET status = $2, ended_at_us = $3,
                            exit_code = COALESCE($4, exit_code), error = COALESCE($5, error)
                         WHERE id = $1 AND status IN ('running', 'pending_review')",
                    )
                    .bind(*session_id)
                    .bind(*status)
                    .bind(*ended_at_us)
                    .bind(*exit_code)
                    .bind(*error)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// Marks this node's running sessions interrupted: after a crash nothing is running
            /// them any more. Returns how many there were.
            /// Sessions recorded by agents through the ingest API are not this node's to end: they
            /// belong to their agent, which goes on appending once the server is back.
            pub async fn interrupt_running(&self, node_id: &str, reason: &str) -> StoreResult<u64> {
                Ok(sqlx::query(
                    "UPDATE sessions SET status = 'interrupted', ended_at_us = $3, error = $2
                     WHERE node_id = $1 AND status = 'running' AND verb <> 'record'",
                )
                .bind(node_id)
                .bind(reason)
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            pub async fn set_session_program(&self, session_id: &str, group: i64, started: i64) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET process_group = $2, process_started = $3 WHERE id = $1")
                    .bind(session_id)
                    .bind(group)
                    .bind(started)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// This node's running sessions with a program, as (session, process group, start time).
            pub async fn left_running_programs(&self, node_id: &str) -> StoreResult<Vec<(String, i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT id, process_group, process_started FROM sessions
                     WHERE node_id = $1 AND status = 'running' AND process_group IS NOT NULL
                       AND process_started IS NOT NULL",
                )
                .bind(node_id)
                .fetch_all(&self.pool)
                .await?)
            }

            pub async fn interrupt_session(&self, id: &str, reason: &str) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE sessions SET status = 'interrupted', ended_at_us = $3, error = $2
                     WHERE id = $1 AND status = 'running'",
                )
                .bind(id)
                .bind(reason)
                .bind(now_us())
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use recording_queries;
