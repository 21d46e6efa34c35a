//! Line-type screening against a local Plivo Lookup API that checks its
//! exact request: blocked types refused, one lookup per number (cached),
//! lookups that fail let the send through, unknown numbers refused.

use std::time::Duration;

use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::{fraud_mock::*, support::*};

async fn lookup_server(number: &str, answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    lookup(number).respond_with(answer).mount(&server).await;
    server
}

#[tokio::test]
async fn a_voip_number_is_refused_when_voip_is_blocked() {
    let server = lookup_server(PHONE, carrier(PHONE, "voip")).await;
    let app = with_lookup(TestApp::builder(), "voip", &server)
        .spawn()
        .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 403, "{}", response.body);
    assert_eq!(response.error(), "destination_not_allowed");
    assert!(response.body.get("hint").is_none(), "{}", response.body);
    assert_eq!(app.sms_count().await, 0);
    assert_eq!(lookup_calls(&server).await, 1);
    // Refused, and remembered: asking again looks nothing up.
    assert_eq!(app.request(PHONE).await.status, 403);
    assert_eq!(lookup_calls(&server).await, 1);
}

#[tokio::test]
async fn a_second_send_to_the_same_number_makes_no_second_lookup() {
    let server = lookup_server(PHONE, carrier(PHONE, "mobile")).await;
    let app = with_lookup(TestApp::builder(), "voip,toll-free", &server)
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;

    let first = app.request(PHONE).await;
    let second = app.request(PHONE).await;

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(lookup_calls(&server).await, 1);
    assert_eq!(app.sms_count().await, 2);
    // Only the type is kept, under the phone's tag, for 30 days.
    let cached: String = app
        .redis
        .query(redis::cmd("GET").arg(app.key(PHONE, "line")))
        .await;
    assert_eq!(cached, "mobile");
    let ttl = app.pttl(PHONE, "line").await;
    assert!(ttl > 29 * 86_400_000 && ttl <= 30 * 86_400_000, "{ttl}");
}

#[tokio::test]
async fn a_lookup_timeout_still_sends() {
    let server = lookup_server(
        PHONE,
        carrier(PHONE, "voip").set_delay(Duration::from_secs(5)),
    )
    .await;
    let app = with_lookup(TestApp::builder(), "voip", &server)
        .env("LOOKUP_TIMEOUT_MS", "300")
        .spawn()
        .await;

    let started = std::time::Instant::now();
    let response = app.request(PHONE).await;

    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.sms_count().await, 1);
    assert!(
        app.redis_dump(PHONE)
            .await
            .iter()
            .all(|l| !l.contains(":line "))
    );
}

#[tokio::test]
async fn a_lookup_server_error_or_an_unreachable_lookup_still_sends() {
    let server = lookup_server(PHONE, ResponseTemplate::new(503)).await;
    let app = with_lookup(TestApp::builder(), "voip", &server)
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;

    let on_503 = app.request(PHONE).await;
    drop(server);
    let unreachable = app.request(PHONE).await;

    assert_eq!(on_503.status, 200, "{}", on_503.body);
    assert_eq!(unreachable.status, 200, "{}", unreachable.body);
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn a_number_plivo_does_not_know_is_invalid_phone_number() {
    let server = lookup_server(
        PHONE,
        ResponseTemplate::new(404).set_body_json(json!({
            "api_id": "7a2f8b8e-2e31-11ee-9a6b-0242ac110003",
            "error": "Phone number is invalid or does not exist."})),
    )
    .await;
    let app = with_lookup(TestApp::builder(), "voip", &server)
        .spawn()
        .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 400, "{}", response.body);
    assert_eq!(response.error(), "invalid_phone_number");
    assert_eq!(app.sms_count().await, 0);
    assert_eq!(app.breaker_counts("US:415555").await, (0, 0));
}

#[tokio::test]
async fn a_fixed_line_asking_for_sms_is_told_a_call_can_reach_it() {
    let server = lookup_server(PHONE, carrier(PHONE, "fixed")).await;
    let app = with_lookup(TestApp::builder(), "fixed", &server)
        .spawn()
        .await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;

    let by_sms = app.request(PHONE).await;
    let by_voice = app
        .request_raw(&json!({"phoneNumber": PHONE, "channel": "voice"}).to_string())
        .await;

    assert_eq!(by_sms.status, 403, "{}", by_sms.body);
    assert_eq!(by_sms.error(), "destination_not_allowed");
    assert_eq!(by_sms.body["hint"], "voice");
    assert_eq!(by_voice.status, 200, "{}", by_voice.body);
    assert_eq!(lookup_calls(&server).await, 1, "the type was cached");
}

#[tokio::test]
async fn without_the_voice_channel_a_fixed_line_gets_no_hint() {
    let server = lookup_server(PHONE, carrier(PHONE, "fixed")).await;
    let app = with_lookup(TestApp::builder(), "fixed", &server)
        .env("OTP_CHANNELS", "sms")
        .spawn()
        .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.error(), "destination_not_allowed");
    assert!(response.body.get("hint").is_none(), "{}", response.body);
}

#[tokio::test]
async fn test_and_trusted_numbers_are_not_looked_up() {
    let server = MockServer::start().await;
    let app = with_lookup(TestApp::builder(), "voip,fixed,toll-free,unknown", &server)
        .env("TEST_PHONE_NUMBERS", "+15005550006:424242")
        .env("TRUSTED_PHONE_NUMBERS", PHONE)
        .spawn()
        .await;

    assert_eq!(app.request("+15005550006").await.status, 200);
    assert_eq!(app.request(PHONE).await.status, 200);
    assert_eq!(lookup_calls(&server).await, 0);
}

#[tokio::test]
async fn with_no_blocked_line_type_nothing_is_looked_up() {
    let server = MockServer::start().await;
    let app = TestApp::builder()
        .env("PLIVO_LOOKUP_URL", &server.uri())
        .spawn()
        .await;

    assert_eq!(app.request(PHONE).await.status, 200);
    assert_eq!(lookup_calls(&server).await, 0);
}
