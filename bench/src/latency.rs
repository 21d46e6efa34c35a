//! The latency run: cold start over fresh processes, warm latency of each
//! function, Redis round trips as MONITOR sees them, memory over many
//! invocations, and the zipped arm64 package.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{
    Error, REQUEST_EVENT, VERIFY_EVENT, event, expect_status, machine, ms, percentile, phone,
    plivo::Plivo, runtime::Instance,
};

const WARM_UP: usize = 50;
const ROUND_TRIP_WINDOW: usize = 200;

pub struct Args {
    request_bin: String,
    verify_bin: String,
    redis_port: u16,
    invocations: usize,
    cold_starts: usize,
    out: String,
    env: Vec<(String, String)>,
    zip_bytes: Vec<(String, u64)>,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, Error> {
        let mut args = Self {
            request_bin: "target/release/request-otp".into(),
            verify_bin: "target/release/verify-otp".into(),
            redis_port: 6379,
            invocations: 10_000,
            cold_starts: 20,
            out: "bench/results.md".into(),
            env: Vec::new(),
            zip_bytes: Vec::new(),
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--request-bin" => args.request_bin = value,
                "--verify-bin" => args.verify_bin = value,
                "--redis-port" => args.redis_port = value.parse()?,
                "--invocations" => args.invocations = value.parse()?,
                "--cold-starts" => args.cold_starts = value.parse()?,
                "--out" => args.out = value,
                // NAME=VALUE, passed to the functions as it is.
                "--env" => {
                    let (k, v) = value.split_once('=').ok_or("--env takes NAME=VALUE")?;
                    args.env.push((k.into(), v.into()));
                }
                // function=bytes, the zipped arm64 bootstrap.
                "--zip-bytes" => {
                    let (k, v) = value
                        .split_once('=')
                        .ok_or("--zip-bytes takes NAME=BYTES")?;
                    args.zip_bytes.push((k.into(), v.parse()?));
                }
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        Ok(args)
    }
}

/// Counts the commands Redis receives from clients, as MONITOR shows them;
/// commands run inside scripts (`[0 lua]`) are not round trips.
async fn monitor(redis_port: u16) -> Result<(Arc<AtomicU64>, tokio::task::JoinHandle<()>), Error> {
    let mut stream = TcpStream::connect(("127.0.0.1", redis_port)).await?;
    stream.write_all(b"MONITOR\r\n").await?;
    let count = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&count);
    let mut lines = BufReader::new(stream).lines();
    // Aborting the task drops the stream, which ends MONITOR on the server.
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with('+') && line.contains(" [") && !line.contains(" lua]") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok((count, reader))
}

struct Warm {
    latencies: Vec<Duration>,
    round_trips: f64,
    rss_after_1k_kib: u64,
    rss_end_kib: u64,
    peak_kib: u64,
}

async fn warm_run(
    instance: &Instance,
    redis_port: u16,
    events: impl Fn(usize) -> Result<String, Error>,
    expect: u64,
    invocations: usize,
) -> Result<Warm, Error> {
    let mut n = 0;
    for _ in 0..WARM_UP {
        expect_status(&instance.invoke(events(n)?).await?, expect, "warm-up")?;
        n += 1;
    }
    let (count, reader) = monitor(redis_port).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = count.load(Ordering::Relaxed);
    for _ in 0..ROUND_TRIP_WINDOW {
        expect_status(
            &instance.invoke(events(n)?).await?,
            expect,
            "round-trip window",
        )?;
        n += 1;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let round_trips = (count.load(Ordering::Relaxed) - before) as f64 / ROUND_TRIP_WINDOW as f64;
    // MONITOR slows Redis: close it before the timed invocations, and give
    // Redis a moment to notice.
    reader.abort();
    let _ = reader.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut latencies = Vec::with_capacity(invocations);
    let checkpoint = 1_000.min(invocations / 10).max(1);
    let mut rss_after_1k_kib = 0;
    for i in 0..invocations {
        let outcome = instance.invoke(events(n)?).await?;
        expect_status(&outcome, expect, "measured invocation")?;
        latencies.push(outcome.finished - outcome.handed);
        n += 1;
        if i + 1 == checkpoint {
            rss_after_1k_kib = instance.memory_kib().0;
        }
    }
    let (rss_end_kib, peak_kib) = instance.memory_kib();
    latencies.sort();
    Ok(Warm {
        latencies,
        round_trips,
        rss_after_1k_kib,
        rss_end_kib,
        peak_kib,
    })
}

/// Milliseconds per init phase, from the functions' "cold start" log line.
fn init_phases(lines: &[String]) -> Vec<(String, f64)> {
    let Some(line) = lines.first() else {
        return Vec::new();
    };
    let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.ends_with("_ms"))
                .filter_map(|(k, v)| Some((k.trim_end_matches("_ms").to_owned(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(args: Args) -> Result<(), Error> {
    let plivo = Arc::new(Plivo::default());
    let plivo_addr = plivo.start().await?;
    let mut env = args.env.clone();
    env.push(("PLIVO_API_URL".into(), format!("http://{plivo_addr}")));

    // Cold starts: process start to the first request-otp response, each a
    // fresh process (secret fetch, Redis connect and SMS send included).
    let mut cold = Vec::new();
    let mut phases: HashMap<String, Vec<f64>> = HashMap::new();
    for i in 0..args.cold_starts {
        let started = Instant::now();
        let mut instance = Instance::spawn(&args.request_bin, "request-otp", &env).await?;
        let outcome = instance
            .invoke(event(
                REQUEST_EVENT,
                json!({"phoneNumber": phone(900_000 + i)}),
            ))
            .await?;
        expect_status(&outcome, 200, "cold start")?;
        cold.push(outcome.finished - started);
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (name, value) in init_phases(&instance.logs.lock().unwrap()) {
            phases.entry(name).or_default().push(value);
        }
        instance.child.kill().await?;
    }
    cold.sort();

    let requests = Instance::spawn(&args.request_bin, "request-otp", &env).await?;
    let request = warm_run(
        &requests,
        args.redis_port,
        |n| Ok(event(REQUEST_EVENT, json!({"phoneNumber": phone(n)}))),
        200,
        args.invocations,
    )
    .await?;
    let verifies = Instance::spawn(&args.verify_bin, "verify-otp", &env).await?;
    let verify = warm_run(
        &verifies,
        args.redis_port,
        |n| {
            let number = phone(n);
            let code = plivo
                .code_for(&number)
                .ok_or_else(|| format!("no code was sent to {number}"))?;
            Ok(event(
                VERIFY_EVENT,
                json!({"phoneNumber": number, "otp": code}),
            ))
        },
        200,
        args.invocations,
    )
    .await?;

    let report = render(&args, &cold, &phases, &request, &verify);
    println!("{report}");
    std::fs::write(&args.out, format!("{report}\n"))?;
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn render(
    args: &Args,
    cold: &[Duration],
    phases: &HashMap<String, Vec<f64>>,
    request: &Warm,
    verify: &Warm,
) -> String {
    let cold_p50 = percentile(cold, 50.0);
    let (rq50, rq99) = (
        percentile(&request.latencies, 50.0),
        percentile(&request.latencies, 99.0),
    );
    let (vf50, vf99) = (
        percentile(&verify.latencies, 50.0),
        percentile(&verify.latencies, 99.0),
    );
    let growth = |w: &Warm| mib(w.rss_end_kib.saturating_sub(w.rss_after_1k_kib));
    let flat = |w: &Warm| growth(w) <= 1.0;
    let mut rows = vec![
        format!(
            "| cold start: process start to first request-otp response (median of {}; p90 {}) | {} | ≤ 40 ms | {} |",
            cold.len(),
            ms(percentile(cold, 90.0)),
            ms(cold_p50),
            verdict(cold_p50 <= Duration::from_millis(40))
        ),
        format!(
            "| warm request-otp, event in to response out (p50 / p99 of {}) | {} / {} | ≤ 1 ms / ≤ 3 ms | {} |",
            request.latencies.len(),
            ms(rq50),
            ms(rq99),
            verdict(rq50 <= Duration::from_millis(1) && rq99 <= Duration::from_millis(3))
        ),
        format!(
            "| warm verify-otp (p50 / p99 of {}) | {} / {} | ≤ 0.5 ms / ≤ 2 ms | {} |",
            verify.latencies.len(),
            ms(vf50),
            ms(vf99),
            verdict(vf50 <= Duration::from_micros(500) && vf99 <= Duration::from_millis(2))
        ),
        format!(
            "| Redis round trips per call, counted by MONITOR (request-otp / verify-otp) | {:.2} / {:.2} | ≤ 2 / ≤ 2 | {} |",
            request.round_trips,
            verify.round_trips,
            verdict(request.round_trips <= 2.0 && verify.round_trips <= 2.0)
        ),
        format!(
            "| peak RSS over {} invocations (request-otp / verify-otp); growth from invocation 1,000 to the end | {:.1} / {:.1} MiB; +{:.2} / +{:.2} MiB | ≤ 30 MiB, flat | {} |",
            args.invocations + WARM_UP + ROUND_TRIP_WINDOW,
            mib(request.peak_kib),
            mib(verify.peak_kib),
            growth(request),
            growth(verify),
            verdict(
                mib(request.peak_kib) <= 30.0
                    && mib(verify.peak_kib) <= 30.0
                    && flat(request)
                    && flat(verify)
            )
        ),
    ];
    if !args.zip_bytes.is_empty() {
        let sizes: Vec<String> = args
            .zip_bytes
            .iter()
            .map(|(n, b)| format!("{n} {:.2} MiB", *b as f64 / 1_048_576.0))
            .collect();
        let ok = args.zip_bytes.iter().all(|(_, b)| *b <= 4 * 1_048_576);
        rows.push(format!(
            "| `bootstrap` arm64 release, zipped | {} | ≤ 4 MiB | {} |",
            sizes.join(" / "),
            verdict(ok)
        ));
    }
    let mut phase_names: Vec<&String> = phases.keys().collect();
    phase_names.sort();
    let phase_text: Vec<String> = phase_names
        .iter()
        .map(|name| format!("{name} {:.1} ms", median(&mut phases[*name].clone())))
        .collect();
    format!(
        "| figure | measured | target | met |\n|---|---|---|---|\n{}\n\nInit phases inside the cold start (medians, from the functions' `cold start` log line): {}.\n\nMachine: {}; x86_64 release binaries for the timings.",
        rows.join("\n"),
        if phase_text.is_empty() {
            "not reported".into()
        } else {
            phase_text.join(", ")
        },
        machine(),
    )
}
