//! Serves the built web client. Trunk's hashed assets (`app-<hash>.js`, `…_bg.wasm`) are cached
//! for a year, since a new build gets new names; `index.html` is never cached, so a deploy takes
//! effect on the next load. Any path that is not an API route and not a file is an app route
//! (`/sessions/01J…`) and gets `index.html`, so deep links and reloads work. Assets go out
//! precompressed (Brotli or gzip, as the browser accepts) when the build wrote those files.

use std::{io, path::Path};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::{error::ApiError, response_policy, routes::state::AppState};

const CACHE_FOREVER: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
const NEVER_CACHE: HeaderValue = HeaderValue::from_static("no-store");

pub async fn serve_client(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found(format!("there is no API route {} {path}", request.method()))
            .into_response();
    }
    let dir = &state.config.static_dir;
    if names_a_file(&path) {
        // The build writes `NAME.br` and `NAME.gz` beside each asset (xtask's `precompress`):
        // sent as they are when the browser accepts them, so nothing is compressed per request.
        let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
        let response = match files.oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        return with_cache_policy(response, &path);
    }
    serve_index(dir).await
}

async fn serve_index(dir: &Path) -> Response {
    match tokio::fs::read(dir.join("index.html")).await {
        Ok(html) => {
            let html = String::from_utf8_lossy(&html).into_owned();
            let policy = response_policy::page_policy(&html);
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, NEVER_CACHE);
            if let Ok(policy) = HeaderValue::from_str(&policy) {
                headers.insert(header::CONTENT_SECURITY_POLICY, policy);
            }
            response
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, NEVER_CACHE)],
            Html(format!(
                "<!doctype html><title>Loupe</title><h1>Loupe's web client is not built</h1>\
                 <p>No <code>index.html</code> in <code>{}</code>. Start Loupe with \
                 <code>cargo xtask run</code>, which builds it, or point <code>LOUPE_STATIC_DIR</code> \
                 at a built client. The API is up.</p>",
                html_escape(&dir.display().to_string())
            )),
        )
            .into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

fn with_cache_policy(mut response: Response, path: &str) -> Response {
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let policy = if is_content_hashed(path) {
            CACHE_FOREVER
        } else {
            REVALIDATE
        };
        response.headers_mut().insert(header::CACHE_CONTROL, policy);
    }
    response
}

/// A last segment with a dot is a file (`/app-1a2b.js`, `/favicon.svg`); anything else is a
/// page of the app.
fn names_a_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Trunk names built assets `<name>-<16 hex digits>[_bg].<ext>`.
fn is_content_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 16 && hash.bytes().all(|byte| byte.is_ascii_hexdigit())
    })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_trunk_hashed_assets() {
        assert!(is_content_hashed("/app-8f3a9c0d1e2b4a5f.js"));
        assert!(is_content_hashed("/app-8f3a9c0d1e2b4a5f_bg.wasm"));
        assert!(is_content_hashed("/main-0123456789abcdef.css"));
        assert!(!is_content_hashed("/favicon.svg"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/my-favicon.svg"));
    }

    #[test]
    fn tells_files_from_app_routes() {
        assert!(names_a_file("/favicon.svg"));
        assert!(!names_a_file(
            "/sessions/0192f1a2-7c3e-7d4b-9a1f-3b2c1d0e9f8a"
        ));
        assert!(!names_a_file("/"));
    }
}
