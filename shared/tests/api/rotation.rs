//! Keys that rotate and a secret that stays current: old tokens and codes
//! in flight still verify after a rotation on an instance warm before it,
//! the timed refresh never holds up an answer, a failed refresh keeps the
//! last good secret, and the JWK Set is served with no secret read.

use std::time::Duration;

use wiremock::{Mock, MockServer, matchers::header};

use crate::{backend::*, support::*};

const PHONE_B: &str = "+14155552672";
const PHONE_C: &str = "+14155552673";

#[tokio::test]
async fn after_a_rotation_old_tokens_and_codes_in_flight_verify_on_an_instance_warm_before_it() {
    let (old_pem, new_pem) = (p256_pem(), p256_pem());
    let (old_code_key, new_code_key) = ("c".repeat(40), "d".repeat(40));
    let app = app_with(
        &[("old", &old_pem)],
        &[&old_code_key],
        &[("SECRET_REFRESH_SECONDS", "1")],
    )
    .await;
    let old_token = app.token_for(PHONE).await;
    assert_eq!(kid_of(&old_token), "old");
    // A code asked for before the rotation, to be verified after it.
    assert_eq!(app.request(PHONE_B).await.status, 200);
    let pending_code = app.last_code(PHONE_B).await;
    let refreshed = |app: &TestApp, kids: &[&str]| app.kids() == kids;

    // 1. Add the new token key (published, not signing); a new code key first.
    let added = secret_json_with_keys(
        &[("old", &old_pem), ("new", &new_pem)],
        &[&new_code_key, &old_code_key],
    );
    put_secret(&app.secret_id, &added).await;
    wait_until("the new key published", Duration::from_secs(10), || {
        refreshed(&app, &["old", "new"])
    })
    .await;
    // 2. Make it first: it signs from now on.
    let swapped = secret_json_with_keys(
        &[("new", &new_pem), ("old", &old_pem)],
        &[&new_code_key, &old_code_key],
    );
    put_secret(&app.secret_id, &swapped).await;
    wait_until("the new key first", Duration::from_secs(10), || {
        refreshed(&app, &["new", "old"])
    })
    .await;

    let response = app.verify(PHONE_B, &pending_code).await;
    assert_eq!(response.status, 200, "a code from before the rotation");
    let new_token = response.body["verificationToken"].as_str().unwrap();
    assert_eq!(kid_of(new_token), "new");
    let jwks = app.jwks();
    assert_eq!(backend_verifies(&old_token, &jwks).unwrap().sub, PHONE);
    assert_eq!(backend_verifies(new_token, &jwks).unwrap().sub, PHONE_B);
    let fresh = app.token_for(PHONE_C).await;
    assert_eq!(kid_of(&fresh), "new");

    // 3. One token lifetime later, remove the old key: only then do the old
    // tokens stop verifying.
    let removed = secret_json_with_keys(&[("new", &new_pem)], &[&new_code_key]);
    put_secret(&app.secret_id, &removed).await;
    wait_until("the old key removed", Duration::from_secs(10), || {
        refreshed(&app, &["new"])
    })
    .await;
    let jwks = app.jwks();
    assert!(backend_verifies(&old_token, &jwks).is_err());
    assert!(backend_verifies(&fresh, &jwks).is_ok());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_secret_and_a_later_one_picks_up_the_fix() {
    let (pem, next_pem) = (p256_pem(), p256_pem());
    let app = app_with(&[("k1", &pem)], &[], &[("SECRET_REFRESH_SECONDS", "1")]).await;
    put_secret(&app.secret_id, r#"{"plivo_auth_id": "MA1"}"#).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        app.kids(),
        ["k1"],
        "this call starts the refresh that fails"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(app.kids(), ["k1"]);
    let token = app.token_for(PHONE).await;
    assert!(backend_verifies(&token, &app.jwks()).is_ok());

    put_secret(
        &app.secret_id,
        &secret_json_with_keys(&[("k2", &next_pem)], &[]),
    )
    .await;
    wait_until("the fixed secret", Duration::from_secs(10), || {
        app.kids() == ["k2"]
    })
    .await;
}

#[tokio::test]
async fn a_due_refresh_runs_beside_the_answer_and_never_delays_it() {
    let secrets_manager = MockServer::start().await;
    let target = || header("x-amz-target", "secretsmanager.GetSecretValue");
    Mock::given(target())
        .respond_with(get_secret_value(&secret_json_with_keys(
            &[("k1", &p256_pem())],
            &[],
        )))
        .up_to_n_times(1)
        .mount(&secrets_manager)
        .await;
    // Every later read takes two seconds to answer.
    Mock::given(target())
        .respond_with(
            get_secret_value(&secret_json_with_keys(&[("k2", &p256_pem())], &[]))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&secrets_manager)
        .await;
    let app = TestApp::builder()
        .env("OTP_SECRET_ID", "otp")
        .env("SECRET_REFRESH_SECONDS", "1")
        .secrets_manager_at(&secrets_manager.uri())
        .spawn()
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let started = tokio::time::Instant::now();
    assert_eq!(app.kids(), ["k1"], "answered with the secret at hand");
    let token = app.token_for(PHONE).await;
    let took = started.elapsed();

    assert!(took < Duration::from_secs(1), "the answers took {took:?}");
    assert_eq!(kid_of(&token), "k1");
    wait_until("the slow refresh lands", Duration::from_secs(5), || {
        app.kids() == ["k2"]
    })
    .await;
}

#[tokio::test]
async fn the_jwks_route_answers_from_memory_with_no_secrets_manager_call() {
    let secrets_manager = MockServer::start().await;
    Mock::given(header("x-amz-target", "secretsmanager.GetSecretValue"))
        .respond_with(get_secret_value(&secret_json_with_keys(
            &[("k1", &p256_pem())],
            &[],
        )))
        .mount(&secrets_manager)
        .await;
    let app = TestApp::builder()
        .env("OTP_SECRET_ID", "otp")
        .secrets_manager_at(&secrets_manager.uri())
        .spawn()
        .await;
    let reads = || async { secrets_manager.received_requests().await.unwrap().len() };
    assert_eq!(reads().await, 1, "the cold start");

    for _ in 0..50 {
        assert_eq!(app.kids(), ["k1"]);
    }
    let token = app.token_for(PHONE).await;

    assert_eq!(reads().await, 1, "no read per request");
    drop(secrets_manager);
    let jwks = app.jwks();
    assert!(
        backend_verifies(&token, &jwks).is_ok(),
        "served with Secrets Manager gone"
    );
}

#[tokio::test]
async fn a_refresh_still_running_when_the_answer_is_posted_is_settled_before_the_next_event() {
    let secrets_manager = MockServer::start().await;
    let target = || header("x-amz-target", "secretsmanager.GetSecretValue");
    Mock::given(target())
        .respond_with(get_secret_value(&secret_json_with_keys(
            &[("k1", &p256_pem())],
            &[],
        )))
        .up_to_n_times(1)
        .mount(&secrets_manager)
        .await;
    Mock::given(target())
        .respond_with(
            get_secret_value(&secret_json_with_keys(&[("k2", &p256_pem())], &[]))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&secrets_manager)
        .await;
    let app = TestApp::builder()
        .env("OTP_SECRET_ID", "otp")
        .env("SECRET_REFRESH_SECONDS", "1")
        .secrets_manager_at(&secrets_manager.uri())
        .spawn()
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.kids(), ["k1"], "this answer starts the refresh");

    // What the runtime does once the response is posted: a short wait
    // gives up and leaves the refresh running...
    let started = tokio::time::Instant::now();
    app.services
        .secrets
        .settle(Duration::from_millis(100))
        .await;
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(app.kids(), ["k1"]);
    // ...and a long enough one sees it through, before the next event.
    app.services.secrets.settle(Duration::from_secs(5)).await;

    assert_eq!(app.kids(), ["k2"]);
    let started = tokio::time::Instant::now();
    app.services.secrets.settle(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "nothing left to wait for"
    );
}
