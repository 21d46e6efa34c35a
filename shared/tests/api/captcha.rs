//! CAPTCHA step-up against a local siteverify that checks the exact form:
//! on verify after `CAPTCHA_AFTER_FAILED_ATTEMPTS` wrong guesses, on
//! request per `CAPTCHA_ON_REQUEST`. Asking costs no guess and no send;
//! a provider that cannot be asked fails closed.

use std::time::Duration;

use wiremock::{MockServer, ResponseTemplate};

use crate::{fraud_mock::*, support::*};

async fn captcha_app(server: &MockServer, vars: &[(&str, &str)]) -> TestApp {
    let mut builder = with_captcha(TestApp::builder(), "turnstile", server).await;
    for (name, value) in vars {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

/// Two wrong guesses at the live code; returns the right one.
async fn two_wrong_guesses(app: &TestApp) -> String {
    assert_eq!(app.request(PHONE).await.status, 200);
    let code = app.last_code(PHONE).await;
    for _ in 0..2 {
        assert_eq!(
            app.verify(PHONE, &wrong(&code)).await.error(),
            "invalid_code"
        );
    }
    code
}

#[tokio::test]
async fn after_two_wrong_guesses_the_third_needs_a_captcha_and_passes_with_a_valid_token() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[]).await;
    let code = two_wrong_guesses(&app).await;
    assert_eq!(siteverify_calls(&provider).await, 0, "no CAPTCHA before");

    let without = app.verify(PHONE, &code).await;
    let with = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;

    assert_captcha(&without, "captcha_required", "turnstile");
    assert_eq!(with.status, 200, "{}", with.body);
    assert_eq!(with.body["status"], "approved");
    // One call, with exactly secret, response and remoteip (the mock's matcher).
    assert_eq!(siteverify_calls(&provider).await, 1);
}

#[tokio::test]
async fn a_rejected_token_gets_captcha_invalid_and_a_missing_one_captcha_required_costing_no_guess()
{
    let provider = captcha_provider().await;
    // The third wrong guess would lock: the refusals below must not count.
    let app = captcha_app(&provider, &[("OTP_MAX_ATTEMPTS", "3")]).await;
    let code = two_wrong_guesses(&app).await;

    for _ in 0..3 {
        assert_captcha(
            &app.verify_with_token(PHONE, &wrong(&code), BAD_TOKEN).await,
            "captcha_invalid",
            "turnstile",
        );
        assert_captcha(
            &app.verify(PHONE, &wrong(&code)).await,
            "captcha_required",
            "turnstile",
        );
    }

    assert_eq!(app.daily_failures(PHONE).await, 2, "no guess was counted");
    let right = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;
    assert_eq!(right.status, 200, "{}", right.body);
}

#[tokio::test]
async fn siteverify_down_answers_503_and_fails_closed_without_costing_a_guess() {
    let provider = MockServer::start().await;
    siteverify(GOOD_TOKEN)
        .respond_with(ResponseTemplate::new(500))
        .mount(&provider)
        .await;
    let app = captcha_app(&provider, &[]).await;
    let code = two_wrong_guesses(&app).await;

    let failing = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;
    provider.reset().await;
    siteverify(GOOD_TOKEN)
        .respond_with(verdict(true).set_delay(Duration::from_secs(3)))
        .mount(&provider)
        .await;
    let slow = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;
    drop(provider);
    let gone = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;

    for response in [&failing, &slow, &gone] {
        assert_eq!(response.status, 503, "{}", response.body);
        assert_eq!(response.error(), "service_unavailable");
        assert!(response.retry_after() >= 1);
    }
    assert_eq!(app.daily_failures(PHONE).await, 2, "no guess was counted");
}

#[tokio::test]
async fn a_captcha_timeout_is_bounded_by_captcha_timeout_ms() {
    let provider = MockServer::start().await;
    siteverify(GOOD_TOKEN)
        .respond_with(verdict(true).set_delay(Duration::from_secs(5)))
        .mount(&provider)
        .await;
    let app = captcha_app(&provider, &[("CAPTCHA_TIMEOUT_MS", "300")]).await;
    let code = two_wrong_guesses(&app).await;

    let started = std::time::Instant::now();
    let response = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;

    assert_eq!(response.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_new_code_does_not_lift_the_step_up_but_a_success_does() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await;
    two_wrong_guesses(&app).await;
    assert_eq!(app.request(PHONE).await.status, 200);
    let code = app.last_code(PHONE).await;

    let after_new_code = app.verify(PHONE, &code).await;
    let approved = app.verify_with_token(PHONE, &code, GOOD_TOKEN).await;
    assert_eq!(app.request(PHONE).await.status, 200);
    let next = app.last_code(PHONE).await;
    let after_success = app.verify(PHONE, &next).await;

    assert_captcha(&after_new_code, "captcha_required", "turnstile");
    assert_eq!(approved.status, 200);
    assert_eq!(after_success.status, 200, "{}", after_success.body);
}

#[tokio::test]
async fn captcha_after_failed_attempts_sets_the_threshold() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[("CAPTCHA_AFTER_FAILED_ATTEMPTS", "1")]).await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(
        app.verify(PHONE, &wrong(&code)).await.error(),
        "invalid_code"
    );

    assert_captcha(
        &app.verify(PHONE, &code).await,
        "captcha_required",
        "turnstile",
    );
}

#[tokio::test]
async fn with_captcha_on_request_always_a_send_needs_a_token_and_none_costs_a_send() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[("CAPTCHA_ON_REQUEST", "always")]).await;

    let without = app.request(PHONE).await;
    let rejected = app.request_with_token(PHONE, BAD_TOKEN).await;
    let sends_before: i64 = app
        .redis
        .query(redis::cmd("ZCARD").arg(app.key(PHONE, "sends")))
        .await;
    let with = app.request_with_token(PHONE, GOOD_TOKEN).await;

    assert_captcha(&without, "captcha_required", "turnstile");
    assert_captcha(&rejected, "captcha_invalid", "turnstile");
    assert_eq!(sends_before, 0, "no send was counted for the phone");
    assert_eq!(with.status, 200, "{}", with.body);
    assert_eq!(app.sms_count().await, 1);
}

#[tokio::test]
async fn elevated_requests_need_a_captcha_once_the_source_ip_used_half_its_budget() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[("IP_MAX_SENDS_PER_HOUR", "4")]).await;

    let first = app.request("+14155552601").await;
    let second = app.request("+14155552602").await;
    let third = app.request("+14155552603").await;
    let third_with_token = app.request_with_token("+14155552603", GOOD_TOKEN).await;

    assert_eq!((first.status, second.status), (200, 200));
    assert_captcha(&third, "captcha_required", "turnstile");
    assert_eq!(third_with_token.status, 200, "{}", third_with_token.body);
    assert_eq!(siteverify_calls(&provider).await, 1);
}

#[tokio::test]
async fn with_captcha_on_request_never_sends_need_no_token() {
    let provider = captcha_provider().await;
    let app = captcha_app(
        &provider,
        &[
            ("CAPTCHA_ON_REQUEST", "never"),
            ("IP_MAX_SENDS_PER_HOUR", "2"),
        ],
    )
    .await;

    assert_eq!(app.request("+14155552601").await.status, 200);
    assert_eq!(app.request("+14155552602").await.status, 200);
    assert_eq!(siteverify_calls(&provider).await, 0);
}

#[tokio::test]
async fn a_token_sent_when_none_is_needed_is_not_checked() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[]).await;

    let sent = app.request_with_token(PHONE, BAD_TOKEN).await;
    let code = app.last_code(PHONE).await;
    let verified = app.verify_with_token(PHONE, &code, BAD_TOKEN).await;

    assert_eq!((sent.status, verified.status), (200, 200));
    assert_eq!(siteverify_calls(&provider).await, 0);
}

#[tokio::test]
async fn a_recaptcha_v3_score_below_captcha_min_score_is_captcha_invalid() {
    let provider = MockServer::start().await;
    let scored = |score: f64| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": true, "score": score, "action": "otp",
            "challenge_ts": "2026-11-25T16:47:23Z", "hostname": "app.example.com"}))
    };
    siteverify("low-score-token")
        .respond_with(scored(0.3))
        .mount(&provider)
        .await;
    siteverify("high-score-token")
        .respond_with(scored(0.9))
        .mount(&provider)
        .await;
    let app = with_captcha(TestApp::builder(), "recaptcha", &provider)
        .await
        .env("CAPTCHA_ON_REQUEST", "always")
        .env("CAPTCHA_MIN_SCORE", "0.5")
        .spawn()
        .await;

    let low = app.request_with_token(PHONE, "low-score-token").await;
    let high = app.request_with_token(PHONE, "high-score-token").await;

    assert_captcha(&low, "captcha_invalid", "recaptcha");
    assert_eq!(high.status, 200, "{}", high.body);
}

#[tokio::test]
async fn a_captcha_refusal_is_not_replayed_to_an_idempotent_retry_with_a_token() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[("CAPTCHA_ON_REQUEST", "always")]).await;

    let first = app.request_with_key(PHONE, "retry-after-captcha").await;
    let retry = app
        .request_event("request-otp-http-api.json", |e| {
            e["body"] = serde_json::json!(
                serde_json::json!({"phoneNumber": PHONE, "captchaToken": GOOD_TOKEN}).to_string()
            );
            e["headers"]["idempotency-key"] = serde_json::json!("retry-after-captcha");
        })
        .await;

    assert_captcha(&first, "captcha_required", "turnstile");
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert!(retry.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_captcha_token_that_is_not_a_short_visible_string_is_invalid_request() {
    let provider = captcha_provider().await;
    let app = captcha_app(&provider, &[]).await;

    for token in [
        serde_json::json!(42),
        serde_json::json!(""),
        serde_json::json!("has space"),
        serde_json::json!("t".repeat(4097)),
    ] {
        let response = app
            .request_raw(
                &serde_json::json!({"phoneNumber": PHONE, "captchaToken": token}).to_string(),
            )
            .await;
        assert_eq!(response.status, 400, "{token}");
        assert_eq!(response.error(), "invalid_request");
    }
}

#[tokio::test]
async fn a_captcha_provider_without_captcha_secret_stops_the_cold_start() {
    let provider = captcha_provider().await;
    let secret = create_secret(&secret_json(AUTH_ID, AUTH_TOKEN)).await;
    let env = [
        ("OTP_SECRET_ID", secret.as_str()),
        ("PLIVO_SENDER", SENDER),
        ("REDIS_URL", &redis_url()),
        ("CAPTCHA_PROVIDER", "hcaptcha"),
        ("CAPTCHA_SITE_KEY", SITE_KEY),
        ("CAPTCHA_VERIFY_URL", &provider.uri()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = otp::config::Config::from_lookup(|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();

    let started =
        otp::services::Services::init(config, aws_config(), otp::services::Role::VerifyOtp).await;

    assert!(
        matches!(started, Err(otp::services::InitError::NoCaptchaSecret)),
        "{:?}",
        started.err().map(|e| e.to_string())
    );
}

#[tokio::test]
async fn the_sample_events_carrying_a_captcha_token_pass_the_step_up() {
    let provider = captcha_provider().await;
    let app = captcha_app(
        &provider,
        &[
            ("CAPTCHA_ON_REQUEST", "always"),
            ("CAPTCHA_AFTER_FAILED_ATTEMPTS", "0"),
            ("TEST_PHONE_NUMBERS", "+14155552671:123456"),
        ],
    )
    .await;

    let requested = app
        .call_event("request-otp-captcha-http-api.json", |_| {})
        .await;
    let verified = app
        .call_event("verify-otp-captcha-http-api.json", |_| {})
        .await;
    let without = app
        .call_event("verify-otp-http-api.json", |e| {
            e["body"] = serde_json::json!(
                serde_json::json!({"phoneNumber": PHONE, "otp": "654321"}).to_string()
            );
        })
        .await;

    assert_eq!(requested.status, 200, "{}", requested.body);
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_captcha(&without, "captcha_required", "turnstile");
    assert_eq!(siteverify_calls(&provider).await, 2);
}
