//! Reviews: requests, decisions (counted under the review's row lock by the `Tally` the
//! review domain passes in), state moves, expiry and granted access.
//! Expanded into both backends by `shared_queries!` (see `mod.rs`).

macro_rules! reviews_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            // ---- reviews --------------------------------------------------------------

            pub async fn create_review(&self, review: &ReviewRecord, reviewer_groups: &[String]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(&format!(
                    "INSERT INTO reviews ({REVIEW_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
                ))
                .bind(&review.id)
                .bind(review.kind.as_str())
                .bind(review.state.as_str())
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
                    let state: Option<String> =
                        sqlx::query_scalar("SELECT state FROM reviews WHERE id = $1")
                            .bind(&decision.review_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    let state = state.map(|state| loupe_protocol::ReviewState::parse(&state).ok_or(StoreError::Config(format!("a review in an unknown state {state:?}"))));
                    return match state.transpose()? {
                        None => Err(StoreError::NotFound),
                        Some(loupe_protocol::ReviewState::Pending) => Ok(DecideOutcome::NotPending { state: loupe_protocol::ReviewState::Expired }),
                        Some(state) => Ok(DecideOutcome::NotPending { state }),
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
                    loupe_protocol::ReviewState::Rejected
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
                        loupe_protocol::ReviewState::Approved
                    } else {
                        loupe_protocol::ReviewState::Pending
                    }
                };
                tx.commit().await?;
                Ok(DecideOutcome::Recorded { state })
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
    };
}

pub(crate) use reviews_queries;
