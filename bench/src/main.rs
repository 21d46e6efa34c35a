//! `otp-bench`: runs the release `bootstrap` binaries the way Lambda does,
//! through a Lambda Runtime API server of our own, against a local Redis,
//! the Secrets Manager emulator and an in-process Plivo stand-in.
//!
//! - `otp-bench [flags]`: the latency table (cold start, warm latency, Redis
//!   round trips, memory, package size);
//! - `otp-bench load [flags]`: many instances running full flows for a
//!   while, optionally through a failover of the cluster, written as JSON;
//! - `otp-bench report [flags]`: the tables of `bench/results.md` from both.
//!
//! `scripts/bench.sh` builds the binaries, starts the services and runs them.

mod cluster;
mod flows;
mod latency;
mod load;
mod plivo;
mod redis_stats;
mod report;
mod rounds;
mod runtime;

use std::time::Duration;

use serde_json::{Value, json};

use crate::runtime::Outcome;

type Error = Box<dyn std::error::Error + Send + Sync>;

const REQUEST_EVENT: &str = include_str!("../../events/request-otp-http-api.json");
const VERIFY_EVENT: &str = include_str!("../../events/verify-otp-http-api.json");

#[tokio::main]
async fn main() -> Result<(), Error> {
    // One rustls crypto provider for the TLS connections to the cluster.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("load") => load::run(load::Args::parse(args.skip(1))?).await,
        Some("report") => report::run(report::Args::parse(args.skip(1))?),
        _ => latency::run(latency::Args::parse(args)?).await,
    }
}

pub fn event(template: &str, body: Value) -> String {
    let mut event: Value = serde_json::from_str(template).expect("sample event");
    event["body"] = json!(body.to_string());
    event.to_string()
}

pub fn phone(n: usize) -> String {
    format!("+447400{n:06}")
}

pub fn status_of(outcome: &Outcome) -> u64 {
    serde_json::from_str::<Value>(&outcome.body)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .unwrap_or(0)
}

pub fn expect_status(outcome: &Outcome, status: u64, what: &str) -> Result<(), Error> {
    if status_of(outcome) == status {
        Ok(())
    } else {
        Err(format!("{what}: expected {status}, got {}", outcome.body).into())
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// The CPU model and core count, for the tables.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores")
}
