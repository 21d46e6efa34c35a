//! The rules hold when many Lambda instances race on one phone: every
//! decision is one atomic script in Redis.

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::support::*;

async fn statuses<F, Fut>(n: usize, app: &Arc<TestApp>, call: F) -> Vec<(u16, String)>
where
    F: Fn(Arc<TestApp>) -> Fut,
    Fut: Future<Output = TestResponse> + Send + 'static,
{
    let mut set = JoinSet::new();
    for _ in 0..n {
        set.spawn(call(Arc::clone(app)));
    }
    let mut out = Vec::new();
    while let Some(response) = set.join_next().await {
        let response = response.unwrap();
        out.push((response.status, response.error().to_owned()));
    }
    out
}

fn count(results: &[(u16, String)], status: u16) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_guesses_are_all_counted() {
    let app = Arc::new(
        TestApp::builder()
            .env("OTP_MAX_ATTEMPTS", "50")
            .env("OTP_MAX_FAILURES_PER_DAY", "100")
            .spawn()
            .await,
    );
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    let guess = wrong(&code);

    let results = statuses(50, &app, |app| {
        let guess = guess.clone();
        async move { app.verify(PHONE, &guess).await }
    })
    .await;

    // Lost updates would leave the count short of 50 and the phone unlocked.
    assert_eq!(count(&results, 400), 49, "{results:?}");
    assert_eq!(count(&results, 429), 1, "{results:?}");
    assert_eq!(app.verify(PHONE, &code).await.error(), "too_many_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_correct_submissions_give_exactly_one_success() {
    let app = Arc::new(
        TestApp::builder()
            .env("OTP_MAX_ATTEMPTS", "100")
            .spawn()
            .await,
    );
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    let results = statuses(20, &app, |app| {
        let code = code.clone();
        async move { app.verify(PHONE, &code).await }
    })
    .await;

    assert_eq!(count(&results, 200), 1, "{results:?}");
    assert_eq!(count(&results, 400), 19, "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_submissions_of_a_right_code_give_one_token_and_lock_nobody() {
    let app = Arc::new(TestApp::spawn().await);
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    let results = statuses(30, &app, |app| {
        let code = code.clone();
        async move { app.verify(PHONE, &code).await }
    })
    .await;

    assert_eq!(count(&results, 200), 1, "{results:?}");
    let used = results
        .iter()
        .filter(|(s, e)| *s == 400 && e == "code_already_used")
        .count();
    assert_eq!(used, 29, "{results:?}");
    assert_eq!(app.pttl(PHONE, "fails").await, -2, "nothing was counted");
    assert_eq!(app.pttl(PHONE, "lock").await, -2, "nobody was locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_send_more_sms_than_the_quota() {
    let app = Arc::new(
        TestApp::builder()
            .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
            .env("OTP_MAX_SENDS_PER_HOUR", "5")
            .spawn()
            .await,
    );

    let results = statuses(20, &app, |app| async move { app.request(PHONE).await }).await;

    assert_eq!(count(&results, 200), 5, "{results:?}");
    assert_eq!(count(&results, 429), 15, "{results:?}");
    assert_eq!(app.sms_count().await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_within_the_cooldown_send_one_sms() {
    let app = Arc::new(TestApp::spawn().await);

    let results = statuses(10, &app, |app| async move { app.request(PHONE).await }).await;

    assert_eq!(count(&results, 200), 1, "{results:?}");
    assert_eq!(app.sms_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_idempotency_key_send_one_sms() {
    let app = Arc::new(
        TestApp::builder()
            .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
            .spawn()
            .await,
    );

    let results = statuses(10, &app, |app| async move {
        app.request_with_key(PHONE, "same-key").await
    })
    .await;

    assert_eq!(
        count(&results, 200),
        10,
        "every caller gets the first answer: {results:?}"
    );
    assert_eq!(app.sms_count().await, 1);
}
