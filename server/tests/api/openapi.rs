use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/openapi.json").await;

    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/healthz"]["get"]["summary"].is_string());
    assert!(document["paths"]["/api/settings"]["get"]["summary"].is_string());
    assert_eq!(
        document["components"]["schemas"]["ErrorBody"]["required"],
        serde_json::json!(["code", "message"])
    );
}
