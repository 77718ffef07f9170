//! `/healthz`, `/readyz` and `/openapi.json`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::both;
use crate::support::{Backend, TestApp, assert_error};

both!(health_and_readiness, the_openapi_document_describes_every_route);

async fn health_and_readiness(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");
    // A request id sent by the caller is echoed back.
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");

    if b == Backend::Postgres {
        // Take the database away: the process is still up, but not ready.
        use sqlx::Connection;
        let db = app.config.database_url.rsplit('/').next().unwrap().to_owned();
        let mut admin = sqlx::PgConnection::connect(&portcullis_testkit::postgres::admin_url()).await.unwrap();
        let sql = format!("DROP DATABASE \"{db}\" WITH (FORCE)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
        let res = app.call(Method::GET, "/readyz", None, None).await;
        assert!(res.headers().contains_key("retry-after"));
        assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
        assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status(), StatusCode::OK);
        let res = app.post("/v1/login", serde_json::json!({"login": "x", "password": "y"})).await;
        assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
}

async fn the_openapi_document_describes_every_route(b: Backend) {
    let app = TestApp::spawn(b).await;
    let doc: Value = app.call(Method::GET, "/openapi.json", None, None).await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/v1/signup", "post"),
        ("/v1/login", "post"),
        ("/v1/logout", "post"),
        ("/v1/logout/all", "post"),
        ("/v1/session", "get"),
        ("/v1/sessions", "get"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/me", "get"),
        ("/v1/me", "patch"),
        ("/v1/me", "delete"),
        ("/v1/me/password", "post"),
        ("/v1/login/token", "post"),
        ("/v1/credentials/verify", "post"),
        ("/v1/admin/users", "get"),
        ("/v1/admin/users", "post"),
        ("/v1/admin/users/exists", "get"),
        ("/v1/admin/users/{id}", "get"),
        ("/v1/admin/users/{id}", "patch"),
        ("/v1/admin/users/{id}", "delete"),
        ("/v1/admin/users/{id}/disable", "post"),
        ("/v1/admin/users/{id}/enable", "post"),
        ("/v1/admin/users/{id}/sessions", "delete"),
        ("/v1/admin/users/{id}/login-token", "post"),
        ("/v1/admin/roles", "post"),
        ("/v1/admin/roles/{id}", "delete"),
        ("/v1/admin/attributes", "get"),
        ("/v1/admin/attributes/{id}", "patch"),
        ("/v1/admin/keys", "post"),
        ("/v1/admin/keys/{id}", "delete"),
        ("/v1/admin/audit", "get"),
        ("/v1/admin/password-schemes", "get"),
        ("/v1/admin/tenants", "post"),
        ("/v1/admin/tenants/{slug}", "patch"),
    ];
    for (path, method) in expected {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
    }
    let user = &doc["components"]["schemas"]["User"]["properties"];
    for f in portcullis_core::profile::TextField::ALL {
        assert!(user.get(f.name()).is_some(), "User.{} is not documented", f.name());
    }
    let signup = &doc["components"]["schemas"]["SignupRequest"]["properties"];
    assert!(signup.get("password").is_some() && signup.get("billing_email").is_some());
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}
