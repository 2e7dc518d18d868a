use loupe_protocol::Settings;

use crate::helpers::TestApp;

#[tokio::test]
async fn settings_report_the_defaults() {
    let app = TestApp::spawn().await;

    let settings: Settings = app.get("/api/settings").await.json().await.unwrap();

    assert_eq!(settings.version, env!("CARGO_PKG_VERSION"));
    assert!(!settings.downloads_disabled);
    assert_eq!(settings.preview_bytes, 65_536);
    assert_eq!(settings.preview_rows, 200);
}

#[tokio::test]
async fn settings_report_downloads_disabled_by_the_administrator() {
    let app = TestApp::spawn_with(|config| config.disable_sessions_download = true).await;

    let settings: Settings = app.get("/api/settings").await.json().await.unwrap();

    assert!(settings.downloads_disabled);
}
