//! `GET /api/settings`: what the web app must know before it draws anything.

use axum::{Json, extract::State};
use loupe_protocol::{Listeners, Settings};

use crate::{routes::state::AppState, wire::advertised};

pub async fn get_settings(State(state): State<AppState>) -> Json<Settings> {
    let config = &state.config;
    Json(Settings {
        version: env!("CARGO_PKG_VERSION").into(),
        downloads_disabled: config.disable_sessions_download,
        preview_bytes: config.preview_bytes,
        preview_rows: config.preview_rows,
        listeners: Listeners {
            postgres: config
                .pg_bind
                .as_deref()
                .map(|bind| advertised(bind, config)),
            mysql: config
                .mysql_bind
                .as_deref()
                .map(|bind| advertised(bind, config)),
            tls_fingerprint: state.wire_tls.as_ref().map(|tls| tls.fingerprint.clone()),
            ssh: config
                .ssh_bind
                .as_deref()
                .map(|bind| advertised(bind, config)),
            ssh_host_key: state.ssh_host_key.clone(),
        },
    })
}
