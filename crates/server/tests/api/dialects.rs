//! What every dialect shares: operators switch each on per tenant (CLI, admin API), the
//! tenant's settings show it, and the change is audited.

use portcullis_core::Dialect;
use portcullis_core::store::AuditQuery;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::support::{Backend, TestApp, api_key, enable_dialect, op, tenant};

both!(operators_switch_dialects_per_tenant_and_the_change_is_audited);

async fn operators_switch_dialects_per_tenant_and_the_change_is_audited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let acme = tenant(&app, "acme", &[]).await;
    let operator = api_key(&app, None, &["operator"]).await;
    let admin_of_acme = api_key(&app, Some(acme), &["tenant:admin"]).await;

    let (s, t) = app.send(Method::GET, "/v1/admin/tenants/acme", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!([])), "{t}");

    let (s, t) = app.send(Method::PUT, "/v1/admin/tenants/acme/dialects/ossn", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!(["ossn"])), "{t}");
    enable_dialect(&app, acme, Dialect::Newspark).await;
    let (s, t) = app.send(Method::PUT, "/v1/admin/tenants/acme/dialects/OSSN", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!(["ossn", "newspark"])), "idempotent: {t}");
    assert_eq!(t["policy"]["dialects"], json!(["ossn", "newspark"]));
    let (s, t) = app.send(Method::DELETE, "/v1/admin/tenants/acme/dialects/ossn", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!(["newspark"])), "{t}");
    // Other tenants are untouched.
    let (_, d) = app.send(Method::GET, "/v1/admin/tenants/default", &operator, None).await;
    assert_eq!(d["dialects"], json!([]));

    // An unknown dialect is a validation error; a tenant's own admin key is not an operator.
    let (s, e) = app.send(Method::PUT, "/v1/admin/tenants/acme/dialects/soap", &operator, None).await;
    assert_eq!((s, &e["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("validation_failed")), "{e}");
    let (s, _) = app.send(Method::PUT, "/t/acme/v1/admin/tenants/acme/dialects/ossn", &admin_of_acme, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.send(Method::PUT, "/v1/admin/tenants/nope/dialects/ossn", &operator, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let q = AuditQuery { tenant_id: Some(acme), limit: 100, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    let events: Vec<_> = events.into_iter().filter(|e| e.action.starts_with("tenant.dialect_")).collect();
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.action.clone(), e.details["dialect"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            ("tenant.dialect_disabled".to_owned(), "ossn".to_owned()),
            ("tenant.dialect_enabled".to_owned(), "ossn".to_owned()),
            ("tenant.dialect_enabled".to_owned(), "newspark".to_owned()),
            ("tenant.dialect_enabled".to_owned(), "ossn".to_owned()),
        ]
    );
    // Changes through the admin API record its surface.
    assert_eq!(events[0].details["surface"], "admin");
}
