//! Retries that never cost a user their code: a lost verify reply fetched
//! again through Idempotency-Key, a late resend answered as the first run,
//! a send whose reply was lost undone, and no Redis call past the deadline.

use std::time::{Duration, Instant};

use lambda_http::RequestExt;
use serde_json::json;

use crate::{redis_server::*, support::*};

async fn verify_with_key(app: &TestApp, code: &str, key: &str) -> TestResponse {
    let body = json!({"phoneNumber": PHONE, "otp": code}).to_string();
    let event = event("verify-otp-http-api.json", |e| {
        e["body"] = json!(body);
        e["headers"]["idempotency-key"] = json!(key);
    });
    TestResponse::from_response(otp::http::verify_otp(&app.services, event).await)
}

#[tokio::test]
async fn a_lost_verify_reply_is_replayed_with_its_token_through_idempotency_key() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    let first = verify_with_key(&app, &code, "verify-once-1").await;
    assert_eq!(first.status, 200);

    // The client never saw that answer and retries with the same key.
    let retry = verify_with_key(&app, &code, "verify-once-1").await;

    assert_eq!(retry.status, 200);
    assert_eq!(retry.body, first.body, "the same token, not a second one");
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let without_key = app.verify(PHONE, &code).await;
    assert_eq!(without_key.error(), "code_already_used");
}

#[tokio::test]
async fn a_verify_key_reused_with_another_code_gets_422() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(
        verify_with_key(&app, &wrong(&code), "k-2").await.status,
        400
    );

    let other = verify_with_key(&app, &code, "k-2").await;

    assert_eq!(other.status, 422);
    assert_eq!(other.error(), "idempotency_key_reused");
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn a_send_whose_reply_was_lost_is_undone_so_the_retry_is_not_refused() {
    let mut redis = RedisServer::reserve();
    redis.start().await;
    let proxy = CuttingProxy::start(redis.port).await;
    let app = TestApp::builder()
        .env("REDIS_URL", &proxy.url())
        .env("REDIS_CLUSTER", "false")
        .env("REDIS_TLS_CA_FILE", "")
        .env("REDIS_TIMEOUT_MS", "500")
        .spawn()
        .await;
    let request_script = redis::Script::new(concat!(
        include_str!("../../src/store/prelude.lua"),
        include_str!("../../src/store/request.lua")
    ));
    // Warm the connection, then lose the replies of the next send's script
    // and of the client's own resends of it.
    assert_eq!(app.verify(PHONE, "123456").await.status, 400);
    proxy.cut_after(request_script.get_hash(), 5);

    let lost = app.request(PHONE).await;

    assert_eq!(lost.status, 503, "{}", lost.body);
    assert_eq!(app.sms_count().await, 0);
    proxy.disarm();
    // The client retries until Redis answers again (the connection was cut).
    let mut retry = app.request(PHONE).await;
    for _ in 0..50 {
        if retry.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        retry = app.request(PHONE).await;
    }
    assert_eq!(
        retry.status, 200,
        "not refused by a cooldown: {}",
        retry.body
    );
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn no_redis_call_outlives_the_invocations_deadline() {
    let mut redis = RedisServer::reserve();
    redis.start().await;
    let app = TestApp::builder()
        .env("REDIS_URL", &redis.url())
        .env("REDIS_CLUSTER", "false")
        .env("REDIS_TLS_CA_FILE", "")
        .env("REDIS_TIMEOUT_MS", "20000")
        .spawn()
        .await;
    assert_eq!(app.verify(PHONE, "123456").await.status, 400);
    redis.signal("-STOP");
    let with_deadline = |file: &str, body: String| {
        let mut context = lambda_http::Context::default();
        let deadline = std::time::SystemTime::now() + Duration::from_millis(1_500);
        context.deadline = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        event(file, |e| e["body"] = json!(body)).with_lambda_context(context)
    };

    let started = Instant::now();
    let request = otp::http::request_otp(
        &app.services,
        with_deadline(
            "request-otp-http-api.json",
            json!({"phoneNumber": PHONE}).to_string(),
        ),
    )
    .await;
    let request_took = started.elapsed();
    let started = Instant::now();
    let verify = otp::http::verify_otp(
        &app.services,
        with_deadline(
            "verify-otp-http-api.json",
            json!({"phoneNumber": PHONE, "otp": "123456"}).to_string(),
        ),
    )
    .await;
    let verify_took = started.elapsed();
    redis.signal("-CONT");

    assert_eq!(request.status(), 503);
    assert_eq!(verify.status(), 503);
    // Answered by the deadline (1.5 s, less the margin), far inside the
    // 20 s Redis timeout.
    assert!(
        request_took < Duration::from_millis(1_500),
        "{request_took:?}"
    );
    assert!(
        verify_took < Duration::from_millis(1_500),
        "{verify_took:?}"
    );
    // And the queued scripts, run once Redis woke, did nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.pttl(PHONE, "code").await, -2);
    assert_eq!(app.pttl(PHONE, "sends").await, -2);
}
