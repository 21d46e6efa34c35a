//! A cold-start storm against Secrets Manager: many instances start at once
//! (a deploy, a traffic spike) and GetSecretValue is throttled. A proxy of
//! the test's own (`scripts/throttle_proxy.py`, a child process) answers
//! `ThrottlingException` to the first calls and passes the rest to the
//! emulator; the SDK's retries with backoff must carry every cold start
//! through within Lambda's init budget.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use otp::{
    config::Config,
    services::{Role, Services},
};
use tokio::task::JoinSet;

use crate::support::*;

/// Lambda gives a function's init phase 10 s; past that the instance is
/// restarted and the invocation pays the whole cold start again.
const INIT_BUDGET: Duration = Duration::from_secs(10);

/// The proxy, stopped when the test ends.
struct ThrottlingProxy {
    child: Child,
    url: String,
}

impl ThrottlingProxy {
    /// Throttles the first `calls` calls, then forwards to the emulator.
    fn start(calls: usize) -> Self {
        let upstream = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").expect(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set: run ./scripts/test.sh, which starts the emulator",
        );
        let script = format!(
            "{}/../scripts/throttle_proxy.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new("python3")
            .args([
                &script,
                "--upstream",
                &upstream,
                "--throttle",
                &calls.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs scripts/throttle_proxy.py");
        let mut port = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut port)
            .expect("the proxy prints its port");
        let url = format!("http://127.0.0.1:{}", port.trim());
        Self { child, url }
    }

    /// (throttled, forwarded) calls so far.
    async fn stats(&self) -> (u64, u64) {
        let stats: serde_json::Value = reqwest::get(format!("{}/stats", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            stats["throttled"].as_u64().unwrap(),
            stats["forwarded"].as_u64().unwrap(),
        )
    }

    /// The SDK configuration the functions load (their retries and
    /// backoff), with this proxy as the Secrets Manager endpoint: set in
    /// code, so it beats the process-wide `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    fn aws(&self) -> impl Future<Output = aws_config::SdkConfig> + Send + 'static {
        otp::services::aws_config_loader()
            .endpoint_url(self.url.clone())
            .load()
    }
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_for(secret_id: &str) -> Config {
    Config::from_lookup(|name| match name {
        "OTP_SECRET_ID" => Some(secret_id.to_owned()),
        "PLIVO_SENDER" => Some(SENDER.to_owned()),
        "REDIS_URL" => Some(redis_url()),
        "REDIS_CLUSTER" => Some(cluster_mode().to_string()),
        "REDIS_TLS_CA_FILE" => std::env::var("TEST_REDIS_CA_FILE").ok(),
        "REDIS_KEY_PREFIX" => Some(unique("storm")),
        _ => None,
    })
    .unwrap()
}

/// One cold start of verify-otp (which calls no Plivo), timed.
async fn cold_start(config: Config, proxy: &ThrottlingProxy) -> (bool, Duration) {
    let started = Instant::now();
    let services = Services::init(config, proxy.aws(), Role::VerifyOtp).await;
    if let Err(err) = &services {
        eprintln!("cold start failed: {}", otp::error_chain(err));
    }
    (services.is_ok(), started.elapsed())
}

#[tokio::test]
async fn a_throttled_cold_start_retries_with_backoff_and_comes_up_within_the_init_budget() {
    let secret = create_secret(&secret_json(AUTH_ID, AUTH_TOKEN)).await;
    let proxy = ThrottlingProxy::start(2);

    let (up, took) = cold_start(config_for(&secret), &proxy).await;

    assert!(up, "the cold start came up");
    assert!(took < INIT_BUDGET, "took {took:?}");
    assert_eq!(
        proxy.stats().await,
        (2, 1),
        "two throttled calls, then one served"
    );
    eprintln!("a cold start throttled twice came up in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_cold_starts_against_a_throttled_secrets_manager_all_come_up() {
    let secret = create_secret(&secret_json(AUTH_ID, AUTH_TOKEN)).await;
    // Two and a half throttled calls per instance: every first attempt,
    // and more for the unlucky ones (the SDK's default three attempts
    // would leave some of them down).
    let proxy = std::sync::Arc::new(ThrottlingProxy::start(50));

    let mut starts = JoinSet::new();
    for _ in 0..20 {
        let (config, proxy) = (config_for(&secret), std::sync::Arc::clone(&proxy));
        starts.spawn(async move { cold_start(config, &proxy).await });
    }
    let mut times = Vec::new();
    while let Some(done) = starts.join_next().await {
        let (up, took) = done.unwrap();
        assert!(up, "every cold start came up");
        times.push(took);
    }

    times.sort();
    let slowest = times[times.len() - 1];
    assert!(slowest < INIT_BUDGET, "the slowest took {slowest:?}");
    assert_eq!(
        proxy.stats().await,
        (50, 20),
        "50 throttled calls, then one served each"
    );
    eprintln!(
        "20 simultaneous cold starts, 50 calls throttled: median {:?}, slowest {slowest:?}",
        times[times.len() / 2]
    );
}
