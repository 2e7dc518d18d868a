//! `GET /api/connections/{id}/terminal?cols=&rows=`: an interactive terminal on a shell or ssh
//! connection, as a WebSocket (see `loupe_protocol::terminals` for its frames). Admission is
//! checked before the upgrade, so a refusal is an ordinary error answer; a browser's handshake
//! must come from Loupe's own pages, as for `/api/live`.

use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, close_code, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, header},
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use loupe_protocol::{
    MAX_TERMINAL_SIDE, SessionStatus, TerminalNotice, TerminalQuery, TerminalRequest,
};
use tokio::sync::mpsc;

use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    identity::auth::{self, Actor, Credential},
    routes::state::AppState,
    terminal::{
        relay::{self, Admitted, ClientEnd, FromClient, ToClient},
        screen::Size,
    },
};

/// Largest frame a client may send: a paste of 64 KiB, or a resize.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Frames either way that may wait for the other side.
const QUEUE: usize = 64;

/// The size asked for: both sides or neither, each 1 to [`MAX_TERMINAL_SIDE`].
fn requested_size(query: TerminalQuery) -> Result<Size, ApiError> {
    let size = match (query.cols, query.rows) {
        (None, None) => return Ok(Size::DEFAULT),
        (Some(cols), Some(rows)) => Size { cols, rows },
        (None, Some(_)) => return Err(ApiError::bad_request("cols", "cols goes with rows")),
        (Some(_), None) => return Err(ApiError::bad_request("rows", "rows goes with cols")),
    };
    for (field, value) in [("cols", size.cols), ("rows", size.rows)] {
        if !(1..=MAX_TERMINAL_SIDE).contains(&value) {
            return Err(ApiError::bad_request(
                field,
                format!("{field} must be 1 to {MAX_TERMINAL_SIDE}"),
            ));
        }
    }
    Ok(size)
}

pub async fn open_terminal(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<TerminalQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let size = requested_size(query)?;
    let admitted = relay::admit(&state.store, &actor, &id).await?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(
            "upgrade",
            format!("open a terminal as a WebSocket ({})", rejection.body_text()),
        )
    })?;
    if matches!(actor.credential, Credential::Cookie(_)) && headers.contains_key(header::ORIGIN) {
        auth::require_same_origin(&headers, state.config.secure_cookies)?;
    }
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(state, admitted, size, socket)))
}

async fn serve(state: AppState, admitted: Admitted, size: Size, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (from_sender, from) = mpsc::channel(QUEUE);
    let (to, mut to_receiver) = mpsc::channel::<ToClient>(QUEUE);
    let notices = to.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let forwarded = match message {
                Message::Binary(bytes) => FromClient::Input(bytes),
                Message::Text(text) => match serde_json::from_str::<TerminalRequest>(&text) {
                    Ok(TerminalRequest::Resize { cols, rows }) => {
                        match requested_size(TerminalQuery {
                            cols: Some(cols),
                            rows: Some(rows),
                        }) {
                            Ok(size) => FromClient::Resize(size),
                            Err(error) => {
                                let _ = notices.send(refused(error.to_string())).await;
                                continue;
                            }
                        }
                    }
                    Err(error) => {
                        let _ = notices
                            .send(refused(format!(
                                "a text frame must be {{\"type\":\"resize\",\"cols\":…,\"rows\":…}}: {error}"
                            )))
                            .await;
                        continue;
                    }
                },
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if from_sender.send(forwarded).await.is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(message) = to_receiver.recv().await {
            let (frame, last) = match message {
                ToClient::Output(bytes) => (Message::Binary(bytes), false),
                ToClient::Notice(notice) => {
                    let last = matches!(notice, TerminalNotice::Ended { .. });
                    let json = serde_json::to_string(&notice).expect("notices serialise");
                    (Message::Text(json.into()), last)
                }
            };
            if sink.send(frame).await.is_err() {
                return;
            }
            if last {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code::NORMAL,
                        reason: "the terminal ended".into(),
                    })))
                    .await;
                return;
            }
        }
    });
    // What is said after the relay has gone.
    let ended = to.clone();
    let client = ClientEnd { from, to };
    let recheck = std::time::Duration::from_secs(state.config.live_recheck_seconds);
    if let Err(error) = relay::run(
        &state.gateway,
        &state.recorder,
        admitted,
        size,
        recheck,
        client,
    )
    .await
    {
        tracing::warn!(%error, "a terminal could not start");
        let _ = ended
            .send(ToClient::Notice(TerminalNotice::Ended {
                status: SessionStatus::Failed,
                exit_code: None,
                reason: Some(error.message().to_owned()),
            }))
            .await;
    }
    drop(ended);
    // The reader holds a sender for its own notices: stop it, so the writer ends once it has
    // sent what is queued.
    reader.abort();
    let _ = writer.await;
}

fn refused(text: String) -> ToClient {
    ToClient::Notice(TerminalNotice::Message { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_both_or_neither_and_bounded() {
        let size = |cols, rows| requested_size(TerminalQuery { cols, rows });
        assert_eq!(size(None, None).unwrap(), Size::DEFAULT);
        assert_eq!(
            size(Some(120), Some(40)).unwrap(),
            Size {
                cols: 120,
                rows: 40
            }
        );
        for (cols, rows, field) in [
            (Some(0), Some(24), "cols"),
            (Some(80), Some(1001), "rows"),
            (Some(80), None, "rows"),
            (None, Some(24), "cols"),
        ] {
            let error = size(cols, rows).unwrap_err();
            assert!(
                error.message().starts_with(field),
                "{cols:?} {rows:?}: {}",
                error.message()
            );
        }
    }
}
