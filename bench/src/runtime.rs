//! A Lambda Runtime API of our own (`/next`, `/response`, `/error`,
//! `/init/error`, the same HTTP protocol Lambda speaks) and the function
//! processes that poll it: one execution environment each.

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
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::{Child, Command},
    sync::{mpsc, oneshot},
};

use crate::Error;

pub type Reply = Response<Full<Bytes>>;

pub fn json_reply(status: StatusCode, body: Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

/// Serves `handle` over HTTP/1.1 on a fresh loopback port until the process ends.
pub async fn serve<F, Fut>(handle: F) -> Result<SocketAddr, Error>
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

pub struct Pending {
    id: String,
    event: String,
    done: oneshot::Sender<Outcome>,
}

pub struct Outcome {
    /// When `/next` handed the event to the function.
    pub handed: Instant,
    /// When the function posted its response.
    pub finished: Instant,
    pub body: String,
}

/// One Lambda execution environment's Runtime API.
pub struct RuntimeApi {
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
pub struct Instance {
    pub child: Child,
    api: Arc<RuntimeApi>,
    queue: mpsc::UnboundedSender<Pending>,
    next_id: AtomicU64,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    pub async fn spawn(bin: &str, name: &str, env: &[(String, String)]) -> Result<Self, Error> {
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

    pub async fn invoke(&self, event: String) -> Result<Outcome, Error> {
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
    pub fn memory_kib(&self) -> (u64, u64) {
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
