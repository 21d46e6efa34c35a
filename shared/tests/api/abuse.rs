//! Protections against abuse: per-source-IP limits taken from the request
//! context (never from a header a client can forge), test numbers, and
//! Idempotency-Key.

use serde_json::json;
use wiremock::ResponseTemplate;

use crate::support::*;

const OTHER: &str = "+447400123456";

#[tokio::test]
async fn request_refuses_a_source_ip_past_ip_max_sends_per_hour() {
    let app = TestApp::builder()
        .env("IP_MAX_SENDS_PER_HOUR", "2")
        .spawn()
        .await;
    assert_eq!(app.request(PHONE).await.status, 200);
    assert_eq!(app.request(OTHER).await.status, 200);

    let third = app.request("+491701234567").await;

    assert_eq!(third.status, 429);
    assert_eq!(third.error(), "too_many_requests");
    assert!(
        (3_590..=3_600).contains(&third.retry_after()),
        "{}",
        third.retry_after()
    );
    assert_eq!(app.sms_count().await, 2);
    // Another address has its own budget.
    let elsewhere = app
        .request_event("request-otp-http-api.json", |e| {
            e["body"] = json!(json!({"phoneNumber": "+491701234567"}).to_string());
            e["requestContext"]["http"]["sourceIp"] = json!("198.51.100.20");
        })
        .await;
    assert_eq!(elsewhere.status, 200);
}

#[tokio::test]
async fn verify_refuses_a_source_ip_past_ip_max_verifies_per_hour() {
    let app = TestApp::builder()
        .env("IP_MAX_VERIFIES_PER_HOUR", "3")
        .env("OTP_MAX_ATTEMPTS", "100")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    for _ in 0..3 {
        assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 400);
    }

    let fourth = app.verify(PHONE, &code).await;

    assert_eq!(fourth.status, 429);
    assert_eq!(fourth.error(), "too_many_requests");
    assert!(fourth.retry_after() > 3_500);
}

#[tokio::test]
async fn a_forged_x_forwarded_for_does_not_escape_the_ip_limit() {
    let app = TestApp::builder()
        .env("IP_MAX_SENDS_PER_HOUR", "1")
        .spawn()
        .await;
    assert_eq!(app.request(PHONE).await.status, 200);

    let forged = app
        .request_event("request-otp-http-api.json", |e| {
            e["body"] = json!(json!({"phoneNumber": OTHER}).to_string());
            e["headers"]["x-forwarded-for"] = json!("10.9.8.7");
        })
        .await;

    assert_eq!(forged.status, 429);
}

#[tokio::test]
async fn rest_api_events_are_limited_by_their_identity_source_ip() {
    let app = TestApp::builder()
        .env("IP_MAX_SENDS_PER_HOUR", "1")
        .spawn()
        .await;
    let body = json!(json!({"phoneNumber": OTHER}).to_string());
    assert_eq!(
        app.request_event("request-otp-rest-api.json", |e| e["body"] = body.clone())
            .await
            .status,
        200
    );

    let same_ip = app
        .request_event("request-otp-rest-api.json", |e| {
            e["body"] = json!(json!({"phoneNumber": PHONE}).to_string())
        })
        .await;
    let other_ip = app
        .request_event("request-otp-rest-api.json", |e| {
            e["body"] = json!(json!({"phoneNumber": PHONE}).to_string());
            e["requestContext"]["identity"]["sourceIp"] = json!("198.51.100.20");
        })
        .await;

    assert_eq!(same_ip.status, 429);
    assert_eq!(other_ip.status, 200);
}

#[tokio::test]
async fn alb_events_are_limited_by_the_address_the_alb_appended() {
    let app = TestApp::builder()
        .env("IP_MAX_SENDS_PER_HOUR", "1")
        .spawn()
        .await;
    let alb = |phone: &'static str, forwarded: &'static str| {
        move |e: &mut serde_json::Value| {
            *e = json!({
                "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/otp/6d0ecf831eec9f09"}},
                "httpMethod": "POST",
                "path": "/api/otp/request",
                "queryStringParameters": {},
                "headers": {"content-type": "application/json", "x-forwarded-for": forwarded},
                "body": json!({"phoneNumber": phone}).to_string(),
                "isBase64Encoded": false
            });
        }
    };
    assert_eq!(
        app.request_event(
            "request-otp-http-api.json",
            alb(PHONE, "10.0.0.1, 203.0.113.50")
        )
        .await
        .status,
        200
    );

    // The client may prepend anything; the ALB's own entry is last.
    let spoofed = app
        .request_event(
            "request-otp-http-api.json",
            alb(OTHER, "10.0.0.2, 203.0.113.50"),
        )
        .await;
    let other = app
        .request_event("request-otp-http-api.json", alb(OTHER, "203.0.113.51"))
        .await;

    assert_eq!(spoofed.status, 429);
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn a_test_number_gets_its_fixed_code_without_an_sms() {
    let app = TestApp::builder()
        .env(
            "TEST_PHONE_NUMBERS",
            "+15005550006:424242, +447400123456:135790",
        )
        .spawn()
        .await;

    let response = app.request("+15005550006").await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        json!({"status": "pending", "message": "OTP has been sent successfully.", "expiresInSeconds": 300, "retryAfterSeconds": 30, "channel": "sms"})
    );
    assert_eq!(app.sms_count().await, 0);
    assert_eq!(
        app.verify("+15005550006", "424243").await.error(),
        "invalid_code"
    );
    assert_eq!(app.verify("+15005550006", "424242").await.status, 200);
    assert_eq!(
        app.verify("+15005550006", "424242").await.error(),
        "code_already_used",
        "used once"
    );
}

#[tokio::test]
async fn a_test_number_obeys_the_cooldown_and_the_lockout() {
    let app = TestApp::builder()
        .env("TEST_PHONE_NUMBERS", "+15005550006:424242")
        .env("OTP_MAX_ATTEMPTS", "2")
        .spawn()
        .await;
    assert_eq!(app.request("+15005550006").await.status, 200);

    assert_eq!(
        app.request("+15005550006").await.error(),
        "too_many_requests"
    );
    assert_eq!(app.verify("+15005550006", "000000").await.status, 400);
    assert_eq!(
        app.verify("+15005550006", "000000").await.error(),
        "too_many_attempts"
    );
    assert_eq!(
        app.verify("+15005550006", "424242").await.error(),
        "too_many_attempts"
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer_without_a_second_sms() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;

    let first = app.request_with_key(PHONE, "req-1").await;
    let retry = app.request_with_key(PHONE, "req-1").await;

    assert_eq!(first.status, 200);
    assert_eq!((retry.status, &retry.body), (200, &first.body));
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(app.sms_count().await, 1);
    // Another key is another request.
    assert_eq!(app.request_with_key(PHONE, "req-2").await.status, 200);
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn an_idempotency_key_replays_a_definite_refusal() {
    let app = TestApp::spawn().await;

    let first = app.request_with_key("+19005550123", "premium").await;
    let retry = app.request_with_key("+19005550123", "premium").await;

    assert_eq!(first.error(), "destination_not_allowed");
    assert_eq!((retry.status, &retry.body), (403, &first.body));
    assert_eq!(retry.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn a_try_later_answer_is_not_replayed_so_the_retry_after_the_wait_runs() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "1")
        .spawn()
        .await;
    assert_eq!(app.request(PHONE).await.status, 200);
    let refused = app.request_with_key(PHONE, "after-cooldown").await;
    assert_eq!(refused.error(), "too_many_requests");

    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let retry = app.request_with_key(PHONE, "after-cooldown").await;

    assert_eq!(retry.status, 200);
    assert!(retry.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn an_unsettled_idempotency_claim_lapses_with_its_request() {
    let app = TestApp::spawn().await;
    let key = otp::domain::IdempotencyKey::parse("crashed-request").unwrap();
    let store = &app.services.store;
    let ttl = std::time::Duration::from_millis(300);

    assert_eq!(
        store
            .claim(&tag(PHONE), "request", &key, "fp", ttl)
            .await
            .unwrap(),
        otp::store::Claim::Fresh
    );
    assert_eq!(
        store
            .claim(&tag(PHONE), "request", &key, "fp", ttl)
            .await
            .unwrap(),
        otp::store::Claim::Pending
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    assert_eq!(
        store
            .claim(&tag(PHONE), "request", &key, "fp", ttl)
            .await
            .unwrap(),
        otp::store::Claim::Fresh
    );
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_gets_422() {
    let app = TestApp::spawn().await;
    assert_eq!(app.request_with_key(PHONE, "shared-key").await.status, 200);

    let body = json!({"phoneNumber": PHONE, "channel": "voice"}).to_string();
    let reused = app
        .request_event("request-otp-http-api.json", |e| {
            e["body"] = json!(body);
            e["headers"]["idempotency-key"] = json!("shared-key");
        })
        .await;

    assert_eq!(reused.status, 422);
    assert_eq!(
        reused.body,
        json!({"error": "idempotency_key_reused", "message": "This Idempotency-Key was already used with a different request body."})
    );
    assert_eq!(app.sms_count().await, 1);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_to_the_phone_number() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.request_with_key(PHONE, "predictable-1").await.status,
        200
    );

    let stranger = app.request_with_key(OTHER, "predictable-1").await;

    assert_eq!(stranger.status, 200, "{}", stranger.body);
    assert!(stranger.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn a_failed_send_under_an_idempotency_key_can_be_retried() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_answers_once(
        &app.plivo,
        ResponseTemplate::new(400).set_body_json(json!({"error": "temporarily no route"})),
    )
    .await;
    plivo_answers(&app.plivo, plivo_accepted()).await;

    let failed = app.request_with_key(PHONE, "retry-me").await;
    let retried = app.request_with_key(PHONE, "retry-me").await;

    assert_eq!(failed.status, 502);
    assert_eq!(retried.status, 200);
    assert!(retried.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_refused() {
    let app = TestApp::spawn().await;

    let response = app.request_with_key(PHONE, &"k".repeat(256)).await;

    assert_eq!(response.status, 400);
    assert_eq!(
        response.body,
        json!({"error": "invalid_request", "message": "The Idempotency-Key header must be 1 to 255 visible ASCII characters."})
    );
}

#[tokio::test]
async fn request_answers_a_new_and_a_known_number_alike() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    let new = app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);

    let known = app.request(PHONE).await;

    assert_eq!((known.status, &known.body), (new.status, &new.body));
    assert_eq!(
        known.headers.get("retry-after"),
        new.headers.get("retry-after")
    );
}
