//! The latency run: cold start over fresh processes, warm latency of each
//! function, Redis commands (MONITOR) and sequential round trips (on the
//! wire, `rounds`), memory over many invocations, and the zipped arm64
//! package. Warm latency is compared, in the same run and interleaved so
//! that the machine's drift touches all alike, with the pumping breaker off
//! and, when given, with the binaries of an earlier commit.

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
    plivo::Plivo,
    rounds::{self, Wire},
    runtime::Instance,
};

pub const WARM_UP: usize = 50;
pub const ROUND_TRIP_WINDOW: usize = 200;
/// Timed invocations run in turns of this many per process.
const TURN: usize = 50;
/// Processes per configuration: one process can run a few per cent faster
/// or slower than another of the same binary (where its memory landed,
/// which core it shares with Redis), so each configuration's latencies
/// come from several.
const PROCESSES: usize = 4;
/// How far apart the number ranges of one configuration's processes are.
const PROCESS_NUMBERS: usize = 15_000;
/// Where each configuration's numbers start (they must not share codes).
const BREAKER_OFF_NUMBERS: usize = 300_000;
const BASELINE_NUMBERS: usize = 600_000;
const HS256_NUMBERS: usize = 240_000;
const WIRE_NUMBERS: usize = 500_000;

pub struct Args {
    request_bin: String,
    verify_bin: String,
    redis_port: u16,
    invocations: usize,
    cold_starts: usize,
    out: String,
    env: Vec<(String, String)>,
    zip_bytes: Vec<(String, u64)>,
    /// Also time both functions with `PUMPING_BREAKER=off`.
    breaker_baseline: bool,
    /// An earlier build to time beside this one: (label, request, verify).
    baseline: Option<(String, String, String)>,
    /// A secret with HS256 tokens: this build is also timed with it, to
    /// compare with a baseline from before ES256 like for like.
    hs256_secret: Option<String>,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, Error> {
        let mut args = Self {
            request_bin: "target/release/request-otp".into(),
            verify_bin: "target/release/verify-otp".into(),
            redis_port: 6379,
            invocations: 20_000,
            cold_starts: 20,
            out: "bench/results.md".into(),
            env: Vec::new(),
            zip_bytes: Vec::new(),
            breaker_baseline: true,
            baseline: None,
            hs256_secret: None,
        };
        let (mut label, mut request, mut verify) = (None, None, None);
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
                "--breaker-baseline" => args.breaker_baseline = value == "on",
                "--baseline-label" => label = Some(value),
                "--baseline-request-bin" => request = Some(value),
                "--baseline-verify-bin" => verify = Some(value),
                "--hs256-secret" => args.hs256_secret = Some(value),
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        args.baseline = match (label, request, verify) {
            (Some(l), Some(r), Some(v)) => Some((l, r, v)),
            (None, None, None) => None,
            _ => return Err(
                "--baseline-label, --baseline-request-bin and --baseline-verify-bin go together"
                    .into(),
            ),
        };
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

/// One configuration timed beside the others: its request-otp and
/// verify-otp processes and the numbers it sends to.
struct Contender {
    label: String,
    request_bin: String,
    verify_bin: String,
    env: Vec<(String, String)>,
    numbers: usize,
}

/// What the configuration under test (the first contender) showed.
struct Main {
    request_commands: f64,
    verify_commands: f64,
    rss_after_1k_kib: [u64; 2],
    rss_end_kib: [u64; 2],
    peak_kib: [u64; 2],
}

/// Sorted latencies per contender, request-otp then verify-otp.
struct Timed {
    request: Vec<Vec<Duration>>,
    verify: Vec<Vec<Duration>>,
}

/// Warm-up, then (first contender only) MONITOR's window; returns its
/// commands per call.
async fn warm_up(
    instance: &Instance,
    monitor_port: Option<u16>,
    events: &impl Fn(usize) -> Result<String, Error>,
    expect: u64,
) -> Result<(usize, f64), Error> {
    let mut n = 0;
    for _ in 0..WARM_UP {
        expect_status(&instance.invoke(events(n)?).await?, expect, "warm-up")?;
        n += 1;
    }
    let Some(port) = monitor_port else {
        return Ok((n, 0.0));
    };
    let (count, reader) = monitor(port).await?;
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
    let commands = (count.load(Ordering::Relaxed) - before) as f64 / ROUND_TRIP_WINDOW as f64;
    // MONITOR slows Redis: close it before the timed invocations, and give
    // Redis a moment to notice.
    reader.abort();
    let _ = reader.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok((n, commands))
}

/// One function process of one configuration.
struct Process {
    instance: Instance,
    contender: usize,
    numbers: usize,
    next: usize,
}

/// Times `invocations` calls per configuration, spread over its processes,
/// in turns of `TURN` whose order rotates, so that a slow moment of the
/// machine or a place in the order lands on every configuration alike.
/// Returns the sorted latencies per configuration and the first process's
/// RSS once it has run 1,000.
async fn timed_turns(
    processes: &mut [Process],
    contenders: usize,
    events: &impl Fn(usize, usize) -> Result<String, Error>,
    invocations: usize,
) -> Result<(Vec<Vec<Duration>>, u64), Error> {
    let mut latencies = vec![Vec::with_capacity(invocations); contenders];
    let per_process = invocations.div_ceil(PROCESSES);
    let checkpoint = 1_000.min(per_process / 10).max(1);
    let mut rss_after_1k_kib = 0;
    let mut done = 0;
    let mut round = 0;
    while done < per_process {
        let turn = TURN.min(per_process - done);
        let count = processes.len();
        for i in (0..count).map(|i| (i + round) % count) {
            let process = &mut processes[i];
            for _ in 0..turn {
                let event = events(process.contender, process.numbers + process.next)?;
                let outcome = process.instance.invoke(event).await?;
                expect_status(&outcome, 200, "measured invocation")?;
                latencies[process.contender].push(outcome.finished - outcome.handed);
                process.next += 1;
            }
        }
        done += turn;
        round += 1;
        if done >= checkpoint && rss_after_1k_kib == 0 {
            rss_after_1k_kib = processes[0].instance.memory_kib().0;
        }
    }
    for l in &mut latencies {
        l.sort();
    }
    Ok((latencies, rss_after_1k_kib))
}

/// Both functions of every contender, warm: request-otp first (its sends
/// leave the codes), then verify-otp with those codes.
async fn warm_runs(
    contenders: &[Contender],
    plivo: &Plivo,
    redis_port: u16,
    invocations: usize,
) -> Result<(Timed, Main), Error> {
    let mut main = Main {
        request_commands: 0.0,
        verify_commands: 0.0,
        rss_after_1k_kib: [0; 2],
        rss_end_kib: [0; 2],
        peak_kib: [0; 2],
    };
    let request_event = |numbers: usize, n: usize| {
        Ok(event(
            REQUEST_EVENT,
            json!({"phoneNumber": phone(numbers + n)}),
        ))
    };
    let verify_event = |numbers: usize, n: usize| {
        let number = phone(numbers + n);
        let code = plivo
            .code_for(&number)
            .ok_or_else(|| format!("no code was sent to {number}"))?;
        Ok(event(
            VERIFY_EVENT,
            json!({"phoneNumber": number, "otp": code}),
        ))
    };
    let mut timed = Timed {
        request: Vec::new(),
        verify: Vec::new(),
    };
    for (function, slot) in [(0, &mut timed.request), (1, &mut timed.verify)] {
        let mut processes = Vec::new();
        for (i, c) in contenders.iter().enumerate() {
            let (bin, name) = match function {
                0 => (&c.request_bin, "request-otp"),
                _ => (&c.verify_bin, "verify-otp"),
            };
            for p in 0..PROCESSES {
                let instance = Instance::spawn(bin, name, &c.env).await?;
                let numbers = c.numbers + p * PROCESS_NUMBERS;
                let events = |n: usize| match function {
                    0 => request_event(numbers, n),
                    _ => verify_event(numbers, n),
                };
                // MONITOR's window: the first process of this build only.
                let first = i == 0 && p == 0;
                let (next, commands) =
                    warm_up(&instance, first.then_some(redis_port), &events, 200).await?;
                if first {
                    match function {
                        0 => main.request_commands = commands,
                        _ => main.verify_commands = commands,
                    }
                }
                processes.push(Process {
                    instance,
                    contender: i,
                    numbers,
                    next,
                });
            }
        }
        // A process of verify-otp walks the same numbers, from the same
        // start, as the matching request-otp process did, so each guess
        // finds its code.
        let events = |_: usize, n: usize| match function {
            0 => request_event(0, n),
            _ => verify_event(0, n),
        };
        let (latencies, rss_after_1k) =
            timed_turns(&mut processes, contenders.len(), &events, invocations).await?;
        main.rss_after_1k_kib[function] = rss_after_1k;
        let (rss, peak) = processes[0].instance.memory_kib();
        main.rss_end_kib[function] = rss;
        main.peak_kib[function] = peak;
        *slot = latencies;
    }
    Ok((timed, main))
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
    if args.invocations.div_ceil(PROCESSES) + WARM_UP + ROUND_TRIP_WINDOW > PROCESS_NUMBERS {
        return Err(format!(
            "at most {} invocations",
            PROCESSES * (PROCESS_NUMBERS - WARM_UP - ROUND_TRIP_WINDOW)
        )
        .into());
    }
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

    let mut contenders = vec![Contender {
        label: "this build".into(),
        request_bin: args.request_bin.clone(),
        verify_bin: args.verify_bin.clone(),
        env: env.clone(),
        numbers: 0,
    }];
    if args.breaker_baseline {
        let mut off = env.clone();
        // The later value of a variable wins.
        off.push(("PUMPING_BREAKER".into(), "off".into()));
        contenders.push(Contender {
            label: "pumping breaker off".into(),
            request_bin: args.request_bin.clone(),
            verify_bin: args.verify_bin.clone(),
            env: off,
            numbers: BREAKER_OFF_NUMBERS,
        });
    }
    if let Some((label, request_bin, verify_bin)) = &args.baseline {
        contenders.push(Contender {
            label: label.clone(),
            request_bin: request_bin.clone(),
            verify_bin: verify_bin.clone(),
            env: env.clone(),
            numbers: BASELINE_NUMBERS,
        });
    }
    if let Some(secret) = &args.hs256_secret {
        let mut hs256 = env.clone();
        hs256.push(("OTP_SECRET_ID".into(), secret.clone()));
        contenders.push(Contender {
            label: "this build with HS256 tokens".into(),
            request_bin: args.request_bin.clone(),
            verify_bin: args.verify_bin.clone(),
            env: hs256,
            numbers: HS256_NUMBERS,
        });
    }
    let (timed, main) = warm_runs(&contenders, &plivo, args.redis_port, args.invocations).await?;

    // Sequential round trips, through the counting proxy, in processes of
    // their own so that the timed runs never paid for the extra hop.
    let (counter, proxy) = rounds::start(args.redis_port).await?;
    let request_wire = rounds::wire_run(
        &args.request_bin,
        "request-otp",
        &env,
        (&counter, proxy),
        |n| {
            Ok(event(
                REQUEST_EVENT,
                json!({"phoneNumber": phone(WIRE_NUMBERS + n)}),
            ))
        },
        200,
    )
    .await?;
    let verify_wire = rounds::wire_run(
        &args.verify_bin,
        "verify-otp",
        &env,
        (&counter, proxy),
        |n| {
            let number = phone(WIRE_NUMBERS + n);
            let code = plivo
                .code_for(&number)
                .ok_or_else(|| format!("no code was sent to {number}"))?;
            Ok(event(
                VERIFY_EVENT,
                json!({"phoneNumber": number, "otp": code}),
            ))
        },
        200,
    )
    .await?;

    let report = render(
        &args,
        &cold,
        &phases,
        &contenders,
        &timed,
        &main,
        (request_wire, verify_wire),
    );
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
    contenders: &[Contender],
    timed: &Timed,
    main: &Main,
    (request_wire, verify_wire): (Wire, Wire),
) -> String {
    let cold_p50 = percentile(cold, 50.0);
    let (rq50, rq99) = (
        percentile(&timed.request[0], 50.0),
        percentile(&timed.request[0], 99.0),
    );
    let (vf50, vf99) = (
        percentile(&timed.verify[0], 50.0),
        percentile(&timed.verify[0], 99.0),
    );
    let growth = |f: usize| mib(main.rss_end_kib[f].saturating_sub(main.rss_after_1k_kib[f]));
    let mut rows = vec![
        format!(
            "| cold start: process start to first request-otp response (median of {}; p90 {}) | {} | ≤ 40 ms | {} |",
            cold.len(),
            ms(percentile(cold, 90.0)),
            ms(cold_p50),
            verdict(cold_p50 <= Duration::from_millis(40))
        ),
        format!(
            "| warm request-otp, pumping breaker on, event in to response out (p50 / p99 of {}) | {} / {} | ≤ 1 ms / ≤ 3 ms | {} |",
            timed.request[0].len(),
            ms(rq50),
            ms(rq99),
            verdict(rq50 <= Duration::from_millis(1) && rq99 <= Duration::from_millis(3))
        ),
        format!(
            "| warm verify-otp, ES256 token (p50 / p99 of {}) | {} / {} | ≤ 0.5 ms / ≤ 2 ms | {} |",
            timed.verify[0].len(),
            ms(vf50),
            ms(vf99),
            verdict(vf50 <= Duration::from_micros(500) && vf99 <= Duration::from_millis(2))
        ),
    ];
    // The same run's other configurations: p50 of this build against theirs.
    for (i, other) in contenders.iter().enumerate().skip(1) {
        for (function, latencies) in [
            ("request-otp", &timed.request),
            ("verify-otp", &timed.verify),
        ] {
            let ours = percentile(&latencies[0], 50.0).as_secs_f64();
            let theirs = percentile(&latencies[i], 50.0).as_secs_f64();
            let change = (ours / theirs - 1.0) * 100.0;
            rows.push(format!(
                "| warm {function} p50: {} → this build (same run, interleaved, {} invocations each over {PROCESSES} processes) | {} → {} ({change:+.1} %) | ≤ +10 % | {} |",
                other.label,
                latencies[i].len(),
                ms(Duration::from_secs_f64(theirs)),
                ms(Duration::from_secs_f64(ours)),
                verdict(change <= 10.0)
            ));
        }
    }
    // Like for like with a baseline from before ES256: both sign HS256.
    let find = |label: &str| contenders.iter().position(|c| c.label == label);
    if let (Some((label, ..)), Some(hs256)) = (&args.baseline, find("this build with HS256 tokens"))
    {
        let baseline = find(label).unwrap_or(0);
        for (function, latencies) in [
            ("request-otp", &timed.request),
            ("verify-otp", &timed.verify),
        ] {
            let ours = percentile(&latencies[hs256], 50.0).as_secs_f64();
            let theirs = percentile(&latencies[baseline], 50.0).as_secs_f64();
            let change = (ours / theirs - 1.0) * 100.0;
            rows.push(format!(
                "| warm {function} p50, HS256 tokens on both: {label} → this build (same run, interleaved) | {} → {} ({change:+.1} %) | ≤ +10 % | {} |",
                ms(Duration::from_secs_f64(theirs)),
                ms(Duration::from_secs_f64(ours)),
                verdict(change <= 10.0)
            ));
        }
    }
    rows.push(format!(
        "| Redis commands per call, counted by MONITOR (request-otp / verify-otp; request-otp's breaker count runs beside the per-IP check, verify-otp's after the response) | {:.2} / {:.2} | ≤ 3 / ≤ 3 | {} |",
        main.request_commands,
        main.verify_commands,
        verdict(main.request_commands <= 3.0 && main.verify_commands <= 3.0)
    ));
    rows.push(format!(
        "| sequential Redis round trips per call before the response, counted on the wire (request-otp / verify-otp; {:.2} / {:.2} commands; then {:.2} / {:.2} after the response) | {:.2} / {:.2} | ≤ 2 / ≤ 2 | {} |",
        request_wire.commands,
        verify_wire.commands,
        request_wire.after_response,
        verify_wire.after_response,
        request_wire.rounds,
        verify_wire.rounds,
        verdict(request_wire.rounds <= 2.0 && verify_wire.rounds <= 2.0)
    ));
    rows.push(format!(
        "| peak RSS of one process over {} invocations (request-otp / verify-otp); growth from invocation 1,000 to the end | {:.1} / {:.1} MiB; +{:.2} / +{:.2} MiB | ≤ 30 MiB, flat | {} |",
        args.invocations.div_ceil(PROCESSES) + WARM_UP + ROUND_TRIP_WINDOW,
        mib(main.peak_kib[0]),
        mib(main.peak_kib[1]),
        growth(0),
        growth(1),
        verdict(
            mib(main.peak_kib[0]) <= 30.0
                && mib(main.peak_kib[1]) <= 30.0
                && growth(0) <= 1.0
                && growth(1) <= 1.0
        )
    ));
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
