//! A surface of our own, speaking plain text, mounted beside the real ones: every failure the
//! shared layer finds on its paths — a missing route, a wrong method, an oversized or
//! malformed body, a panic, an unknown or disabled tenant, a cross-site request — must come
//! back in plain text, and the JSON surfaces must keep their own shape.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_core::password::HashingConfig;
use portcullis_core::store::TenantUpdate;
use portcullis_core::tenants::CreateTenantCommand;
use portcullis_core::{Caller, ClientInfo, Core, CoreConfig, CoreError};
use portcullis_http::shared::body::{self, BodyError};
use portcullis_http::shared::{AppState, CurrentTenant, Mount, Rejection, Surface, mount};
use portcullis_http::{HttpConfig, app_with};
use portcullis_testkit::{Backend, DbGuard, ManualClock};

/// The plain-text surface's own wire format: a status and one line of text.
struct PlainText;

fn text(status: StatusCode, line: &str) -> Response {
    (status, [("content-type", "text/plain; charset=utf-8")], format!("{line}\n")).into_response()
}

impl Surface for PlainText {
    fn reject(r: Rejection) -> Response {
        match r {
            Rejection::NotFound => text(StatusCode::NOT_FOUND, "plain: no such thing"),
            Rejection::MethodNotAllowed => text(StatusCode::METHOD_NOT_ALLOWED, "plain: wrong method"),
            Rejection::TenantNotFound => text(StatusCode::NOT_FOUND, "plain: no such tenant"),
            Rejection::CrossSite => text(StatusCode::FORBIDDEN, "plain: cross-site"),
            Rejection::Panic => text(StatusCode::INTERNAL_SERVER_ERROR, "plain: broken"),
            Rejection::Core(_) => text(StatusCode::SERVICE_UNAVAILABLE, "plain: unavailable"),
        }
    }
}

/// Echoes a UTF-8 body, refusing too-large and malformed ones in plain text.
async fn echo(State(st): State<AppState>, req: Request) -> Response {
    match body::read(req, &st).await {
        Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
            Ok(s) => text(StatusCode::OK, &format!("plain: {s}")),
            Err(_) => text(StatusCode::BAD_REQUEST, "plain: not UTF-8"),
        },
        Err(BodyError::TooLarge) => text(StatusCode::PAYLOAD_TOO_LARGE, "plain: too large"),
        Err(BodyError::Unreadable) => text(StatusCode::BAD_REQUEST, "plain: unreadable"),
    }
}

async fn whoami(CurrentTenant(t): CurrentTenant) -> Response {
    text(StatusCode::OK, &format!("plain: tenant {t}"))
}

/// A tenant named by its id in a parameter, as some legacy clients do.
async fn vhost(State(st): State<AppState>, axum::extract::Path(id): axum::extract::Path<i64>) -> Response {
    match portcullis_http::shared::tenant::by_id(&st.core, id).await {
        Ok(t) => text(StatusCode::OK, &format!("plain: tenant {t}")),
        Err(CoreError::NotFound) => PlainText::reject(Rejection::TenantNotFound),
        Err(e) => PlainText::reject(Rejection::Core(e)),
    }
}

async fn broken() -> Response {
    panic!("a bug in a handler")
}

fn plain(state: &AppState) -> portcullis_http::shared::MountedSurface {
    let routes = Router::new()
        .route("/plain/echo", post(echo))
        .route("/plain/whoami", get(whoami))
        .route("/plain/panic", get(broken))
        .route("/plain/vhost/{id}", get(vhost));
    mount::<PlainText>(
        Mount { name: "plain", prefixes: vec!["/plain".into()], tenants: true, csrf: true },
        routes,
        state,
    )
}

struct Served {
    base: String,
    core: Arc<Core>,
    _db: DbGuard,
}

async fn serve() -> Served {
    let (store, db) = portcullis_testkit::fresh_store(Backend::Sqlite).await.unwrap();
    let config = CoreConfig {
        password: HashingConfig { memory_kib: 1024, iterations: 1, ..Default::default() },
        ..Default::default()
    };
    let core = Arc::new(Core::new(store, Arc::new(ManualClock::starting_now()), config).unwrap());
    let http = HttpConfig { max_body_bytes: 2048, ..Default::default() };
    let app = app_with(core.clone(), http, |state| vec![plain(state)]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Served { base: format!("http://{addr}"), core, _db: db }
}

async fn plain_answer(res: reqwest::Response, status: StatusCode, line: &str) {
    let got = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = res.text().await.unwrap();
    assert_eq!((got, body.trim()), (status.as_u16(), line));
    assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_under_a_surface_answers_in_its_own_format() {
    let s = serve().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);

    // What works, works, per tenant too.
    plain_answer(http.post(url("/plain/echo")).body("hello").send().await.unwrap(), StatusCode::OK, "plain: hello")
        .await;
    plain_answer(http.get(url("/plain/whoami")).send().await.unwrap(), StatusCode::OK, "plain: tenant 1").await;

    // A missing route, a wrong method, a body too large or malformed, a panic.
    for path in ["/plain/nothing", "/plain", "/plain/echo/more"] {
        plain_answer(http.get(url(path)).send().await.unwrap(), StatusCode::NOT_FOUND, "plain: no such thing").await;
    }
    plain_answer(
        http.put(url("/plain/echo")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "plain: wrong method",
    )
    .await;
    plain_answer(
        http.post(url("/plain/echo")).body(vec![b'x'; 4096]).send().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "plain: too large",
    )
    .await;
    plain_answer(
        http.post(url("/plain/echo")).body(vec![0xff, 0xfe]).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "plain: not UTF-8",
    )
    .await;
    plain_answer(
        http.get(url("/plain/panic")).send().await.unwrap(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "plain: broken",
    )
    .await;

    // A cross-site request riding on a cookie.
    plain_answer(
        http.post(url("/plain/echo")).header("sec-fetch-site", "cross-site").body("x").send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "plain: cross-site",
    )
    .await;

    // Tenants: known, unknown, and disabled (by path and by domain).
    let op = Caller::operator(ClientInfo::default());
    let cmd = CreateTenantCommand { slug: "acme".into(), domains: vec!["id.acme.test".into()], ..Default::default() };
    let acme = s.core.create_tenant(&op, cmd).await.unwrap();
    plain_answer(
        http.get(url("/t/acme/plain/whoami")).send().await.unwrap(),
        StatusCode::OK,
        &format!("plain: tenant {}", acme.id),
    )
    .await;
    plain_answer(
        http.get(url("/plain/whoami")).header("host", "id.acme.test").send().await.unwrap(),
        StatusCode::OK,
        &format!("plain: tenant {}", acme.id),
    )
    .await;
    plain_answer(
        http.get(url("/t/nobody/plain/whoami")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "plain: no such tenant",
    )
    .await;
    plain_answer(
        http.get(url(&format!("/plain/vhost/{}", acme.id))).send().await.unwrap(),
        StatusCode::OK,
        &format!("plain: tenant {}", acme.id),
    )
    .await;
    s.core.update_tenant(&op, acme.id, TenantUpdate { disabled: Some(true), ..Default::default() }).await.unwrap();
    for id in [acme.id.0, 4242] {
        plain_answer(
            http.get(url(&format!("/plain/vhost/{id}"))).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "plain: no such tenant",
        )
        .await;
    }
    for req in [http.get(url("/t/acme/plain/whoami")), http.get(url("/plain/whoami")).header("host", "id.acme.test")] {
        plain_answer(req.send().await.unwrap(), StatusCode::NOT_FOUND, "plain: no such tenant").await;
    }
    // Even a route that does not exist, under a disabled tenant, is the surface's to answer.
    plain_answer(
        http.get(url("/t/acme/plain/nothing")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "plain: no such tenant",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_surfaces_keep_their_shape_beside_it() {
    let s = serve().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);
    for (req, status, code) in [
        (http.get(url("/v1/nothing")), 404, "not_found"),
        (http.get(url("/nothing/at/all")), 404, "not_found"),
        (http.get(url("/v1/admin/nothing")), 404, "not_found"),
        (http.get(url("/t/nobody/v1/me")), 404, "not_found"),
        (http.put(url("/v1/login")), 405, "method_not_allowed"),
        (http.post(url("/healthz")), 405, "method_not_allowed"),
        (
            http.post(url("/v1/login")).header("content-type", "application/json").body(vec![b' '; 4096]),
            413,
            "payload_too_large",
        ),
        (http.post(url("/v1/login")).header("content-type", "application/json").body("{"), 400, "malformed_request"),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.headers()["content-type"], "application/json");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // The probes answer for every tenant, whatever the tenant's state.
    assert_eq!(http.get(url("/t/nobody/healthz")).send().await.unwrap().status(), 200);
}
