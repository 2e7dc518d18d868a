//! Walks the endpoint table: every route in it must be reachable through the router.

use axum::http::Method;
use loupe_server::routes::endpoints;

use crate::helpers::TestApp;

#[tokio::test]
async fn every_parameterless_get_route_in_the_table_is_served() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let routes: Vec<_> = endpoints()
        .into_iter()
        // /api/live is a WebSocket; its own tests open it properly.
        .filter(|endpoint| {
            endpoint.method == Method::GET
                && !endpoint.path.contains('{')
                && endpoint.path != "/api/live"
        })
        .collect();
    assert!(routes.len() > 3);

    for endpoint in routes {
        let status = app
            .call(reqwest::Method::GET, endpoint.path, Some(&admin), None)
            .await
            .status();
        assert_eq!(status, 200, "GET {} answered {status}", endpoint.path);
    }
}
