//! Serving the web client: deep links, caching, and the API's own 404s.

use loupe_protocol::{ErrorBody, ErrorCode};
use reqwest::header::CACHE_CONTROL;

use crate::helpers::{INDEX_MARKER, TestApp};

fn cache_control(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn deep_links_load_the_app_and_are_never_cached() {
    let app = TestApp::spawn().await;

    for path in [
        "/",
        "/sessions",
        "/sessions/0192f1a2-7c3e-7d4b-9a1f-3b2c1d0e9f8a",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(cache_control(&response), "no-store", "{path}");
        assert!(
            response.text().await.unwrap().contains(INDEX_MARKER),
            "{path}"
        );
    }
}

#[tokio::test]
async fn hashed_assets_are_cached_for_a_year() {
    let app = TestApp::spawn().await;

    let response = app.get("/app-0123456789abcdef.js").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        cache_control(&response),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.text().await.unwrap(), "export default 1;");
}

#[tokio::test]
async fn plain_files_are_revalidated() {
    let app = TestApp::spawn().await;

    let response = app.get("/favicon.svg").await;

    assert_eq!(response.status(), 200);
    assert_eq!(cache_control(&response), "no-cache");
}

#[tokio::test]
async fn missing_files_answer_404_not_the_app() {
    let app = TestApp::spawn().await;

    let response = app.get("/app-ffffffffffffffff.js").await;

    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn paths_cannot_escape_the_client_folder() {
    let app = TestApp::spawn().await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // Sent byte for byte: an HTTP client library would normalise the dots away first.
    for path in [
        "/../../../../etc/passwd",
        "/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%5c..%5c..%5c..%5cetc%5cpasswd",
    ] {
        let answer = raw_get(&address, path).await;
        assert!(!answer.contains("root:"), "{path} leaked a file:\n{answer}");
        let status_line = answer.lines().next().unwrap_or_default();
        assert!(
            status_line.contains(" 404 ")
                || status_line.contains(" 400 ")
                || answer.contains(INDEX_MARKER),
            "{path}: expected a refusal or the app, got {status_line}"
        );
    }
}

async fn raw_get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn unknown_api_routes_answer_a_json_404_with_a_request_id() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/no-such-thing").await;

    assert_eq!(response.status(), 404);
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, ErrorCode::NotFound);
    assert!(
        body.message.contains("/api/no-such-thing"),
        "{}",
        body.message
    );
    assert_eq!(body.request_id.as_deref(), Some(echoed.as_str()));
}

#[tokio::test]
async fn a_well_formed_request_id_is_kept_and_a_forged_one_replaced() {
    let app = TestApp::spawn().await;

    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    let replaced = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b c")
        .send()
        .await
        .unwrap();

    assert_eq!(kept.headers()["x-request-id"], "trace-42");
    let new_id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(new_id, "a b c");
    assert_eq!(new_id.len(), 32);
}

#[tokio::test]
async fn says_so_when_the_web_client_is_not_built() {
    let empty = tempfile::tempdir().unwrap();
    let folder = empty.path().to_path_buf();
    let app = TestApp::spawn_with(move |config| config.static_dir = folder).await;

    let response = app.get("/sessions").await;

    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("not built"));
    // The API does not depend on the client.
    assert_eq!(app.get("/api/settings").await.status(), 200);
}

#[tokio::test]
async fn precompressed_assets_are_sent_as_the_browser_accepts_them() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().to_path_buf();
    std::fs::write(dir.join("index.html"), "<!doctype html>").unwrap();
    std::fs::write(dir.join("app-0123456789abcdef.wasm"), "raw bytes").unwrap();
    // What the build writes beside an asset; the server sends the file, it does not compress.
    std::fs::write(dir.join("app-0123456789abcdef.wasm.br"), "brotli bytes").unwrap();
    std::fs::write(dir.join("app-0123456789abcdef.wasm.gz"), "gzip bytes").unwrap();
    let app = TestApp::spawn_with(move |config| config.static_dir = dir).await;

    for (accepted, encoding, body) in [
        (Some("gzip, deflate, br, zstd"), Some("br"), "brotli bytes"),
        (Some("gzip, deflate"), Some("gzip"), "gzip bytes"),
        (None, None, "raw bytes"),
    ] {
        let mut request = app.client.get(app.url("/app-0123456789abcdef.wasm"));
        if let Some(accepted) = accepted {
            request = request.header("accept-encoding", accepted);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{accepted:?}");
        assert_eq!(
            response
                .headers()
                .get("content-encoding")
                .map(|value| value.to_str().unwrap()),
            encoding,
            "{accepted:?}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/wasm",
            "{accepted:?}"
        );
        assert_eq!(
            cache_control(&response),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(response.text().await.unwrap(), body, "{accepted:?}");
    }
    drop(folder);
}
