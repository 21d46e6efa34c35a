//! The SMS pumping breaker: per destination (country and the first six
//! national digits), sends that do not convert trip it; a tripped one is
//! blocked for `PUMPING_BLOCK_SECONDS` (or needs a CAPTCHA), and nothing
//! else is. Counts are exact under concurrency.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinSet;

use crate::{fraud_mock::*, support::*};

/// A number of the range `US:415555` (the NPA-NXX 415-555).
fn in_range(n: usize) -> String {
    format!("+1415555{:04}", 2600 + n)
}

#[tokio::test]
async fn after_twenty_unverified_sends_to_one_prefix_the_next_is_blocked_and_others_pass() {
    let app = TestApp::spawn().await;
    for n in 0..20 {
        let sent = app.request(&in_range(n)).await;
        assert_eq!(sent.status, 200, "send {n}: {}", sent.body);
    }

    let blocked = app.request(&in_range(20)).await;
    let same_country = app.request("+14155562671").await;
    let elsewhere = app.request("+447400123456").await;

    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert_eq!(blocked.error(), "destination_temporarily_blocked");
    assert!(
        (3_540..=3_600).contains(&blocked.retry_after()),
        "{}",
        blocked.retry_after()
    );
    assert_eq!(same_country.status, 200, "{}", same_country.body);
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    assert_eq!(app.sms_count().await, 22);
}

#[tokio::test]
async fn after_pumping_block_seconds_the_prefix_passes_again() {
    let app = TestApp::builder()
        .env("PUMPING_MIN_SENDS", "3")
        .env("PUMPING_BLOCK_SECONDS", "1")
        .spawn()
        .await;
    for n in 0..3 {
        assert_eq!(app.request(&in_range(n)).await.status, 200);
    }
    assert_eq!(
        app.request(&in_range(3)).await.error(),
        "destination_temporarily_blocked"
    );

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let after = app.request(&in_range(3)).await;

    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(
        app.breaker_counts("US:415555").await,
        (1, 0),
        "counts start again"
    );
}

#[tokio::test]
async fn with_a_captcha_provider_a_tripped_prefix_needs_a_captcha_instead() {
    let provider = captcha_provider().await;
    let app = with_captcha(TestApp::builder(), "turnstile", &provider)
        .await
        .env("PUMPING_MIN_SENDS", "3")
        .spawn()
        .await;
    for n in 0..3 {
        assert_eq!(app.request(&in_range(n)).await.status, 200);
    }

    let without = app.request(&in_range(3)).await;
    let with = app.request_with_token(&in_range(3), GOOD_TOKEN).await;
    let other_prefix = app.request("+14155562671").await;

    assert_captcha(&without, "captcha_required", "turnstile");
    assert_eq!(with.status, 200, "{}", with.body);
    assert_eq!(other_prefix.status, 200, "{}", other_prefix.body);
    // The refused send was taken back; the one with a CAPTCHA counts.
    assert_eq!(app.breaker_counts("US:415555").await, (1, 0));
}

#[tokio::test]
async fn verifications_keep_a_healthy_prefix_from_tripping() {
    let app = TestApp::builder()
        .env("PUMPING_MIN_SENDS", "10")
        .spawn()
        .await;

    // A quarter of the codes are entered: above the 20 % minimum.
    for n in 0..40 {
        let sent = app.request(&in_range(n)).await;
        assert_eq!(sent.status, 200, "send {n}: {}", sent.body);
        if n % 4 == 0 {
            let code = app.last_code(&in_range(n)).await;
            assert_eq!(app.verify(&in_range(n), &code).await.status, 200);
        }
    }

    assert_eq!(app.breaker_counts("US:415555").await, (40, 10));
}

#[tokio::test]
async fn only_right_codes_count_as_verifications() {
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    app.verify(PHONE, &wrong(&code)).await;
    let after_wrong = app.breaker_counts("US:415555").await;
    app.verify(PHONE, &code).await;
    app.verify(PHONE, &code).await; // code_already_used: no second count

    assert_eq!(after_wrong, (1, 0));
    assert_eq!(app.breaker_counts("US:415555").await, (1, 1));
}

#[tokio::test]
async fn under_the_lambda_runtime_a_verification_is_counted_once_the_response_is_out() {
    use otp::usecase::deferred;
    let app = TestApp::spawn().await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;

    // What the runtime does around each invocation (`http::runtime`).
    let (wrong_guess, nothing) = deferred::collect(app.verify(PHONE, &wrong(&code))).await;
    let (verified, jobs) = deferred::collect(app.verify(PHONE, &code)).await;
    let at_response = app.breaker_counts("US:415555").await;
    deferred::run(&app.services, jobs, Duration::from_secs(2)).await;

    assert_eq!(wrong_guess.status, 400, "{}", wrong_guess.body);
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(at_response, (1, 0));
    assert_eq!(app.breaker_counts("US:415555").await, (1, 1));
}

#[tokio::test]
async fn sends_refused_by_another_rule_do_not_count_toward_the_destination() {
    let app = TestApp::spawn().await;

    for _ in 0..5 {
        app.request(PHONE).await; // all but the first inside the cooldown
    }

    assert_eq!(app.sms_count().await, 1);
    assert_eq!(app.breaker_counts("US:415555").await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_sends_to_one_prefix_count_fifty() {
    let app = Arc::new(
        TestApp::builder()
            .env("PUMPING_MIN_SENDS", "50")
            .spawn()
            .await,
    );
    let mut set = JoinSet::new();
    for n in 0..50 {
        let app = Arc::clone(&app);
        set.spawn(async move { app.request(&in_range(n)).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.unwrap());
    }

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.breaker_counts("US:415555").await, (50, 0));
    // Exactly 50: the 51st finds the minimum reached and trips.
    assert_eq!(
        app.request(&in_range(50)).await.error(),
        "destination_temporarily_blocked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destination_trips_exactly_once_however_many_sends_race_for_it() {
    use otp::{
        domain::{Destination, PhoneNumber},
        store::{BreakerDecision, BreakerLimits},
    };
    let app = Arc::new(TestApp::spawn().await);
    let destination = Destination::of(&PhoneNumber::parse(PHONE).unwrap(), 6).unwrap();
    let limits = BreakerLimits {
        window: Duration::from_secs(3_600),
        min_sends: 10,
        min_conversion: 0.2,
        block: Duration::from_secs(3_600),
        count_when_blocked: false,
    };
    let mut set = JoinSet::new();
    for _ in 0..30 {
        let (app, destination) = (Arc::clone(&app), destination.clone());
        set.spawn(async move {
            app.services
                .store
                .count_send(&destination, limits)
                .await
                .unwrap()
        });
    }
    let (mut open, mut tripped, mut blocked) = (0, 0, 0);
    while let Some(decision) = set.join_next().await {
        match decision.unwrap() {
            BreakerDecision::Open { .. } => open += 1,
            BreakerDecision::Tripped {
                sends, verified, ..
            } => {
                assert_eq!((sends, verified), (10, 0));
                tripped += 1;
            }
            BreakerDecision::Blocked { .. } => blocked += 1,
        }
    }

    assert_eq!((open, tripped, blocked), (10, 1, 19));
}

#[tokio::test]
async fn test_and_trusted_numbers_never_trip_nor_get_blocked() {
    let app = TestApp::builder()
        .env("PUMPING_MIN_SENDS", "2")
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .env("OTP_MAX_SENDS_PER_HOUR", "100")
        .env("TEST_PHONE_NUMBERS", "+14155559001:424242")
        .env("TRUSTED_PHONE_NUMBERS", "+14155559002")
        .spawn()
        .await;
    for _ in 0..5 {
        assert_eq!(app.request("+14155559001").await.status, 200);
        assert_eq!(app.request("+14155559002").await.status, 200);
    }
    assert_eq!(app.breaker_counts("US:415555").await, (0, 0));
    for n in 0..2 {
        assert_eq!(app.request(&in_range(n)).await.status, 200);
    }
    assert_eq!(
        app.request(&in_range(2)).await.error(),
        "destination_temporarily_blocked"
    );

    let test_number = app.request("+14155559001").await;
    let trusted = app.request("+14155559002").await;
    let verified = app.verify("+14155559001", "424242").await;

    assert_eq!(test_number.status, 200, "{}", test_number.body);
    assert_eq!(trusted.status, 200, "{}", trusted.body);
    assert_eq!(verified.status, 200);
}

#[tokio::test]
async fn with_the_breaker_off_nothing_is_counted() {
    let app = TestApp::builder()
        .env("PUMPING_BREAKER", "off")
        .env("PUMPING_MIN_SENDS", "1")
        .spawn()
        .await;
    for n in 0..3 {
        assert_eq!(app.request(&in_range(n)).await.status, 200);
    }
    assert_eq!(app.breaker_counts("US:415555").await, (0, 0));
}

/// The bucket a moment falls in with the default one-hour window.
fn bucket_now() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ms / 60_000
}

#[tokio::test]
async fn sends_older_than_the_window_no_longer_count() {
    let app = TestApp::spawn().await;
    let key = format!("{}:dest:{{US:415555}}", app.prefix);
    let now = bucket_now();
    // 30 sends 65 minutes ago (out of the hour) and 5 ten minutes ago.
    let _: () = app
        .redis
        .query(
            redis::cmd("HSET")
                .arg(&key)
                .arg("lo")
                .arg(now - 70)
                .arg(format!("s{}", now - 65))
                .arg(30)
                .arg(format!("s{}", now - 10))
                .arg(5)
                .arg("ts")
                .arg(35),
        )
        .await;

    let sent = app.request(PHONE).await;

    assert_eq!(sent.status, 200, "the stale 30 would have tripped it");
    assert_eq!(app.breaker_counts("US:415555").await, (6, 0));
}

#[tokio::test]
async fn a_destination_idle_for_longer_than_the_window_starts_from_nothing() {
    let app = TestApp::spawn().await;
    let key = format!("{}:dest:{{US:415555}}", app.prefix);
    let now = bucket_now();
    let _: () = app
        .redis
        .query(
            redis::cmd("HSET")
                .arg(&key)
                .arg("lo")
                .arg(now - 500)
                .arg(format!("s{}", now - 400))
                .arg(50)
                .arg("ts")
                .arg(50),
        )
        .await;

    assert_eq!(app.request(PHONE).await.status, 200);
    assert_eq!(app.breaker_counts("US:415555").await, (1, 0));
}

/// The destination's hash, its time to live in ms (-1: none).
async fn destination_ttl(app: &TestApp, destination: &str) -> i64 {
    let key = format!("{}:dest:{{{destination}}}", app.prefix);
    app.redis.query(redis::cmd("PTTL").arg(&key)).await
}

#[tokio::test]
async fn a_destination_hash_expires_after_the_window_and_the_block() {
    let app = TestApp::builder()
        .env("PUMPING_MIN_SENDS", "3")
        .env("PUMPING_BLOCK_SECONDS", "7200")
        .spawn()
        .await;
    let hour_and_a_bucket = 3_600_000 + 60_000;
    for n in 0..3 {
        assert_eq!(app.request(&in_range(n)).await.status, 200);
        let ttl = destination_ttl(&app, "US:415555").await;
        assert!(
            (hour_and_a_bucket - 5_000..=hour_and_a_bucket).contains(&ttl),
            "after send {n}: {ttl}"
        );
    }

    let blocked = app.request(&in_range(3)).await;

    assert_eq!(blocked.error(), "destination_temporarily_blocked");
    let ttl = destination_ttl(&app, "US:415555").await;
    let block_then_window = 7_200_000 + hour_and_a_bucket;
    assert!(
        (block_then_window - 5_000..=block_then_window).contains(&ttl),
        "{ttl}"
    );
}

#[tokio::test]
async fn a_block_that_outlasts_an_idle_window_still_expires() {
    let app = TestApp::builder()
        .env("PUMPING_BLOCK_SECONDS", "86400")
        .spawn()
        .await;
    let key = format!("{}:dest:{{US:415555}}", app.prefix);
    let now = bucket_now();
    let blocked_until = (now + 600) * 60_000;
    // Last counted 500 buckets ago, blocked for ten more hours.
    let _: () = app
        .redis
        .query(
            redis::cmd("HSET")
                .arg(&key)
                .arg("lo")
                .arg(now - 500)
                .arg("blocked")
                .arg(blocked_until),
        )
        .await;

    let refused = app.request(PHONE).await;

    assert_eq!(refused.error(), "destination_temporarily_blocked");
    let ttl = destination_ttl(&app, "US:415555").await;
    assert!(
        ttl > 600 * 60_000 - 120_000,
        "the block and the window: {ttl}"
    );
}
