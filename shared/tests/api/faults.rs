//! Faults with real processes: a Redis server of the test's own that is
//! stopped, restarted and frozen, and a Plivo that fails in each way it
//! can. After each fault: no valid code left behind for a failed send, no
//! counter spent by the failure, and the next normal flow works.

use std::time::Duration;

use serde_json::json;
use wiremock::ResponseTemplate;

use crate::{redis_server::*, support::*};

fn unavailable() -> serde_json::Value {
    json!({"error": "service_unavailable", "message": "The service is temporarily unavailable. Try again in a few seconds."})
}

/// Calls `request` until Redis answers again (bounded: 50 tries, ~5 s).
async fn request_until_redis_answers(app: &TestApp) -> TestResponse {
    for _ in 0..50 {
        let response = app.request(PHONE).await;
        if response.status != 503 {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service never recovered");
}

async fn a_normal_flow_works(app: &TestApp) {
    let response = request_until_redis_answers(app).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn redis_down_at_cold_start_gives_503_then_recovers_without_a_restart() {
    let mut redis = RedisServer::reserve();
    let app = app_on(&redis).await;

    let down = app.request(PHONE).await;
    assert_eq!((down.status, &down.body), (503, &unavailable()));
    assert_eq!(down.retry_after(), 5);
    assert_eq!(app.verify(PHONE, "123456").await.status, 503);
    assert_eq!(app.sms_count().await, 0);

    redis.start().await;
    a_normal_flow_works(&app).await;
}

#[tokio::test]
async fn redis_dying_mid_flight_gives_503_then_recovers_when_it_is_back() {
    let mut redis = RedisServer::reserve();
    redis.start().await;
    let app = app_on(&redis).await;
    assert_eq!(app.request(PHONE).await.status, 200);
    let code = app.last_code(PHONE).await;

    redis.stop();
    let verify = app.verify(PHONE, &code).await;
    let request = app.request(PHONE).await;

    assert_eq!((verify.status, &verify.body), (503, &unavailable()));
    assert_eq!((request.status, &request.body), (503, &unavailable()));
    assert_eq!(app.sms_count().await, 1, "no SMS without a stored code");
    // Without persistence the restarted server is empty: a fresh flow must work.
    redis.start().await;
    a_normal_flow_works(&app).await;
}

#[tokio::test]
async fn a_frozen_redis_gives_503_in_time_and_leaves_nothing_behind() {
    let mut redis = RedisServer::reserve();
    redis.start().await;
    let app = app_on(&redis).await;
    assert_eq!(app.request(PHONE).await.status, 200);
    let code = app.last_code(PHONE).await;
    let store = &app.services.store;
    let key = otp::domain::CodeKey::derive(SIGNING_KEY.as_bytes());
    let phone = otp::domain::PhoneNumber::parse(PHONE).unwrap();
    let other = otp::domain::PhoneNumber::parse(OTHER).unwrap();
    let length = otp::domain::CodeLength::default();
    let guess = otp::domain::OtpCode::parse(&wrong(&code), length).unwrap();
    let fresh = otp::domain::OtpCode::generate(length);

    redis.signal("-STOP");
    let request = app.request(OTHER).await;
    let verify = app.verify(PHONE, &wrong(&code)).await;
    // The decision scripts themselves, past the per-IP check that would
    // otherwise time out first: they queue on the frozen socket.
    let send = store
        .begin_send(
            &tag(OTHER),
            &otp::domain::SendId::generate(),
            &key.digest(&other, &fresh),
            None,
            None,
            send_limits(),
        )
        .await;
    let guessed = store
        .check_guess(
            &tag(PHONE),
            &[key.digest(&phone, &guess)],
            guess_limits(),
            false,
        )
        .await;
    // Keep it frozen past the scripts' not-after before letting it go.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    redis.signal("-CONT");

    assert_eq!((request.status, &request.body), (503, &unavailable()));
    assert_eq!((verify.status, &verify.body), (503, &unavailable()));
    assert!(send.is_err(), "{send:?}");
    assert!(guessed.is_err(), "{guessed:?}");
    assert_eq!(app.sms_count().await, 1);
    // The scripts ran once Redis woke, too late: nothing stored, no
    // cooldown spent, no failure counted, the pending code intact.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.pttl(OTHER, "code").await, -2);
    assert_eq!(app.pttl(OTHER, "sends").await, -2);
    assert_eq!(app.pttl(PHONE, "fails").await, -2);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

const OTHER: &str = "+447400123456";

pub fn send_limits() -> otp::store::SendLimits {
    otp::store::SendLimits {
        code_ttl: Duration::from_secs(300),
        cooldown: Duration::from_secs(30),
        max_sends: 5,
        window: Duration::from_secs(3_600),
        max_failures_per_day: 20,
    }
}

pub fn guess_limits() -> otp::store::GuessLimits {
    otp::store::GuessLimits {
        max_attempts: 5,
        lockout: Duration::from_secs(900),
        failure_window: Duration::from_secs(3_600),
        max_failures_per_day: 20,
        used_ttl: Duration::from_secs(60),
        captcha_after: None,
    }
}

#[tokio::test]
async fn plivo_500_then_202_sends_one_sms_and_succeeds() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_answers_once(&app.plivo, ResponseTemplate::new(500)).await;
    plivo_answers(&app.plivo, plivo_accepted()).await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 200);
    assert_eq!(
        app.sms_count().await,
        2,
        "one failed attempt, one accepted SMS"
    );
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn plivo_429_throughout_gives_502_and_no_spent_limits() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_answers(&app.plivo, ResponseTemplate::new(429)).await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 502);
    assert_eq!(response.error(), "sms_delivery_failed");
    assert_eq!(app.pttl(PHONE, "code").await, -2);
    assert_eq!(
        app.pttl(PHONE, "sends").await,
        -2,
        "a 429 is a refusal: nothing was sent"
    );
    app.plivo.reset().await;
    plivo_answers(&app.plivo, plivo_accepted()).await;
    a_normal_flow_works(&app).await;
}

#[tokio::test]
async fn plivo_timing_out_gives_502_and_leaves_no_valid_code() {
    let app = TestApp::builder()
        .without_plivo_mock()
        .env("PLIVO_TIMEOUT_MS", "200")
        .env("PLIVO_MAX_ATTEMPTS", "2")
        .env("OTP_RESEND_COOLDOWN_SECONDS", "1")
        .spawn()
        .await;
    plivo_answers(
        &app.plivo,
        plivo_accepted().set_delay(Duration::from_secs(3)),
    )
    .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 502);
    assert_eq!(app.sms_count().await, 2);
    let code = app.last_code(PHONE).await;
    assert_eq!(app.pttl(PHONE, "code").await, -2);
    assert_eq!(app.verify(PHONE, &code).await.error(), "invalid_code");
    app.plivo.reset().await;
    plivo_answers(&app.plivo, plivo_accepted()).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    a_normal_flow_works(&app).await;
}

/// Runs one of the service's decision scripts directly, keyed for `PHONE`,
/// with `not_after` (epoch ms) as its last argument.
async fn run_script(
    app: &TestApp,
    script: &str,
    keys: &[&str],
    args: &[&str],
    not_after: u128,
) -> (String, i64) {
    let prelude = include_str!("../../src/store/prelude.lua");
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(format!("{prelude}{script}")).arg(keys.len());
    for key in keys {
        cmd.arg(app.key(PHONE, key));
    }
    cmd.arg(args).arg(not_after.to_string());
    app.redis.query(&cmd).await
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// As a command that reached Redis after its caller gave up would run.
async fn run_late(app: &TestApp, script: &str, keys: &[&str], args: &[&str]) -> (String, i64) {
    run_script(app, script, keys, args, epoch_ms() - 1_000).await
}

/// As a client resending a call whose connection dropped would run it.
async fn run_twice(
    app: &TestApp,
    script: &str,
    keys: &[&str],
    args: &[&str],
) -> [(String, i64); 2] {
    let deadline = epoch_ms() + 10_000;
    [
        run_script(app, script, keys, args, deadline).await,
        run_script(app, script, keys, args, deadline).await,
    ]
}

#[tokio::test]
async fn a_resend_that_arrives_late_still_gets_its_first_answer() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    let phone = otp::domain::PhoneNumber::parse(PHONE).unwrap();
    let code = otp::domain::OtpCode::parse(&code, otp::domain::CodeLength::default()).unwrap();
    let digest = otp::domain::CodeKey::derive(SIGNING_KEY.as_bytes()).digest(&phone, &code);
    let verify = include_str!("../../src/store/verify.lua");
    let request = include_str!("../../src/store/request.lua");
    let verify_keys = [
        "code", "fails", "lock", "last", "used", "daily", "locks", "approved",
    ];
    let verify_args = [
        digest.as_str(),
        "5",
        "900000",
        "3600000",
        "late-1",
        "20",
        "60000",
        "-1",
        "0",
    ];
    let send_keys = ["code", "lock", "sends", "fails", "daily", "line"];
    let send_args = [
        "d",
        "late-send",
        "300000",
        "0",
        "5",
        "3600000",
        "",
        "",
        "20",
        "",
        "0",
    ];

    let first = run_script(
        &app,
        verify,
        &verify_keys,
        &verify_args,
        epoch_ms() + 10_000,
    )
    .await;
    let late = run_late(&app, verify, &verify_keys, &verify_args).await;
    let sent = run_script(&app, request, &send_keys, &send_args, epoch_ms() + 10_000).await;
    let late_send = run_late(&app, request, &send_keys, &send_args).await;

    assert_eq!(first, ("approved".to_owned(), 0));
    assert_eq!(late, first, "not 'expired': the first answer");
    assert_eq!(sent, ("stored".to_owned(), 0));
    assert_eq!(late_send, sent);
}

#[tokio::test]
async fn a_resent_verification_gets_its_first_answer() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    let phone = otp::domain::PhoneNumber::parse(PHONE).unwrap();
    let code = otp::domain::OtpCode::parse(&code, otp::domain::CodeLength::default()).unwrap();
    let digest = otp::domain::CodeKey::derive(SIGNING_KEY.as_bytes()).digest(&phone, &code);
    let verify = include_str!("../../src/store/verify.lua");

    let answers = run_twice(
        &app,
        verify,
        &[
            "code", "fails", "lock", "last", "used", "daily", "locks", "approved",
        ],
        &[
            digest.as_str(),
            "5",
            "900000",
            "3600000",
            "guess-1",
            "20",
            "60000",
            "-1",
            "0",
        ],
    )
    .await;

    let approved = ("approved".to_owned(), 0);
    assert_eq!(
        answers,
        [approved.clone(), approved],
        "a right code is not then counted as wrong"
    );
    assert_eq!(app.pttl(PHONE, "fails").await, -2);
}

#[tokio::test]
async fn a_resent_send_is_recorded_once() {
    let app = TestApp::spawn().await;
    let request = include_str!("../../src/store/request.lua");

    let answers = run_twice(
        &app,
        request,
        &["code", "lock", "sends", "fails", "daily", "line"],
        &[
            "digest", "send-1", "300000", "30000", "5", "3600000", "", "", "20", "", "0",
        ],
    )
    .await;

    let stored = ("stored".to_owned(), 0);
    assert_eq!(
        answers,
        [stored.clone(), stored],
        "not refused by its own cooldown"
    );
    let sends: i64 = app
        .redis
        .query(redis::cmd("ZCARD").arg(app.key(PHONE, "sends")))
        .await;
    assert_eq!(sends, 1);
}

#[tokio::test]
async fn decision_scripts_that_reach_redis_too_late_change_nothing() {
    let app = TestApp::spawn().await;
    let request = include_str!("../../src/store/request.lua");
    let verify = include_str!("../../src/store/verify.lua");

    let sent = run_late(
        &app,
        request,
        &["code", "lock", "sends", "fails", "daily", "line"],
        &[
            "digest", "id", "300000", "30000", "5", "3600000", "", "", "20", "", "0",
        ],
    )
    .await;
    let guessed = run_late(
        &app,
        verify,
        &[
            "code", "fails", "lock", "last", "used", "daily", "locks", "approved",
        ],
        &[
            "digest", "1", "900000", "3600000", "guess-1", "20", "60000", "-1", "0",
        ],
    )
    .await;

    assert_eq!(sent, ("expired".to_owned(), 0));
    assert_eq!(guessed, ("expired".to_owned(), 0));
    assert!(
        app.redis_dump(PHONE).await.is_empty(),
        "nothing was written"
    );
}
