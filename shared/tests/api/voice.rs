//! The voice channel and Plivo's callbacks, end to end through the edge:
//! a call placed with Plivo's exact Call API form, the signed answer URL
//! speaking the live code, delivery receipts lifting the cooldown, the
//! automatic fallback call, and signatures and nonces guarding all of it.

use serde_json::json;

use crate::support::*;

const VOICE_PHONE: &str = "+14155550301";

async fn voice_app(env: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder();
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let app = builder.spawn().await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;
    app
}

async fn request_voice(app: &TestApp, phone: &str) -> TestResponse {
    app.request_raw(&json!({"phoneNumber": phone, "channel": "voice"}).to_string())
        .await
}

/// Plivo's V2 signature headers for `url` (V2 signs neither query nor body).
fn v2_headers(url: &str, nonce: &str) -> serde_json::Value {
    use otp::plivo::signature::{Signed, Version, sign};
    let v2 = sign(Version::V2, AUTH_TOKEN, Signed { url, params: &[] }, nonce);
    json!({"x-plivo-signature-v2": v2, "x-plivo-signature-v2-nonce": nonce})
}

/// A message status callback's form body, unsigned.
fn status_form(to: &str, status: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            status_fields(to, status)
                .iter()
                .map(|(k, v)| (*k, v.as_str())),
        )
        .finish()
}

async fn last_answer_url(app: &TestApp) -> String {
    let calls = app.plivo_requests("Call").await;
    let call = calls.last().expect("a call was placed");
    call["answer_url"].as_str().unwrap().to_owned()
}

async fn last_status_url(app: &TestApp) -> String {
    let messages = app.plivo_requests("Message").await;
    let message = messages.last().expect("an SMS was sent");
    message["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_voice_request_places_a_call_with_plivos_exact_form() {
    let app = voice_app(&[]).await;

    let response = request_voice(&app, VOICE_PHONE).await;

    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["channel"], "voice");
    assert_eq!(response.body["status"], "pending");
    let calls = app.plivo_requests("Call").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["to"], VOICE_PHONE);
    assert_eq!(
        app.sms_count().await,
        1,
        "the call is the only Plivo request"
    );
    let sent = app.plivo_requests("Message").await;
    assert!(sent.is_empty(), "no SMS for a voice request: {sent:?}");
}

#[tokio::test]
async fn an_sms_request_says_its_channel_and_asks_plivo_for_receipts() {
    let app = TestApp::spawn().await;

    let response = app.request(VOICE_PHONE).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.body["channel"], "sms");
    let status_url = last_status_url(&app).await;
    assert!(
        status_url
            .starts_with("https://abc123.execute-api.us-east-1.amazonaws.com/api/otp/status?send="),
        "{status_url}"
    );
}

#[tokio::test]
async fn the_signed_answer_url_speaks_the_live_code_and_that_code_verifies() {
    let app = voice_app(&[]).await;
    assert_eq!(request_voice(&app, VOICE_PHONE).await.status, 200);

    let answer = app
        .answer_call(&last_answer_url(&app).await, VOICE_PHONE)
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/xml");
    assert!(
        answer
            .body
            .starts_with("<Response><Speak language=\"en-US\">"),
        "{}",
        answer.body
    );
    let code = spoken_code(&answer.body, 6).expect("the call speaks a code");
    let spaced = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        answer.body.matches(&spaced).count(),
        2,
        "said twice, digit by digit"
    );
    audit_append("codes.txt", &code);
    assert_eq!(app.verify(VOICE_PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn the_answer_after_the_code_was_verified_speaks_no_code() {
    let app = voice_app(&[]).await;
    request_voice(&app, VOICE_PHONE).await;
    let answer_url = last_answer_url(&app).await;
    let code = spoken_code(&app.answer_call(&answer_url, VOICE_PHONE).await.body, 6).unwrap();
    assert_eq!(app.verify(VOICE_PHONE, &code).await.status, 200);

    let again = app.answer_call(&answer_url, VOICE_PHONE).await;

    assert_eq!(again.status, 200);
    assert_eq!(again.content_type, "application/xml");
    assert!(again.body.contains("<Speak"), "{}", again.body);
    assert!(
        !again.body.chars().any(|c| c.is_ascii_digit()),
        "{}",
        again.body
    );
}

#[tokio::test]
async fn the_answer_for_a_replaced_code_speaks_no_code() {
    let app = voice_app(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await;
    request_voice(&app, VOICE_PHONE).await;
    let first_url = last_answer_url(&app).await;
    request_voice(&app, VOICE_PHONE).await;

    let stale = app.answer_call(&first_url, VOICE_PHONE).await;

    assert!(
        !stale.body.chars().any(|c| c.is_ascii_digit()),
        "{}",
        stale.body
    );
    let fresh = app
        .answer_call(&last_answer_url(&app).await, VOICE_PHONE)
        .await;
    assert!(spoken_code(&fresh.body, 6).is_some());
}

#[tokio::test]
async fn a_missing_or_wrong_signature_gets_403_and_changes_nothing() {
    let app = TestApp::spawn().await;
    assert_eq!(app.request(VOICE_PHONE).await.status, 200);
    let status_url = last_status_url(&app).await;
    let fields = status_fields(VOICE_PHONE, "undelivered");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();

    let unsigned = app
        .callback(
            &status_url,
            &body,
            json!({"content-type": "application/x-www-form-urlencoded"}),
        )
        .await;
    let (forged_body, forged_headers) = signed_callback(&status_url, &fields, "not-the-auth-token");
    let forged = app
        .callback(&status_url, &forged_body, forged_headers)
        .await;
    // Signed for one number, posted for another.
    let (_, headers) = signed_callback(
        &status_url,
        &status_fields("+14155550399", "delivered"),
        AUTH_TOKEN,
    );
    let tampered = app.callback(&status_url, &body, headers).await;

    for response in [&unsigned, &forged, &tampered] {
        assert_eq!(response.status, 403, "{}", response.body);
        assert!(
            response.body.contains("invalid_signature"),
            "{}",
            response.body
        );
    }
    let again = app.request(VOICE_PHONE).await;
    assert_eq!(again.status, 429, "the cooldown still holds");
}

#[tokio::test]
async fn an_unsigned_answer_gets_403_and_speaks_nothing() {
    let app = voice_app(&[]).await;
    request_voice(&app, VOICE_PHONE).await;
    let answer_url = last_answer_url(&app).await;
    let body = format!("To={}&CallStatus=in-progress", &VOICE_PHONE[1..]);

    let response = app
        .callback(
            &answer_url,
            &body,
            json!({"x-plivo-signature-v3": "AAAA", "x-plivo-signature-v3-nonce": "1"}),
        )
        .await;

    assert_eq!(response.status, 403);
    assert!(
        !response.body.chars().any(|c| c.is_ascii_digit()),
        "{}",
        response.body
    );
}

#[tokio::test]
async fn a_replayed_nonce_changes_nothing() {
    let app = voice_app(&[]).await;
    request_voice(&app, VOICE_PHONE).await;
    let answer_url = last_answer_url(&app).await;
    let (body, headers) = signed_callback(
        &answer_url,
        &[("To", &VOICE_PHONE[1..]), ("CallStatus", "in-progress")],
        AUTH_TOKEN,
    );
    let first = app.callback(&answer_url, &body, headers.clone()).await;
    assert!(spoken_code(&first.body, 6).is_some(), "{}", first.body);

    let replay = app.callback(&answer_url, &body, headers).await;

    assert_eq!(replay.status, 200);
    assert!(
        !replay.body.chars().any(|c| c.is_ascii_digit()),
        "{}",
        replay.body
    );
}

#[tokio::test]
async fn a_replayed_v2_signature_cannot_carry_another_status() {
    let app = TestApp::spawn().await;
    app.request(VOICE_PHONE).await;
    let status_url = last_status_url(&app).await;
    let headers = v2_headers(&status_url, "8217361923");
    let form = |status: &str| status_form(VOICE_PHONE, status);
    assert_eq!(
        app.callback(&status_url, &form("delivered"), headers.clone())
            .await
            .status,
        204
    );

    let replay = app
        .callback(&status_url, &form("undelivered"), headers)
        .await;

    assert_eq!(replay.status, 204);
    assert_eq!(
        app.request(VOICE_PHONE).await.status,
        429,
        "the cooldown was not lifted"
    );
}

#[tokio::test]
async fn a_v2_signed_undelivered_receipt_is_accepted_on_the_status_url() {
    let app = TestApp::spawn().await;
    app.request(VOICE_PHONE).await;
    let status_url = last_status_url(&app).await;

    let response = app
        .callback(
            &status_url,
            &status_form(VOICE_PHONE, "undelivered"),
            v2_headers(&status_url, "99817"),
        )
        .await;

    assert_eq!(response.status, 204);
    assert_eq!(
        app.request(VOICE_PHONE).await.status,
        200,
        "the cooldown was lifted"
    );
}

#[tokio::test]
async fn an_undelivered_receipt_for_the_live_code_lifts_the_cooldown_but_one_for_an_older_message_does_not()
 {
    let app = TestApp::spawn().await;
    assert_eq!(app.request(VOICE_PHONE).await.status, 200);
    let first = last_status_url(&app).await;
    assert_eq!(
        app.request(VOICE_PHONE).await.status,
        429,
        "in the cooldown"
    );

    assert_eq!(
        app.message_status(&first, VOICE_PHONE, "undelivered")
            .await
            .status,
        204
    );
    assert_eq!(
        app.request(VOICE_PHONE).await.status,
        200,
        "lifted for the live code"
    );

    assert_eq!(
        app.message_status(&first, VOICE_PHONE, "failed")
            .await
            .status,
        204
    );
    assert_eq!(
        app.request(VOICE_PHONE).await.status,
        429,
        "a receipt for an older message lifts nothing"
    );
}

#[tokio::test]
async fn a_lifted_cooldown_still_counts_toward_the_hourly_quota() {
    let app = TestApp::builder()
        .env("OTP_MAX_SENDS_PER_HOUR", "2")
        .spawn()
        .await;
    for _ in 0..2 {
        assert_eq!(app.request(VOICE_PHONE).await.status, 200);
        let url = last_status_url(&app).await;
        app.message_status(&url, VOICE_PHONE, "rejected").await;
    }
    let third = app.request(VOICE_PHONE).await;
    assert_eq!(third.status, 429);
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn delivered_and_queued_receipts_lift_nothing() {
    let app = TestApp::spawn().await;
    app.request(VOICE_PHONE).await;
    let url = last_status_url(&app).await;
    for status in ["queued", "sent", "delivered"] {
        assert_eq!(
            app.message_status(&url, VOICE_PHONE, status).await.status,
            204
        );
    }
    assert_eq!(app.request(VOICE_PHONE).await.status, 429);
}

#[tokio::test]
async fn voice_fallback_auto_places_exactly_one_call_for_an_undelivered_code_even_when_the_receipt_arrives_twice()
 {
    let app = voice_app(&[("VOICE_FALLBACK", "auto")]).await;
    assert_eq!(app.request(VOICE_PHONE).await.status, 200);
    let sms_code = app.last_code(VOICE_PHONE).await;
    let status_url = last_status_url(&app).await;

    let (first, second) = tokio::join!(
        app.message_status(&status_url, VOICE_PHONE, "undelivered"),
        app.message_status(&status_url, VOICE_PHONE, "undelivered"),
    );
    assert_eq!((first.status, second.status), (204, 204));
    app.message_status(&status_url, VOICE_PHONE, "failed").await;

    let calls = app.plivo_requests("Call").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let answer = app
        .answer_call(calls[0]["answer_url"].as_str().unwrap(), VOICE_PHONE)
        .await;
    assert_eq!(
        spoken_code(&answer.body, 6),
        Some(sms_code.clone()),
        "the call speaks the SMS's code"
    );
    assert_eq!(app.verify(VOICE_PHONE, &sms_code).await.status, 200);
}

#[tokio::test]
async fn voice_fallback_stays_off_by_default_and_where_voice_is_not_allowed() {
    let off = voice_app(&[]).await;
    off.request(VOICE_PHONE).await;
    off.message_status(&last_status_url(&off).await, VOICE_PHONE, "undelivered")
        .await;
    assert!(off.plivo_requests("Call").await.is_empty());

    let not_here = voice_app(&[
        ("VOICE_FALLBACK", "auto"),
        ("VOICE_ALLOWED_COUNTRIES", "GB"),
    ])
    .await;
    not_here.request(VOICE_PHONE).await;
    not_here
        .message_status(
            &last_status_url(&not_here).await,
            VOICE_PHONE,
            "undelivered",
        )
        .await;
    assert!(not_here.plivo_requests("Call").await.is_empty());
}

#[tokio::test]
async fn a_channel_other_than_sms_or_voice_gets_400_invalid_channel() {
    let app = TestApp::spawn().await;
    for channel in [
        json!("fax"),
        json!("SMS"),
        json!(1),
        json!(""),
        json!(["voice"]),
    ] {
        let response = app
            .request_raw(&json!({"phoneNumber": VOICE_PHONE, "channel": channel}).to_string())
            .await;
        assert_eq!(response.status, 400, "{channel}");
        assert_eq!(response.error(), "invalid_channel", "{channel}");
    }
    assert_eq!(app.sms_count().await, 0);
}

#[tokio::test]
async fn a_channel_not_on_offer_gets_403_channel_not_allowed() {
    let app = voice_app(&[("OTP_CHANNELS", "sms")]).await;
    let response = request_voice(&app, VOICE_PHONE).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.error(), "channel_not_allowed");
    assert!(app.plivo_requests("Call").await.is_empty());
}

#[tokio::test]
async fn voice_is_refused_outside_voice_allowed_countries_and_to_premium_numbers() {
    let app = voice_app(&[
        ("ALLOWED_COUNTRIES", "US,GB"),
        ("VOICE_ALLOWED_COUNTRIES", "GB"),
    ])
    .await;
    let response = request_voice(&app, VOICE_PHONE).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.error(), "destination_not_allowed");
    assert_eq!(
        app.request(VOICE_PHONE).await.status,
        200,
        "SMS to the US still goes"
    );
    let premium = request_voice(&app, "+449098790000").await;
    assert_eq!(premium.status, 403);
    assert_eq!(premium.error(), "destination_not_allowed");
    assert!(app.plivo_requests("Call").await.is_empty());
}

#[tokio::test]
async fn the_cooldown_and_quota_hold_across_channels() {
    let app = voice_app(&[]).await;
    assert_eq!(app.request(VOICE_PHONE).await.status, 200);
    let by_voice = request_voice(&app, VOICE_PHONE).await;
    assert_eq!(by_voice.status, 429, "one cooldown for both channels");
    assert!(app.plivo_requests("Call").await.is_empty());
}

#[tokio::test]
async fn a_test_number_by_voice_places_no_call_and_keeps_its_fixed_code() {
    let app = voice_app(&[("TEST_PHONE_NUMBERS", "+15005550006:424242")]).await;
    let response = request_voice(&app, "+15005550006").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["channel"], "voice");
    assert!(app.plivo_requests("Call").await.is_empty());
    assert_eq!(app.verify("+15005550006", "424242").await.status, 200);
}

#[tokio::test]
async fn an_idempotent_voice_request_places_one_call() {
    let app = voice_app(&[]).await;
    let body = json!({"phoneNumber": VOICE_PHONE, "channel": "voice"}).to_string();
    for _ in 0..3 {
        let response = app
            .request_event("request-otp-http-api.json", |e| {
                e["body"] = json!(body);
                e["headers"]["idempotency-key"] = json!("voice-key-1");
            })
            .await;
        assert_eq!(response.status, 200);
    }
    assert_eq!(app.plivo_requests("Call").await.len(), 1);
}

#[tokio::test]
async fn the_code_for_a_call_is_stored_sealed_never_in_clear() {
    let app = voice_app(&[]).await;
    request_voice(&app, VOICE_PHONE).await;
    let code = spoken_code(
        &app.answer_call(&last_answer_url(&app).await, VOICE_PHONE)
            .await
            .body,
        6,
    )
    .unwrap();
    let dump = app.redis_dump(VOICE_PHONE).await.join("\n");
    assert!(dump.contains("sealed"), "{dump}");
    assert!(!dump.contains(&code), "{dump}");
    let calls = app.plivo_requests("Call").await;
    assert!(!calls[0].to_string().contains(&code));
    assert!(!calls[0].to_string().contains(&VOICE_PHONE[2..]) || calls[0]["to"] == VOICE_PHONE);
}

#[tokio::test]
async fn a_call_plivo_refuses_gets_502_voice_call_failed_and_leaves_no_code() {
    let app = TestApp::spawn().await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(
            wiremock::ResponseTemplate::new(400).set_body_json(json!({"error": "invalid to"})),
        )
        .mount(&app.plivo)
        .await;
    let response = request_voice(&app, VOICE_PHONE).await;
    assert_eq!(response.status, 502);
    assert_eq!(response.error(), "voice_call_failed");
    assert!(
        app.redis_dump(VOICE_PHONE)
            .await
            .iter()
            .all(|k| !k.contains(":code "))
    );
}

#[tokio::test]
async fn unknown_routes_and_other_methods_are_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .callback(
            "https://abc123.execute-api.us-east-1.amazonaws.com/api/otp/other",
            "",
            json!({}),
        )
        .await;
    assert_eq!(response.status, 404);
}
