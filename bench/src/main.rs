//! `otp-bench`: runs the release `bootstrap` binaries the way Lambda does,
//! through a Lambda Runtime API server of our own (the same HTTP protocol:
//! `/next`, `/response`, `/error`, `/init/error`), against a local Redis, the
//! Secrets Manager emulator and an in-process Plivo stand-in, and prints one
//! table: cold start, warm latency, Redis commands counted on the server and
//! sequential round trips counted on the wire (`rounds`), peak memory over
//! many invocations, and the zipped arm64 package size. request-otp is timed
//! with the pumping breaker as configured (on by default) and, for the
//! comparison, again with `PUMPING_BREAKER=off` (`--breaker-baseline off`
//! skips that run).
//!
//! `scripts/bench.sh` builds the binaries, starts the services and runs it.

mod rounds;

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::{mpsc, oneshot},
};

type Reply = Response<Full<Bytes>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

const REQUEST_EVENT: &str = include_str!("../../events/request-otp-http-api.json");
const VERIFY_EVENT: &str = include_str!("../../events/verify-otp-http-api.json");
const WARM_UP: usize = 50;
const ROUND_TRIP_WINDOW: usize = 200;

struct Args {
    request_bin: String,
    verify_bin: String,
    redis_port: u16,
    invocations: usize,
    cold_starts: usize,
    out: String,
    env: Vec<(String, String)>,
    zip_bytes: Vec<(String, u64)>,
    /// Also time request-otp with the breaker off, for the comparison.
    breaker_baseline: bool,
}

impl Args {
    fn parse() -> Result<Self, Error> {
        let mut args = Self {
            request_bin: "target/release/request-otp".into(),
            verify_bin: "target/release/verify-otp".into(),
            redis_port: 6379,
            invocations: 10_000,
            cold_starts: 20,
            out: "bench/results.md".into(),
            env: Vec::new(),
            zip_bytes: Vec::new(),
            breaker_baseline: true,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--request-bin" => args.request_bin = value,
                "--verify-bin" => args.verify_bin = value,
                "--redis-port" => args.redis_port = value.parse()?,
                "--invocations" => args.invocations = value.parse()?,
                "--cold-starts" => args.cold_starts = value.parse()?,
                "--out" => args.out = value,
                "--breaker-baseline" => args.breaker_baseline = value == "on",
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

fn json_reply(status: StatusCode, body: Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

/// Serves `handle` over HTTP/1.1 on a fresh loopback port until the process ends.
async fn serve<F, Fut>(handle: F) -> Result<SocketAddr, Error>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handle = handle.clone();
                    async move { Ok::<_, Infallible>(handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

// ---------------------------------------------------------------- Plivo --

/// Accepts every message at once, as a healthy Plivo would, and keeps the
/// latest code sent to each number for the verify runs.
#[derive(Default)]
struct Plivo {
    codes: Mutex<HashMap<String, String>>,
}

impl Plivo {
    async fn start(self: &Arc<Self>) -> Result<SocketAddr, Error> {
        let plivo = Arc::clone(self);
        serve(move |req: Request<Incoming>| {
            let plivo = Arc::clone(&plivo);
            async move {
                let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (Some(dst), Some(text)) = (message["dst"].as_str(), message["text"].as_str()) else {
                    return json_reply(StatusCode::BAD_REQUEST, json!({"error": "src, dst and text are required"}));
                };
                if let Some(code) = text.split(|c: char| !c.is_ascii_digit()).find(|r| r.len() >= 6) {
                    plivo.codes.lock().unwrap().insert(dst.to_owned(), code.to_owned());
                }
                json_reply(
                    StatusCode::ACCEPTED,
                    json!({"api_id": "bench", "message": "message(s) queued", "message_uuid": ["bench"]}),
                )
            }
        })
        .await
    }

    fn code_for(&self, phone: &str) -> Option<String> {
        self.codes.lock().unwrap().get(phone).cloned()
    }
}

// ---------------------------------------------------------- Runtime API --

struct Pending {
    id: String,
    event: String,
    done: oneshot::Sender<Outcome>,
}

struct Outcome {
    /// When `/next` handed the event to the function.
    handed: Instant,
    /// When the function posted its response.
    finished: Instant,
    body: String,
}

/// One Lambda execution environment's Runtime API.
struct RuntimeApi {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    inflight: Mutex<HashMap<String, (Instant, oneshot::Sender<Outcome>)>>,
    init_error: Mutex<Option<String>>,
}

impl RuntimeApi {
    async fn start() -> Result<(Arc<Self>, mpsc::UnboundedSender<Pending>, SocketAddr), Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let api = Arc::new(Self {
            queue: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
        });
        let served = Arc::clone(&api);
        let addr = serve(move |req| {
            let api = Arc::clone(&served);
            async move { api.handle(req).await }
        })
        .await?;
        Ok((api, tx, addr))
    }

    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).into_owned();
        let parts: Vec<&str> = path
            .trim_start_matches("/2018-06-01/runtime/")
            .split('/')
            .collect();
        match (method, parts.as_slice()) {
            (Method::GET, ["invocation", "next"]) => {
                let Some(pending) = self.queue.lock().await.recv().await else {
                    return json_reply(StatusCode::GONE, json!({}));
                };
                let deadline =
                    SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(10);
                self.inflight
                    .lock()
                    .unwrap()
                    .insert(pending.id.clone(), (Instant::now(), pending.done));
                Response::builder()
                    .header("Lambda-Runtime-Aws-Request-Id", &pending.id)
                    .header(
                        "Lambda-Runtime-Deadline-Ms",
                        deadline.as_millis().to_string(),
                    )
                    .header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    )
                    .header(
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-67a0c65e-1de4d666d4dd26aced652b6c;Sampled=0",
                    )
                    .body(Full::new(Bytes::from(pending.event)))
                    .unwrap()
            }
            (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
                let finished = Instant::now();
                if let Some((handed, done)) = self.inflight.lock().unwrap().remove(*id) {
                    let body = if *kind == "error" {
                        format!("{{\"runtimeError\":{body}}}")
                    } else {
                        body
                    };
                    let _ = done.send(Outcome {
                        handed,
                        finished,
                        body,
                    });
                }
                json_reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
            }
            (Method::POST, ["init", "error"]) => {
                *self.init_error.lock().unwrap() = Some(body);
                json_reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
            }
            _ => json_reply(StatusCode::NOT_FOUND, json!({"errorMessage": path})),
        }
    }
}

/// A running function process and the Runtime API it polls.
struct Instance {
    child: Child,
    api: Arc<RuntimeApi>,
    queue: mpsc::UnboundedSender<Pending>,
    next_id: AtomicU64,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    async fn spawn(bin: &str, name: &str, env: &[(String, String)]) -> Result<Self, Error> {
        let (api, queue, addr) = RuntimeApi::start().await?;
        let mut child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let kept = Arc::clone(&logs);
        tokio::spawn(async move {
            // Keep only what the report uses; drain the rest so the pipe never fills.
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("BENCH_DEBUG").is_some() {
                    eprintln!("{line}");
                }
                if line.contains("\"cold start\"") {
                    kept.lock().unwrap().push(line);
                }
            }
        });
        Ok(Self {
            child,
            api,
            queue,
            next_id: AtomicU64::new(0),
            logs,
        })
    }

    async fn invoke(&self, event: String) -> Result<Outcome, Error> {
        let id = format!("bench-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Pending { id, event, done })
            .map_err(|_| "runtime api gone")?;
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => Err(format!(
                "no response from the function (init error: {:?})",
                self.api.init_error.lock().unwrap()
            )
            .into()),
        }
    }

    /// (current, peak) resident memory in KiB, from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.id().unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

// ---------------------------------------------------------------- Redis --

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

// --------------------------------------------------------------- events --

fn event(template: &str, body: Value) -> String {
    let mut event: Value = serde_json::from_str(template).expect("sample event");
    event["body"] = json!(body.to_string());
    event.to_string()
}

fn phone(n: usize) -> String {
    format!("+447400{n:06}")
}

fn status_of(outcome: &Outcome) -> u64 {
    serde_json::from_str::<Value>(&outcome.body)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .unwrap_or(0)
}

fn expect_status(outcome: &Outcome, status: u64, what: &str) -> Result<(), Error> {
    if status_of(outcome) == status {
        Ok(())
    } else {
        Err(format!("{what}: expected {status}, got {}", outcome.body).into())
    }
}

// -------------------------------------------------------------- figures --

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse()?;
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

    // Phones by run, so that no run meets another's cooldown: the main
    // runs 0.., the breaker-off baseline 300,000.., the wire runs 500,000..,
    // the cold starts 900,000...
    let baseline = if args.breaker_baseline {
        let mut off = env.clone();
        off.push(("PUMPING_BREAKER".into(), "off".into()));
        let instance = Instance::spawn(&args.request_bin, "request-otp", &off).await?;
        let warm = warm_run(
            &instance,
            args.redis_port,
            |n| {
                Ok(event(
                    REQUEST_EVENT,
                    json!({"phoneNumber": phone(300_000 + n)}),
                ))
            },
            200,
            args.invocations,
        )
        .await?;
        Some(warm)
    } else {
        None
    };
    let (counter, proxy) = rounds::start(args.redis_port).await?;
    let request_wire = rounds::wire_run(
        &args.request_bin,
        "request-otp",
        &env,
        (&counter, proxy),
        |n| {
            Ok(event(
                REQUEST_EVENT,
                json!({"phoneNumber": phone(500_000 + n)}),
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
            let number = phone(500_000 + n);
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

    let report = render(
        &args,
        &cold,
        &phases,
        (&request, baseline.as_ref()),
        &verify,
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
    (request, baseline): (&Warm, Option<&Warm>),
    verify: &Warm,
    (request_wire, verify_wire): ((f64, f64), (f64, f64)),
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
            "| warm request-otp with the pumping breaker on, event in to response out (p50 / p99 of {}) | {} / {} | ≤ 1 ms / ≤ 3 ms | {} |",
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
            "| Redis commands per call, counted by MONITOR (request-otp / verify-otp; the breaker's run beside the per-IP check and the guess) | {:.2} / {:.2} | ≤ 3 / ≤ 3 | {} |",
            request.round_trips,
            verify.round_trips,
            verdict(request.round_trips <= 3.0 && verify.round_trips <= 3.0)
        ),
        format!(
            "| sequential Redis round trips per call, counted on the wire (request-otp / verify-otp; {:.2} / {:.2} commands) | {:.2} / {:.2} | ≤ 2 / ≤ 2 | {} |",
            request_wire.0,
            verify_wire.0,
            request_wire.1,
            verify_wire.1,
            verdict(request_wire.1 <= 2.0 && verify_wire.1 <= 2.0)
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
    if let Some(off) = baseline {
        let before = percentile(&off.latencies, 50.0);
        let change = (rq50.as_secs_f64() / before.as_secs_f64() - 1.0) * 100.0;
        rows.insert(
            2,
            format!(
                "| warm request-otp p50, pumping breaker off → on (same run, {} invocations each) | {} → {} ({change:+.1} %) | ≤ +10 % | {} |",
                off.latencies.len(),
                ms(before),
                ms(rq50),
                verdict(change <= 10.0)
            ),
        );
    }
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
    format!(
        "| figure | measured | target | met |\n|---|---|---|---|\n{}\n\nInit phases inside the cold start (medians, from the functions' `cold start` log line): {}.\n\nMachine: {cpu}, {cores} cores; x86_64 release binaries for the timings.",
        rows.join("\n"),
        if phase_text.is_empty() {
            "not reported".into()
        } else {
            phase_text.join(", ")
        },
    )
}
