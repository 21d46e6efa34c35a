//! verify-otp: the rules of checking a code and the token it earns.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use otp::token::Claims;
use serde_json::json;

use crate::support::*;

fn invalid_code() -> serde_json::Value {
    json!({"error": "invalid_code", "message": "Invalid or expired OTP."})
}

#[tokio::test]
async fn verify_approves_the_right_code_with_a_token_a_jwt_library_accepts() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    let response = app.verify(PHONE, &code).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.body["status"], "approved");
    assert_eq!(response.body["message"], "OTP verified successfully.");
    assert_eq!(response.body["expiresInSeconds"], 600);
    let token = response.body["verificationToken"].as_str().unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["otp-service"]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(SIGNING_KEY.as_bytes()),
        &validation,
    )
    .expect("the token verifies with the signing key")
    .claims;
    assert_eq!(claims.sub, PHONE);
    assert_eq!(claims.phone_number, PHONE);
    assert!(claims.phone_number_verified);
    assert_eq!(claims.exp - claims.iat, 600);
    assert_eq!(claims.jti.len(), 36);
}

#[tokio::test]
async fn verify_tokens_follow_token_ttl_and_issuer_settings() {
    let app = TestApp::builder()
        .env("TOKEN_TTL_SECONDS", "120")
        .env("TOKEN_ISSUER", "acme-auth")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    let response = app.verify(PHONE, &code).await;

    assert_eq!(response.body["expiresInSeconds"], 120);
    let token = response.body["verificationToken"].as_str().unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["acme-auth"]);
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(SIGNING_KEY.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims.exp - claims.iat, 120);
}

#[tokio::test]
async fn verify_accepts_a_correct_code_only_once_and_says_so_when_it_comes_again() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);

    let replay = app.verify(PHONE, &code).await;

    assert_eq!(replay.status, 400);
    assert_eq!(replay.error(), "code_already_used");
    assert!(replay.body.get("verificationToken").is_none());
}

#[tokio::test]
async fn resubmitting_a_correct_code_never_counts_as_a_failure_or_locks_the_user() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);

    for _ in 0..10 {
        assert_eq!(app.verify(PHONE, &code).await.error(), "code_already_used");
    }

    assert_eq!(app.pttl(PHONE, "lock").await, -2);
    app.request(PHONE).await;
    let fresh = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &fresh).await.status, 200);
}

#[tokio::test]
async fn verify_answers_wrong_expired_and_never_requested_codes_identically() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    let wrong_code = app.verify(PHONE, &wrong(&code)).await;
    app.expire_code(PHONE).await;
    let expired = app.verify(PHONE, &code).await;
    let never_requested = app.verify("+447400123456", "123456").await;

    for response in [&wrong_code, &expired, &never_requested] {
        assert_eq!(response.status, 400);
        assert_eq!(response.body, invalid_code());
        assert!(response.headers.get("retry-after").is_none());
    }
}

#[tokio::test]
async fn verify_rejects_a_code_after_five_wrong_guesses() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    for _ in 0..4 {
        assert_eq!(app.verify(PHONE, &wrong(&code)).await.body, invalid_code());
    }

    let fifth = app.verify(PHONE, &wrong(&code)).await;
    let right_after = app.verify(PHONE, &code).await;

    assert_eq!(fifth.status, 429);
    assert_eq!(fifth.error(), "too_many_attempts");
    assert!(
        (899..=900).contains(&fifth.retry_after()),
        "{}",
        fifth.retry_after()
    );
    assert_eq!(right_after.status, 429);
    assert_eq!(right_after.error(), "too_many_attempts");
    assert_eq!(
        app.pttl(PHONE, "code").await,
        -2,
        "the pending code is deleted"
    );
}

#[tokio::test]
async fn verify_attempt_limit_follows_otp_max_attempts() {
    let app = TestApp::builder()
        .env("OTP_MAX_ATTEMPTS", "2")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 400);
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 429);
}

#[tokio::test]
async fn a_new_code_gets_its_own_attempts_but_the_day_caps_every_guess() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .env("OTP_MAX_FAILURES_PER_DAY", "7")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    for _ in 0..4 {
        assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 400);
    }
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 400);
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 400);

    let seventh = app.verify(PHONE, &wrong(&code)).await;

    assert_eq!(seventh.error(), "too_many_attempts");
    assert_eq!(app.verify(PHONE, &code).await.error(), "too_many_attempts");
    let no_more_codes = app.request(PHONE).await;
    assert_eq!(
        no_more_codes.status, 429,
        "a code it could not use would only cost an SMS"
    );
    assert_eq!(no_more_codes.error(), "too_many_requests");
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn each_lock_within_a_day_lasts_twice_as_long_as_the_last() {
    let app = TestApp::builder()
        .env("OTP_MAX_ATTEMPTS", "1")
        .env("OTP_LOCKOUT_SECONDS", "120")
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    let mut locks = Vec::new();
    for _ in 0..4 {
        app.request(PHONE).await;
        let code = app.last_code(PHONE).await;
        let locked = app.verify(PHONE, &wrong(&code)).await;
        assert_eq!(locked.error(), "too_many_attempts");
        locks.push(locked.retry_after());
    }
    assert_eq!(locks, [120, 240, 480, 960]);
    let pttl = app.pttl(PHONE, "lock").await;
    assert!((959_000..=960_000).contains(&pttl), "{pttl}");
}

#[tokio::test]
async fn a_lock_ends_the_code_and_a_new_code_after_the_cooldown_lets_the_owner_back_in() {
    let app = TestApp::builder()
        .env("OTP_MAX_ATTEMPTS", "1")
        .env("OTP_LOCKOUT_SECONDS", "900")
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 429);
    assert_eq!(
        app.verify(PHONE, &code).await.error(),
        "too_many_attempts",
        "the lock ended the code and blocks verification"
    );

    assert_eq!(app.request(PHONE).await.status, 200);
    let fresh = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &fresh).await.status, 200);
    assert_eq!(
        app.sms_count().await,
        2,
        "the new send counts toward the quota"
    );
}

#[tokio::test]
async fn a_successful_verification_clears_earlier_wrong_guesses() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    for _ in 0..4 {
        app.verify(PHONE, &wrong(&code)).await;
    }
    assert_eq!(app.verify(PHONE, &code).await.status, 200);

    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 400);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn guesses_at_a_number_with_no_live_code_neither_count_nor_lock() {
    let app = TestApp::spawn().await;
    // The attack as it was found: five guesses at someone else's number.
    for _ in 0..25 {
        assert_eq!(app.verify(PHONE, "000000").await.body, invalid_code());
    }

    assert_eq!(app.pttl(PHONE, "lock").await, -2);
    assert_eq!(app.pttl(PHONE, "fails").await, -2);
    assert_eq!(
        app.request(PHONE).await.status,
        200,
        "the owner is not locked out"
    );
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn guesses_after_a_code_expired_neither_count_nor_lock() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    app.expire_code(PHONE).await;

    for _ in 0..10 {
        assert_eq!(app.verify(PHONE, &wrong(&code)).await.body, invalid_code());
    }

    assert_eq!(app.pttl(PHONE, "lock").await, -2);
}

#[tokio::test]
async fn wrong_guesses_are_remembered_for_an_hour_after_the_latest() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;

    app.verify(PHONE, "123456").await;

    let ttl = app.pttl(PHONE, "fails").await;
    assert!((3_599_000..=3_600_000).contains(&ttl), "{ttl}");
}
