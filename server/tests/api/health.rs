use loupe_protocol::Health;

use crate::helpers::{TestApp, backend};

#[tokio::test]
async fn healthz_reports_a_database_round_trip() {
    let app = TestApp::spawn().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), 200);
    let health: Health = response.json().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.database, backend());
}

#[tokio::test]
async fn server_stops_gracefully_when_asked() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let address = app.address.clone();

    app.stop().await.expect("the server shuts down cleanly");

    let after = reqwest::get(format!("{address}/healthz")).await;
    assert!(after.is_err(), "nothing should listen after shutdown");
}
