//! Profile pictures through the native API: uploads in each accepted format, re-encoded at
//! every size; refusals; the public URLs, stored and generated.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, TestApp, assert_error, tenant};

const PW: &str = "correct horse battery staple";

fn picture(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, _| if x < w / 2 { Rgba([0, 0, 255, 255]) } else { Rgba([0, 255, 0, 255]) });
    let img = if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8())
    } else {
        DynamicImage::ImageRgba8(img)
    };
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

async fn upload(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .put(app.url("/v1/me/avatar"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(app.url(&url.replace(&app.base, ""))).send().await.unwrap()
}

both!(
    uploads_in_each_format_are_stored_at_every_size,
    what_is_not_a_picture_is_refused_and_nothing_changes,
    public_urls_reveal_nothing_and_follow_the_user,
);

async fn uploads_in_each_format_are_stored_at_every_size(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("ada", PW).await;
    let mut versions = Vec::new();
    for (ct, format) in
        [("image/png", ImageFormat::Png), ("image/jpeg", ImageFormat::Jpeg), ("image/webp", ImageFormat::WebP)]
    {
        let res = upload(&app, &token, ct, picture(format, 400 + versions.len() as u32, 300)).await;
        assert_eq!(res.status(), StatusCode::OK, "{ct}");
        let body: Value = res.json().await.unwrap();
        let version = body["version"].as_str().unwrap().to_owned();
        assert_eq!(version.len(), 32);
        for (size, px) in [("topbar", 20), ("smaller", 32), ("small", 50), ("large", 100), ("larger", 200)] {
            let url = body["urls"][size].as_str().unwrap();
            assert!(url.ends_with(&format!("/{size}/{version}.jpeg")), "{url}");
            let res = fetch(&app, url).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()["content-type"], "image/jpeg");
            assert_eq!(res.headers()["cache-control"], "public, max-age=31536000, immutable");
            let img = image::load_from_memory_with_format(&res.bytes().await.unwrap(), ImageFormat::Jpeg).unwrap();
            assert_eq!((img.width(), img.height()), (px, px));
        }
        versions.push(body);
    }
    // Each upload replaces the last: the old URLs are gone.
    let old = versions[0]["urls"]["large"].as_str().unwrap();
    assert_eq!(fetch(&app, old).await.status(), StatusCode::NOT_FOUND);
    let (_, me) = app.send(reqwest::Method::GET, "/v1/me", &token, None).await;
    assert_eq!(me["user"]["avatar_version"], versions[2]["version"]);
    // A multipart form with the picture as its file works too.
    let boundary = "xyzzy";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend(picture(ImageFormat::Png, 64, 64));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let res = upload(&app, &token, &format!("multipart/form-data; boundary={boundary}"), body).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Removing it brings the generated picture back.
    let res = app.client.delete(app.url("/v1/me/avatar")).bearer_auth(&token).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["version"], "default");
    assert_eq!(fetch(&app, body["urls"]["small"].as_str().unwrap()).await.status(), StatusCode::OK);
    let (_, me) = app.send(reqwest::Method::GET, "/v1/me", &token, None).await;
    assert_eq!(me["user"]["avatar_version"], Value::Null);
}

async fn what_is_not_a_picture_is_refused_and_nothing_changes(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("ada", PW).await;
    let res = app.client.put(app.url("/v1/me/avatar")).header("content-type", "image/png").body(picture(
        ImageFormat::Png,
        8,
        8,
    ));
    assert_error(res.send().await.unwrap(), StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for (ct, body) in [
        ("image/png", b"GIF89a\x01\x00\x01\x00".to_vec()),
        ("image/png", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec()),
        ("image/jpeg", picture(ImageFormat::Png, 10, 10)[..40].to_vec()),
        ("image/png", Vec::new()),
    ] {
        let res = upload(&app, &token, ct, body).await;
        let err = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(err["error"]["fields"]["avatar"].is_string(), "{err}");
    }
    assert_error(
        upload(&app, &token, "image/gif", b"GIF89a".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        upload(&app, &token, "image/png", vec![0; 5 * 1024 * 1024 + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    // A picture too wide to decode safely (the header says 9000 pixels).
    let wide = picture(ImageFormat::Png, 9000, 1);
    let res = upload(&app, &token, "image/png", wide).await;
    let err = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(err["error"]["fields"]["avatar"].as_str().unwrap().contains("8192"), "{err}");
    let (_, me) = app.send(reqwest::Method::GET, "/v1/me", &token, None).await;
    assert_eq!(me["user"]["avatar_version"], Value::Null, "nothing was stored");
}

async fn public_urls_reveal_nothing_and_follow_the_user(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("ada", PW).await;
    let (_, me) = app.send(reqwest::Method::GET, "/v1/me", &token, None).await;
    let id = me["user"]["id"].as_i64().unwrap();
    // A generated picture exists for any id: it tells nothing about the account.
    let mine = fetch(&app, &format!("/avatars/{id}/large/default.jpeg")).await;
    let nobody = fetch(&app, "/avatars/987654/large/default.jpeg").await;
    assert_eq!((mine.status(), nobody.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(mine.headers()["cache-control"], "public, max-age=86400");
    assert_ne!(mine.bytes().await.unwrap(), nobody.bytes().await.unwrap(), "each user has their own");
    for bad in [
        format!("/avatars/{id}/huge/default.jpeg"),
        format!("/avatars/{id}/large/default.png"),
        format!("/avatars/{id}/large/0123456789abcdef0123456789abcdef.jpeg"),
        format!("/avatars/{id}/large/../../v1/me"),
        "/avatars/x/large/default.jpeg".to_owned(),
        "/avatars/-1/large/default.jpeg".to_owned(),
    ] {
        let res = fetch(&app, &bad).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(res.headers()["content-type"], "application/json", "{bad}");
    }
    // A stored picture is found only under its tenant.
    let res = upload(&app, &token, "image/png", picture(ImageFormat::Png, 50, 50)).await;
    let body: Value = res.json().await.unwrap();
    let url = body["urls"]["small"].as_str().unwrap().replace(&app.base, "");
    assert_eq!(fetch(&app, &url).await.status(), StatusCode::OK);
    tenant(&app, "acme", &[]).await;
    assert_eq!(fetch(&app, &format!("/t/acme{url}")).await.status(), StatusCode::NOT_FOUND);
    // Deleting the account deletes its pictures.
    let res =
        app.client.delete(app.url("/v1/me")).bearer_auth(&token).json(&json!({"password": PW})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(fetch(&app, &url).await.status(), StatusCode::NOT_FOUND);
}
