//! `/api/reviews`: access requests and held commands, and the reviewers' decisions on them.
//! What each caller may do is decided in `reviews` and `policy`; these handlers only translate.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{AccessRequest, Page, Review, ReviewNote, ReviewQuery, Verdict, Waiting};

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    identity::auth::Actor,
    reviews,
    routes::state::AppState,
};

pub async fn list_reviews(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(query): ApiQuery<ReviewQuery>,
) -> Result<Json<Page<Review>>, ApiError> {
    Ok(Json(reviews::list(&state.reviews, &actor, &query).await?))
}

pub async fn request_access(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(request): ApiJson<AccessRequest>,
) -> Result<(StatusCode, Json<Review>), ApiError> {
    let review = reviews::request_access(&state.reviews, &actor, &request).await?;
    Ok((StatusCode::CREATED, Json(review)))
}

pub async fn waiting_reviews(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Waiting>, ApiError> {
    Ok(Json(reviews::waiting(&state.reviews, &actor).await?))
}

pub async fn get_review(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(reviews::get(&state.reviews, &actor, &id).await?))
}

pub async fn approve_review(
    state: State<AppState>,
    actor: Actor,
    id: Path<String>,
    body: ApiJson<ReviewNote>,
) -> Result<Json<Review>, ApiError> {
    decide(state, actor, id, body, Verdict::Approve).await
}

pub async fn reject_review(
    state: State<AppState>,
    actor: Actor,
    id: Path<String>,
    body: ApiJson<ReviewNote>,
) -> Result<Json<Review>, ApiError> {
    decide(state, actor, id, body, Verdict::Reject).await
}

async fn decide(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewNote>,
    verdict: Verdict,
) -> Result<Json<Review>, ApiError> {
    let note = body.note.as_deref();
    Ok(Json(
        reviews::decide(&state.reviews, &actor, &id, verdict, note).await?,
    ))
}

pub async fn cancel_review(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewNote>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(
        reviews::cancel(&state.reviews, &actor, &id, body.note.as_deref()).await?,
    ))
}

pub async fn revoke_review(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewNote>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(
        reviews::revoke(&state.reviews, &actor, &id, body.note.as_deref()).await?,
    ))
}
