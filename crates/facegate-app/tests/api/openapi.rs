//! The OpenAPI document is served and matches the live router.

use facegate_app::web::openapi::operations;
use facegate_app::web::routes::api::endpoints;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn openapi_document_is_in_sync_with_the_router() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let doc: Value = a.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = operations(&doc);
    let mut routed: Vec<(String, String)> = endpoints(&app.state.services.config)
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    routed.sort();
    assert_eq!(documented, routed);

    // Every documented operation is really routed with that method.
    for (method, path) in &documented {
        let url = a.url(&path.replace("{id}", "999999"));
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = a
            .client
            .request(m, url)
            .header("X-CSRF-Token", &a.csrf)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !(status == StatusCode::NOT_FOUND && body.is_empty()),
            "{method} {path} is not routed"
        );
    }
}
