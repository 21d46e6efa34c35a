//! The load run: K function processes side by side (half request-otp, half
//! verify-otp, one of each per flow worker) against one Redis for T
//! seconds. Each worker runs full flows (request, the code from the Plivo
//! stand-in, verify), with resends inside the cooldown and wrong guesses
//! mixed in, and every answer is checked against what that call should get.
//! With `--failover-at`, a primary of the cluster is killed mid-run.
//! Written as JSON for `otp-bench report`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    Error, REQUEST_EVENT, VERIFY_EVENT,
    cluster::Cluster,
    flows::{Run, Tally, answer_of},
    machine, percentile, phone,
    plivo::Plivo,
    redis_stats::Redis,
    runtime::Instance,
};

pub struct Args {
    request_bin: String,
    verify_bin: String,
    instances: usize,
    seconds: u64,
    label: String,
    redis_url: String,
    redis_ca: Option<String>,
    cluster_dir: Option<String>,
    failover_at: Option<u64>,
    out: String,
    env: Vec<(String, String)>,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, Error> {
        let mut args = Self {
            request_bin: "target/release/request-otp".into(),
            verify_bin: "target/release/verify-otp".into(),
            instances: 16,
            seconds: 30,
            label: "standalone".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_ca: None,
            cluster_dir: None,
            failover_at: None,
            out: "load.json".into(),
            env: Vec::new(),
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--request-bin" => args.request_bin = value,
                "--verify-bin" => args.verify_bin = value,
                "--instances" => args.instances = value.parse()?,
                "--seconds" => args.seconds = value.parse()?,
                "--label" => args.label = value,
                "--redis-url" => args.redis_url = value,
                "--redis-ca" => args.redis_ca = Some(value),
                "--cluster-dir" => args.cluster_dir = Some(value),
                "--failover-at" => args.failover_at = Some(value.parse()?),
                "--out" => args.out = value,
                "--env" => {
                    let (k, v) = value.split_once('=').ok_or("--env takes NAME=VALUE")?;
                    args.env.push((k.into(), v.into()));
                }
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        if args.instances < 2 || !args.instances.is_multiple_of(2) || args.instances > 500 {
            return Err("--instances must be even, 2 to 500".into());
        }
        if args.failover_at.is_some() && args.cluster_dir.is_none() {
            return Err("--failover-at needs --cluster-dir".into());
        }
        Ok(args)
    }
}

pub async fn run(args: Args) -> Result<(), Error> {
    let plivo = Arc::new(Plivo::default());
    let plivo_addr = plivo.start().await?;
    let mut env = args.env.clone();
    env.push(("PLIVO_API_URL".into(), format!("http://{plivo_addr}")));
    let redis = Redis::new(&args.redis_url, args.redis_ca.as_deref())?;
    let prefix = env
        .iter()
        .rev()
        .find(|(k, _)| k == "REDIS_KEY_PREFIX")
        .map(|(_, v)| v.clone())
        .ok_or("--env REDIS_KEY_PREFIX=... is required")?;

    let workers = args.instances / 2;
    let mut pairs = Vec::new();
    for _ in 0..workers {
        pairs.push((
            Instance::spawn(&args.request_bin, "request-otp", &env).await?,
            Instance::spawn(&args.verify_bin, "verify-otp", &env).await?,
        ));
    }
    let run = Arc::new(Run {
        plivo: Arc::clone(&plivo),
        templates: [
            serde_json::from_str(REQUEST_EVENT)?,
            serde_json::from_str(VERIFY_EVENT)?,
        ],
        tally: Mutex::new(Tally::default()),
        next_phone: AtomicU64::new(0),
        flows: AtomicU64::new(0),
        failover: args.failover_at.is_some(),
    });
    // One flow each first: the cold starts stay out of the figures.
    for (w, (request, verify)) in pairs.iter().enumerate() {
        let n = run.next_phone.fetch_add(1, Ordering::Relaxed);
        run.flow(n, &format!("198.51.100.{}", w % 250 + 1), request, verify)
            .await;
    }
    *run.tally.lock().unwrap() = Tally::default();
    run.flows.store(0, Ordering::Relaxed);

    let before = redis.snapshot().await?;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let drill = args.failover_at.map(|at| {
        let cluster = Cluster::new(
            args.cluster_dir.as_deref().unwrap_or_default(),
            redis.clone(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(at)).await;
            cluster.drill(Duration::from_secs(5)).await
        })
    });
    let mut tasks = JoinSet::new();
    for (w, (request, verify)) in pairs.into_iter().enumerate() {
        let run = Arc::clone(&run);
        tasks.spawn(async move {
            let ip = format!("198.51.100.{}", w % 250 + 1);
            while Instant::now() < end {
                let n = run.next_phone.fetch_add(1, Ordering::Relaxed);
                if n >= 999_000 {
                    break;
                }
                run.flow(n, &ip, &request, &verify).await;
            }
            (request, verify)
        });
    }
    let mut instances = Vec::new();
    while let Some(done) = tasks.join_next().await {
        instances.push(done?);
    }
    let elapsed = started.elapsed();
    let drill = match drill {
        Some(task) => Some(task.await??),
        None => None,
    };
    let delta = redis.snapshot().await?.since(&before);

    let (simple, simple_commands) = redis
        .simple_commands(
            &format!("{prefix}-calibration"),
            workers,
            Duration::from_secs(3),
        )
        .await?;
    let memory = pending_phone_memory(&args, &env, &redis, &run).await?;
    drop(instances);

    let tally = run.tally.lock().unwrap();
    let flows = run.flows.load(Ordering::Relaxed);
    let latency = |i: usize| {
        let mut sorted = tally.latencies[i].clone();
        sorted.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if sorted.is_empty() {
            return json!(null);
        }
        json!({"count": sorted.len(), "p50_ms": ms(percentile(&sorted, 50.0)),
               "p99_ms": ms(percentile(&sorted, 99.0)), "max_ms": ms(sorted[sorted.len() - 1])})
    };
    let histogram: Vec<Value> = tally
        .histogram
        .iter()
        .map(|(&(case, got), count)| {
            let (function, what, expected, _) = case.describe();
            json!({"function": function, "case": what, "expected": expected, "got": got, "count": count})
        })
        .collect();
    let report = json!({
        "label": args.label,
        "instances": args.instances,
        "seconds": args.seconds,
        "elapsed_s": elapsed.as_secs_f64(),
        "flows": flows,
        "flows_per_s": flows as f64 / elapsed.as_secs_f64(),
        "latency": {"request-otp": latency(0), "verify-otp": latency(1)},
        "histogram": histogram,
        "unexpected": tally.unexpected.len(),
        "unexpected_examples": tally.unexpected.iter().take(10).collect::<Vec<_>>(),
        "redis": delta.to_json(),
        "simple": {"commands": simple_commands, "stats": simple.to_json()},
        "memory": memory,
        "drill": drill.map(|d| drill_json(&d, &tally)),
        "machine": machine(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

/// Recovery: from the replica's promotion to the last 503 before the old
/// primary came back.
fn drill_json(drill: &crate::cluster::Drill, tally: &Tally) -> Value {
    let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
    let last_503 = tally
        .unavailable
        .iter()
        .filter(|t| **t < drill.restarted)
        .max()
        .copied();
    json!({
        "promotion_ms": ms(drill.killed, drill.promoted),
        "recovery_ms": last_503.map_or(0.0, |t| ms(drill.promoted, t)),
        "unavailable": tally.unavailable.len(),
        "unavailable_after_restart": tally.unavailable.iter().filter(|t| **t >= drill.restarted).count(),
        "rejoined_ms": drill.rejoined.map(|t| ms(drill.restarted, t)),
        "lost_writes": tally.lost_writes,
        "abandoned_flows": tally.abandoned,
    })
}

/// `MEMORY USAGE` of what one request leaves: the phone's keys and the
/// source IP's, under a prefix of their own.
async fn pending_phone_memory(
    args: &Args,
    env: &[(String, String)],
    redis: &Redis,
    run: &Run,
) -> Result<Value, Error> {
    // Three characters, as long as the default `otp`: key names count. Any
    // key left under it by an earlier probe goes first.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let own = format!("m{:02}", nanos % 100);
    redis.delete(&format!("{own}:*")).await?;
    let mut env = env.to_vec();
    env.push(("REDIS_KEY_PREFIX".into(), own.clone()));
    let instance = Instance::spawn(&args.request_bin, "request-otp", &env).await?;
    let event = run.event(0, "192.0.2.1", json!({"phoneNumber": phone(999_999)}));
    let answer = answer_of(&instance.invoke(event).await?.body);
    if answer.status != 200 {
        return Err(format!("the memory probe got {}", answer.status).into());
    }
    let keys = redis.memory(&format!("{own}:*")).await?;
    let sum = |ip: bool| -> u64 {
        keys.iter()
            .filter(|(k, _)| k.contains(":ip:") == ip)
            .map(|(_, b)| b)
            .sum()
    };
    let names: Vec<Value> = keys
        .iter()
        .map(|(k, b)| json!([k.rsplit(':').next().unwrap_or(k), k.contains(":ip:"), b]))
        .collect();
    Ok(json!({"phone_bytes": sum(false), "ip_bytes": sum(true), "keys": names}))
}
