//! request-otp: the rules of sending a code.

use std::time::Duration;

use otp::{
    domain::{CodeKey, CodeLength, OtpCode, PhoneNumber, SendId},
    store::{SendDecision, SendFate, SendLimits},
};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::support::*;

#[tokio::test]
async fn request_sends_the_code_by_sms_and_answers_pending() {
    let app = TestApp::spawn().await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        json!({
            "status": "pending",
            "message": "OTP has been sent successfully.",
            "expiresInSeconds": 300,
            "retryAfterSeconds": 30,
            "channel": "sms",
        })
    );
    assert_eq!(response.headers["cache-control"], "no-store");
    let texts = app.sms_texts().await;
    assert_eq!(texts.len(), 1);
    let (dst, text) = &texts[0];
    assert_eq!(dst, PHONE);
    let code = code_in(text, 6);
    assert_eq!(
        text,
        &format!("Your Acme verification code is {code}. It expires in 5 minutes.")
    );
}

#[tokio::test]
async fn request_normalises_a_formatted_number_to_e164_before_sending() {
    let app = TestApp::spawn().await;

    let response = app.request("+1 (415) 555-2671").await;

    assert_eq!(response.status, 200);
    assert_eq!(app.sms_texts().await[0].0, PHONE);
}

#[tokio::test]
async fn request_stores_only_a_keyed_digest_of_the_code() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    let dump = app.redis_dump(PHONE).await;

    assert_eq!(dump.len(), 2, "the code and the send log: {dump:?}");
    let phone = PhoneNumber::parse(PHONE).unwrap();
    let code_value = OtpCode::parse(&code, CodeLength::default()).unwrap();
    let digest = CodeKey::derive(SIGNING_KEY.as_bytes()).digest(&phone, &code_value);
    assert!(
        dump.iter().any(|line| line.contains(digest.as_str())),
        "the stored digest is the keyed HMAC of phone and code: {dump:?}"
    );
    for line in &dump {
        assert!(!line.contains(&code), "{line}");
        let value = line.split_once(" = ").unwrap().1;
        assert!(
            !value.contains(PHONE) && !value.contains(&PHONE[1..]),
            "{line}"
        );
    }
}

#[tokio::test]
async fn request_keeps_the_code_for_otp_ttl_seconds() {
    let app = TestApp::builder()
        .env("OTP_TTL_SECONDS", "120")
        .spawn()
        .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.body["expiresInSeconds"], 120);
    let ttl = app.pttl(PHONE, "code").await;
    assert!((119_000..=120_000).contains(&ttl), "{ttl}");
    assert!(app.sms_texts().await[0].1.contains("expires in 2 minutes"));
}

#[tokio::test]
async fn request_refuses_a_second_send_within_the_cooldown() {
    let app = TestApp::spawn().await;
    assert_eq!(app.request(PHONE).await.status, 200);

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 429);
    assert_eq!(response.error(), "too_many_requests");
    assert_eq!(response.retry_after(), 60, "rounded up to whole minutes");
    assert_eq!(app.sms_count().await, 1);
}

#[tokio::test]
async fn request_allows_a_resend_once_the_cooldown_has_passed() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "1")
        .spawn()
        .await;
    assert_eq!(app.request(PHONE).await.status, 200);
    assert_eq!(app.request(PHONE).await.status, 429);

    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    assert_eq!(app.request(PHONE).await.status, 200);
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn request_refuses_sends_past_the_hourly_quota() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .env("OTP_MAX_SENDS_PER_HOUR", "3")
        .spawn()
        .await;
    for _ in 0..3 {
        assert_eq!(app.request(PHONE).await.status, 200);
    }

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 429);
    assert_eq!(response.error(), "too_many_requests");
    assert!(
        (3_590..=3_600).contains(&response.retry_after()),
        "{}",
        response.retry_after()
    );
    assert_eq!(app.sms_count().await, 3);
}

#[tokio::test]
async fn request_quota_is_per_phone_number() {
    let app = TestApp::builder()
        .env("OTP_MAX_SENDS_PER_HOUR", "1")
        .spawn()
        .await;
    assert_eq!(app.request(PHONE).await.status, 200);

    assert_eq!(app.request("+447400123456").await.status, 200);
}

#[tokio::test]
async fn a_new_request_replaces_the_previous_code() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    app.request(PHONE).await;
    let first = app.last_code(PHONE).await;
    app.request(PHONE).await;
    let second = app.last_code(PHONE).await;
    if first == second {
        // One chance in a million: the replacement cannot be told apart.
        return;
    }

    assert_eq!(app.verify(PHONE, &first).await.error(), "invalid_code");
    assert_eq!(app.verify(PHONE, &second).await.status, 200);
}

#[tokio::test]
async fn request_sends_codes_of_otp_length_digits() {
    let app = TestApp::builder().env("OTP_LENGTH", "8").spawn().await;

    app.request(PHONE).await;

    let code = app.last_code(PHONE).await;
    assert_eq!(code.len(), 8);
    assert_eq!(
        app.verify(PHONE, &code[..6]).await.error(),
        "invalid_code_format"
    );
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn request_refuses_premium_rate_and_shared_cost_numbers() {
    let app = TestApp::spawn().await;

    for number in ["+19005550123", "+448431234567"] {
        let response = app.request(number).await;
        assert_eq!(response.status, 403, "{number}");
        assert_eq!(response.error(), "destination_not_allowed");
    }
    assert_eq!(app.sms_count().await, 0);
}

#[tokio::test]
async fn request_refuses_countries_outside_allowed_countries() {
    let app = TestApp::builder()
        .env("ALLOWED_COUNTRIES", "GB,DE")
        .spawn()
        .await;

    let refused = app.request(PHONE).await;
    let allowed = app.request("+447400123456").await;

    assert_eq!(refused.status, 403);
    assert_eq!(refused.error(), "destination_not_allowed");
    assert_eq!(allowed.status, 200);
    assert_eq!(app.sms_count().await, 1);
}

#[tokio::test]
async fn request_adds_webotp_and_android_lines_when_configured() {
    let app = TestApp::builder()
        .env("WEBOTP_DOMAIN", "login.example.com")
        .env("ANDROID_APP_HASH", "FA+9qCX9VSu")
        .spawn()
        .await;

    app.request(PHONE).await;

    let code = app.last_code(PHONE).await;
    let text = &app.sms_texts().await[0].1;
    assert!(
        text.ends_with(&format!("\n\nFA+9qCX9VSu\n@login.example.com #{code}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_send_plivo_refuses_leaves_no_code_and_does_not_count() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_answers(
        &app.plivo,
        ResponseTemplate::new(400).set_body_json(json!({"api_id": "a", "error": "no route"})),
    )
    .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 502);
    assert_eq!(
        response.body,
        json!({"error": "sms_delivery_failed", "message": "The SMS could not be sent. Check the number or try again later."})
    );
    assert_eq!(app.sms_count().await, 1, "a 4xx is not retried");
    let code = app.last_code(PHONE).await;
    assert_eq!(app.pttl(PHONE, "code").await, -2, "no code left behind");
    assert_eq!(
        app.pttl(PHONE, "sends").await,
        -2,
        "the send is not counted"
    );
    assert_eq!(app.verify(PHONE, &code).await.error(), "invalid_code");
    // Nothing stands in the way of trying again at once.
    app.plivo.reset().await;
    plivo_answers(&app.plivo, plivo_accepted()).await;
    assert_eq!(app.request(PHONE).await.status, 200);
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn a_send_that_may_have_gone_out_leaves_no_code_but_keeps_counting() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_answers(
        &app.plivo,
        ResponseTemplate::new(500).set_body_string("upstream exploded"),
    )
    .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 502);
    assert_eq!(response.error(), "sms_delivery_failed");
    assert_eq!(app.sms_count().await, 3, "three attempts by default");
    let code = app.last_code(PHONE).await;
    assert_eq!(app.pttl(PHONE, "code").await, -2, "no code left behind");
    assert_eq!(app.verify(PHONE, &code).await.error(), "invalid_code");
    // A 5xx may follow a queued SMS: retrying at once must not bypass the cooldown.
    let again = app.request(PHONE).await;
    assert_eq!(again.status, 429);
    assert_eq!(again.error(), "too_many_requests");
    assert_eq!(app.sms_count().await, 3);
}

#[tokio::test]
async fn cancelling_an_older_send_keeps_the_newer_code() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    let phone = PhoneNumber::parse(PHONE).unwrap();
    let key = CodeKey::derive(SIGNING_KEY.as_bytes());
    let length = CodeLength::default();
    let limits = SendLimits {
        code_ttl: Duration::from_secs(300),
        cooldown: Duration::ZERO,
        max_sends: 5,
        window: Duration::from_secs(3600),
        max_failures_per_day: 20,
    };
    let first = OtpCode::generate(length);
    let second = OtpCode::parse(&wrong(first.expose()), length).unwrap();
    let store = &app.services.store;
    let older = SendId::generate();
    let first_send = store
        .begin_send(
            &tag(PHONE),
            &older,
            &key.digest(&phone, &first),
            None,
            None,
            limits,
        )
        .await
        .unwrap();
    assert_eq!(first_send, SendDecision::Stored, "first send refused");
    let second_send = store
        .begin_send(
            &tag(PHONE),
            &SendId::generate(),
            &key.digest(&phone, &second),
            None,
            None,
            limits,
        )
        .await
        .unwrap();
    assert_eq!(second_send, SendDecision::Stored, "second send refused");

    store
        .cancel_send(&tag(PHONE), &older, SendFate::NotSent)
        .await
        .unwrap();

    assert_eq!(app.verify(PHONE, second.expose()).await.status, 200);
}

#[tokio::test]
async fn request_answers_503_with_retry_after_when_redis_is_down() {
    // Nothing listens on port 1: the cold start must still succeed.
    let app = TestApp::builder()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("REDIS_TLS_CA_FILE", "")
        .env("REDIS_TIMEOUT_MS", "200")
        .spawn()
        .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 503);
    assert_eq!(response.error(), "service_unavailable");
    assert!(response.retry_after() > 0);
    assert_eq!(app.sms_count().await, 0);
    let response = app.verify(PHONE, "123456").await;
    assert_eq!(response.status, 503);
    assert_eq!(response.error(), "service_unavailable");
}
