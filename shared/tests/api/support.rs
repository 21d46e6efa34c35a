//! `TestApp`: one isolated service instance per test (own key prefix, own
//! secret, own Plivo stand-in), driven through the same edge functions the
//! Lambda binaries call, with events built from the files in `events/`.

use std::collections::HashMap;

use lambda_http::{Body, Request, Response};
use otp::{
    config::Config,
    services::{Role, Services},
};
use serde_json::{Value, json};
use wiremock::MockServer;

pub use crate::plivo_mock::*;

pub const AUTH_ID: &str = "MAZDQ1ZJIYMDZKMTIWMZ";
pub const AUTH_TOKEN: &str = "plivo-test-auth-token-0001";
pub const SIGNING_KEY: &str = "test-signing-key-with-at-least-32-bytes!";
pub const SENDER: &str = "+14155550100";
pub const PHONE: &str = "+14155552671";

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").expect(
        "TEST_REDIS_URL is not set: run the tests with ./scripts/test.sh, which starts Redis",
    )
}

fn test_env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// `true` when the suite runs against the Redis Cluster over TLS.
pub fn cluster_mode() -> bool {
    test_env("TEST_REDIS_CLUSTER") == "true"
}

/// A direct connection for inspecting what the service wrote.
#[derive(Clone)]
pub enum Inspector {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Inspector {
    async fn connect() -> Self {
        let ca = test_env("TEST_REDIS_CA_FILE");
        let certs = (!ca.is_empty()).then(|| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(&ca).expect("read TEST_REDIS_CA_FILE")),
        });
        if cluster_mode() {
            let mut builder = redis::cluster::ClusterClientBuilder::new(vec![redis_url()]);
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            Self::Cluster(
                builder
                    .build()
                    .unwrap()
                    .get_async_connection()
                    .await
                    .expect("connect to the test cluster"),
            )
        } else {
            let client = match certs {
                Some(certs) => redis::Client::build_with_tls(redis_url(), certs).unwrap(),
                None => redis::Client::open(redis_url()).unwrap(),
            };
            Self::Single(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect to the test Redis"),
            )
        }
    }

    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        match self.clone() {
            Self::Single(mut c) => cmd.query_async(&mut c).await.unwrap(),
            Self::Cluster(mut c) => cmd.query_async(&mut c).await.unwrap(),
        }
    }
}

/// Where the leak audit's material goes, when `scripts/test.sh` asks for it.
fn audit_file(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("OTP_AUDIT_DIR").map(|dir| std::path::Path::new(&dir).join(name))
}

pub fn audit_append(name: &str, line: &str) {
    use std::io::Write;
    if let Some(path) = audit_file(name) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
}

/// Sends every log line of the suite, in the production format, to the
/// audit's file.
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(path) = audit_file("tests.log") {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            otp::telemetry::init_with_writer(std::sync::Mutex::new(file));
        }
    });
}

pub fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn aws_config() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_ok(),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set: run ./scripts/test.sh, which starts the emulator"
    );
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn secret_json(auth_id: &str, auth_token: &str) -> String {
    json!({
        "plivo_auth_id": auth_id,
        "plivo_auth_token": auth_token,
        "signing_key": SIGNING_KEY,
    })
    .to_string()
}

pub async fn create_secret(json: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&aws_config().await);
    let name = unique("otp-test");
    client
        .create_secret()
        .name(&name)
        .secret_string(json)
        .send()
        .await
        .expect("create the test secret in the emulator");
    name
}

pub async fn put_secret(name: &str, json: &str) {
    let client = aws_sdk_secretsmanager::Client::new(&aws_config().await);
    client
        .put_secret_value()
        .secret_id(name)
        .secret_string(json)
        .send()
        .await
        .expect("update the test secret");
}

pub struct TestResponse {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn from_response(response: Response<Body>) -> Self {
        Self::from(response)
    }

    pub fn from(response: Response<Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body: Value = match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
            other => panic!("expected a text body, got {other:?}"),
        };
        assert_eq!(headers["content-type"], "application/json");
        let mut audited = body.clone();
        if let Some(object) = audited.as_object_mut() {
            // The token is the designed proof; it is base64, not text.
            object.remove("verificationToken");
        }
        audit_append("responses.jsonl", &audited.to_string());
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn retry_after(&self) -> u64 {
        self.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

pub struct TestApp {
    pub services: Services,
    pub plivo: MockServer,
    pub prefix: String,
    pub secret_id: String,
    pub redis: Inspector,
}

pub struct Builder {
    env: HashMap<String, String>,
    plivo_mock: bool,
    secrets_manager: Option<String>,
}

impl Builder {
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Reads the secret from `url` instead of the emulator (a stand-in that
    /// counts the calls).
    pub fn secrets_manager_at(mut self, url: &str) -> Self {
        self.secrets_manager = Some(url.to_owned());
        self
    }

    /// Leaves Plivo without its accepting mock, for tests that mount their own.
    pub fn without_plivo_mock(mut self) -> Self {
        self.plivo_mock = false;
        self
    }

    pub async fn spawn(self) -> TestApp {
        capture_logs();
        let plivo = MockServer::start().await;
        if self.plivo_mock {
            plivo_answers(&plivo, plivo_accepted()).await;
        }
        let prefix = unique("t");
        let secret_id = match self.env.get("OTP_SECRET_ID") {
            Some(id) => id.clone(),
            None => create_secret(&secret_json(AUTH_ID, AUTH_TOKEN)).await,
        };
        let mut env: HashMap<String, String> = [
            ("OTP_SECRET_ID", secret_id.clone()),
            ("PLIVO_SENDER", SENDER.to_owned()),
            ("PLIVO_API_URL", plivo.uri()),
            ("REDIS_URL", redis_url()),
            ("REDIS_CLUSTER", test_env("TEST_REDIS_CLUSTER")),
            ("REDIS_TLS_CA_FILE", test_env("TEST_REDIS_CA_FILE")),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("OTP_BRAND", "Acme".to_owned()),
            // Tests share one source IP; those about the per-IP limits set them.
            ("IP_MAX_SENDS_PER_HOUR", "10000".to_owned()),
            ("IP_MAX_VERIFIES_PER_HOUR", "10000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.env);
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid test config");
        let aws = async {
            match &self.secrets_manager {
                Some(url) => {
                    aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .endpoint_url(url)
                        .load()
                        .await
                }
                None => aws_config().await,
            }
        };
        let services = Services::init(config, aws, Role::RequestOtp)
            .await
            .expect("services start");
        let redis = Inspector::connect().await;
        TestApp {
            services,
            plivo,
            prefix,
            secret_id,
            redis,
        }
    }
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder {
            env: HashMap::new(),
            plivo_mock: true,
            secrets_manager: None,
        }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    /// Calls request-otp with the HTTP API sample event carrying `body`.
    pub async fn request_raw(&self, body: &str) -> TestResponse {
        let event = event("request-otp-http-api.json", |e| e["body"] = json!(body));
        TestResponse::from(otp::http::request_otp(&self.services, event).await)
    }

    /// Calls request-otp with a sample event edited by `edit`.
    pub async fn request_event(&self, file: &str, edit: impl FnOnce(&mut Value)) -> TestResponse {
        TestResponse::from(otp::http::request_otp(&self.services, event(file, edit)).await)
    }

    /// Calls the function a sample event file is for (`request-otp-*` or
    /// `verify-otp-*`) with the event edited by `edit`.
    pub async fn call_event(&self, file: &str, edit: impl FnOnce(&mut Value)) -> TestResponse {
        let event = event(file, edit);
        let response = if file.starts_with("verify-otp") {
            otp::http::verify_otp(&self.services, event).await
        } else {
            otp::http::request_otp(&self.services, event).await
        };
        TestResponse::from(response)
    }

    /// request-otp for `phone` with an Idempotency-Key.
    pub async fn request_with_key(&self, phone: &str, key: &str) -> TestResponse {
        let body = json!({ "phoneNumber": phone }).to_string();
        self.request_event("request-otp-http-api.json", |e| {
            e["body"] = json!(body);
            e["headers"]["idempotency-key"] = json!(key);
        })
        .await
    }

    pub async fn request(&self, phone: &str) -> TestResponse {
        self.request_raw(&json!({ "phoneNumber": phone }).to_string())
            .await
    }

    pub async fn verify_raw(&self, body: &str) -> TestResponse {
        let event = event("verify-otp-http-api.json", |e| e["body"] = json!(body));
        TestResponse::from(otp::http::verify_otp(&self.services, event).await)
    }

    pub async fn verify(&self, phone: &str, otp: &str) -> TestResponse {
        self.verify_raw(&json!({ "phoneNumber": phone, "otp": otp }).to_string())
            .await
    }

    /// Every message POST Plivo received (not the cold start's connection
    /// warm-up), oldest first.
    async fn message_posts(&self) -> Vec<wiremock::Request> {
        self.plivo
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method == wiremock::http::Method::POST)
            .collect()
    }

    /// Every SMS text Plivo accepted or was offered, oldest first.
    pub async fn sms_texts(&self) -> Vec<(String, String)> {
        self.message_posts()
            .await
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .map(|b| {
                (
                    b["dst"].as_str().unwrap_or("").to_owned(),
                    b["text"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// The code in the latest SMS to `phone`.
    pub async fn last_code(&self, phone: &str) -> String {
        let length = self.services.config.policy.code_length.get();
        let texts = self.sms_texts().await;
        let (_, text) = texts
            .iter()
            .rev()
            .find(|(dst, _)| dst == phone)
            .unwrap_or_else(|| panic!("no SMS was sent to {phone}"));
        code_in(text, length)
    }

    pub async fn sms_count(&self) -> usize {
        self.message_posts().await.len()
    }

    pub fn key(&self, phone: &str, name: &str) -> String {
        format!("{}:{{{}}}:{name}", self.prefix, tag(phone).as_str())
    }

    /// Every key the service keeps for `phone`, with its value as text.
    pub async fn redis_dump(&self, phone: &str) -> Vec<String> {
        let mut out = Vec::new();
        for name in [
            "code", "fails", "lock", "sends", "last", "used", "daily", "locks", "approved", "line",
        ] {
            let key = self.key(phone, name);
            let kind: String = self.redis.query(redis::cmd("TYPE").arg(&key)).await;
            let value: Vec<String> = match kind.as_str() {
                "none" => continue,
                "string" => vec![self.redis.query(redis::cmd("GET").arg(&key)).await],
                "hash" => self.redis.query(redis::cmd("HGETALL").arg(&key)).await,
                "zset" => {
                    self.redis
                        .query(redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1))
                        .await
                }
                other => panic!("unexpected type {other} at {key}"),
            };
            out.push(format!("{key} = {}", value.join(" ")));
        }
        out
    }

    /// Milliseconds to live of one of this test's keys for `phone`.
    pub async fn pttl(&self, phone: &str, name: &str) -> i64 {
        self.redis
            .query(redis::cmd("PTTL").arg(self.key(phone, name)))
            .await
    }

    /// Makes the pending code for `phone` expire now, as time would.
    pub async fn expire_code(&self, phone: &str) {
        let _: i64 = self
            .redis
            .query(redis::cmd("DEL").arg(self.key(phone, "code")))
            .await;
    }
}

/// Polls `probe` every 50 ms until it holds, for at most `limit`.
pub async fn wait_until(what: &str, limit: std::time::Duration, mut probe: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !probe() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The first run of exactly `length` digits in an SMS text.
pub fn code_in(text: &str, length: usize) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == length)
        .unwrap_or_else(|| panic!("no {length}-digit code in {text:?}"))
        .to_owned()
}

/// A sample event from `events/`, edited by `edit`, as the runtime would
/// hand it to the function.
pub fn event(file: &str, edit: impl FnOnce(&mut Value)) -> Request {
    let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut value: Value = serde_json::from_str(&text).unwrap();
    edit(&mut value);
    lambda_http::request::from_str(&value.to_string()).expect("a valid API Gateway event")
}

/// What the service names `phone` by in Redis, under the test secret.
pub fn tag(phone: &str) -> otp::domain::PhoneTag {
    otp::domain::PhoneTagKey::derive(SIGNING_KEY.as_bytes())
        .tag(&otp::domain::PhoneNumber::parse(phone).unwrap())
}

/// A code for `phone` that is not `right`.
pub fn wrong(right: &str) -> String {
    right
        .bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}
