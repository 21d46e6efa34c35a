//! The Plivo client: SMS through the Message API and voice calls through
//! the Call API, each retried with jittered exponential backoff on what may
//! pass (429, 5xx, timeouts, connection errors) and never on what will not
//! (other 4xx), always within the caller's deadline. `signature` checks
//! what Plivo calls back; `lookup` asks the Lookup API for a line type.

pub mod lookup;
pub mod signature;
pub mod xml;

use std::time::Duration;

use rand::RngExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{config::PlivoConfig, domain::PhoneNumber, secrets::PlivoCredentials};

/// An attempt with less time than this left is not worth starting.
const MIN_ATTEMPT_BUDGET: Duration = Duration::from_millis(150);
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

pub struct PlivoClient {
    http: reqwest::Client,
    api_url: String,
    sender: String,
    voice_sender: String,
    attempt_timeout: Duration,
    max_attempts: u32,
}

/// Plivo's Message API body. `url` is where Plivo posts delivery receipts.
#[derive(Serialize)]
struct MessageRequest<'a> {
    src: &'a str,
    dst: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
}

/// Plivo's Call API body: Plivo fetches `answer_url` for what to say when
/// the callee picks up, and posts the call's end to `hangup_url`.
#[derive(Serialize)]
struct CallRequest<'a> {
    from: &'a str,
    to: &'a str,
    answer_url: &'a str,
    answer_method: &'static str,
    hangup_url: &'a str,
    hangup_method: &'static str,
}

/// A 2xx from either API: messages name their UUIDs, calls their request.
#[derive(Deserialize)]
struct Accepted {
    #[serde(default)]
    message_uuid: Vec<String>,
    #[serde(default)]
    request_uuid: Option<String>,
}

/// The two Plivo resources this client posts to.
#[derive(Debug, Clone, Copy)]
enum Resource {
    Message,
    Call,
}

#[derive(Deserialize)]
struct PlivoErrorBody {
    #[serde(default)]
    api_id: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlivoError {
    /// The credentials were refused: they may have been rotated.
    #[error("plivo refused the credentials (401)")]
    Unauthorized,
    #[error("plivo rejected the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("plivo kept failing after {attempts} attempt(s): {last}")]
    Unavailable {
        attempts: u32,
        last: String,
        /// Some attempt ended without a clear "not sent" (a timeout, a 5xx,
        /// a reply cut short): Plivo may have delivered that SMS.
        maybe_sent: bool,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl PlivoError {
    /// Whether Plivo may have delivered the message despite the error, so
    /// the send must keep counting against the limits.
    pub fn maybe_sent(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                maybe_sent: true,
                ..
            }
        )
    }
}

enum Attempt {
    Sent(String),
    Retry {
        reason: String,
        /// Plivo's Retry-After, when it gave one.
        wait: Option<Duration>,
        maybe_sent: bool,
    },
    Fail(PlivoError),
}

impl PlivoClient {
    pub fn new(config: &PlivoConfig) -> Result<Self, PlivoError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(PlivoError::Client)?;
        Ok(Self {
            http,
            api_url: config.api_url.clone(),
            sender: config.sender.clone(),
            voice_sender: config.voice_sender.clone(),
            attempt_timeout: config.attempt_timeout,
            max_attempts: config.max_attempts,
        })
    }

    /// Opens the connection (TCP and TLS) to Plivo ahead of the first SMS;
    /// the pool keeps it. Any answer will do, and failure only costs the
    /// first send its own handshake.
    pub async fn warm_up(&self) {
        let _ = self
            .http
            .head(format!("{}/", self.api_url))
            .timeout(self.attempt_timeout)
            .send()
            .await;
    }

    /// Sends `text` to `to` and returns Plivo's message UUID. With
    /// `status_url`, Plivo posts the message's delivery receipts there.
    pub async fn send_sms(
        &self,
        credentials: &PlivoCredentials,
        to: &PhoneNumber,
        text: &str,
        status_url: Option<&str>,
        deadline: Instant,
    ) -> Result<String, PlivoError> {
        let body = MessageRequest {
            src: &self.sender,
            dst: to.as_e164(),
            text,
            url: status_url,
            method: status_url.map(|_| "POST"),
        };
        self.post(Resource::Message, credentials, &body, deadline)
            .await
    }

    /// Places a call to `to` and returns Plivo's request UUID.
    pub async fn place_call(
        &self,
        credentials: &PlivoCredentials,
        to: &PhoneNumber,
        answer_url: &str,
        hangup_url: &str,
        deadline: Instant,
    ) -> Result<String, PlivoError> {
        let body = CallRequest {
            from: &self.voice_sender,
            to: to.as_e164(),
            answer_url,
            answer_method: "POST",
            hangup_url,
            hangup_method: "POST",
        };
        self.post(Resource::Call, credentials, &body, deadline)
            .await
    }

    async fn post<B: Serialize>(
        &self,
        resource: Resource,
        credentials: &PlivoCredentials,
        body: &B,
        deadline: Instant,
    ) -> Result<String, PlivoError> {
        let name = match resource {
            Resource::Message => "Message",
            Resource::Call => "Call",
        };
        let url = format!(
            "{}/v1/Account/{}/{name}/",
            self.api_url, credentials.auth_id
        );
        let mut last = String::from("no attempt fit before the deadline");
        let mut attempts = 0;
        let mut maybe_sent = false;
        while attempts < self.max_attempts {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < MIN_ATTEMPT_BUDGET {
                break;
            }
            attempts += 1;
            let timeout = self.attempt_timeout.min(remaining);
            match self.attempt(&url, credentials, body, timeout).await {
                Attempt::Sent(uuid) => {
                    tracing::info!(plivo_uuid = %uuid, resource = name, attempts, "accepted by plivo");
                    return Ok(uuid);
                }
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry {
                    reason,
                    wait,
                    maybe_sent: ambiguous,
                } => {
                    tracing::warn!(attempt = attempts, reason = %reason, "plivo attempt failed");
                    last = reason;
                    maybe_sent |= ambiguous;
                    if attempts < self.max_attempts {
                        // Plivo's own Retry-After wins; past our cap, honouring
                        // it means giving up now rather than hammering it.
                        let pause = wait.unwrap_or_else(|| backoff(attempts));
                        if pause > BACKOFF_CAP
                            || Instant::now() + pause + MIN_ATTEMPT_BUDGET > deadline
                        {
                            break;
                        }
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
        Err(PlivoError::Unavailable {
            attempts,
            last,
            maybe_sent,
        })
    }

    async fn attempt<B: Serialize>(
        &self,
        url: &str,
        credentials: &PlivoCredentials,
        body: &B,
        timeout: Duration,
    ) -> Attempt {
        let response = self
            .http
            .post(url)
            .basic_auth(&credentials.auth_id, Some(&credentials.auth_token))
            .json(body)
            .timeout(timeout)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                // A refused connection never reached Plivo; anything later may have.
                let (kind, maybe_sent) = if err.is_connect() {
                    ("connection error", false)
                } else if err.is_timeout() {
                    ("timeout", true)
                } else {
                    ("request error", true)
                };
                // The URL holds the Auth ID: keep it out of the logs.
                let err = err.without_url();
                return Attempt::Retry {
                    reason: format!("{kind}: {}", crate::error_chain(&err)),
                    wait: None,
                    maybe_sent,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match tokio::time::timeout(timeout, response.bytes()).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => {
                return Attempt::Retry {
                    reason: format!(
                        "reading the reply: {}",
                        crate::error_chain(&err.without_url())
                    ),
                    wait: None,
                    maybe_sent: true,
                };
            }
            Err(_) => {
                return Attempt::Retry {
                    reason: "timeout reading the reply".into(),
                    wait: None,
                    maybe_sent: true,
                };
            }
        };
        if status.is_success() {
            // A 2xx means Plivo took the request, even if the body is odd.
            let uuid = serde_json::from_slice::<Accepted>(&bytes)
                .ok()
                .and_then(|accepted| {
                    accepted
                        .message_uuid
                        .into_iter()
                        .next()
                        .or(accepted.request_uuid)
                })
                .unwrap_or_else(|| "unknown".into());
            return Attempt::Sent(uuid);
        }
        let detail = describe_error(status, &bytes);
        if status == StatusCode::UNAUTHORIZED {
            Attempt::Fail(PlivoError::Unauthorized)
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Retry {
                reason: format!("{}: {detail}", status.as_u16()),
                wait: retry_after,
                // A 429 is a refusal; a 5xx may come after the message was queued.
                maybe_sent: status.is_server_error(),
            }
        } else {
            Attempt::Fail(PlivoError::Rejected {
                status: status.as_u16(),
                detail,
            })
        }
    }
}

/// Exponential backoff with "equal jitter": half the step is fixed, half is
/// random, so retries from many instances spread out but never collapse to 0.
fn backoff(attempt: u32) -> Duration {
    let step = BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(BACKOFF_CAP);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..1.0))
}

/// Plivo's errors are `{"api_id", "error"}` JSON, or sometimes plain text
/// or HTML. Digit runs are masked: an error may quote the number.
fn describe_error(status: StatusCode, body: &[u8]) -> String {
    let text = match serde_json::from_slice::<PlivoErrorBody>(body) {
        Ok(PlivoErrorBody { api_id, error }) => {
            let error = match error {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::from("no error field"),
            };
            match api_id {
                Some(id) => format!("{error} (api_id {id})"),
                None => error,
            }
        }
        Err(_) => {
            let raw = String::from_utf8_lossy(body);
            let raw: String = raw.chars().take(200).collect();
            if raw.trim().is_empty() {
                status.canonical_reason().unwrap_or("no body").to_owned()
            } else {
                raw
            }
        }
    };
    mask_digit_runs(&text)
}

fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 4 {
            out.push_str("<number>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_its_step() {
        for attempt in 1..8 {
            let step = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_CAP);
            let wait = backoff(attempt);
            assert!(wait >= step / 2 && wait <= step, "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn error_descriptions_mask_phone_numbers() {
        let body = br#"{"api_id":"abc","error":"dst 14155552671 is not valid"}"#;
        assert_eq!(
            describe_error(StatusCode::BAD_REQUEST, body),
            "dst <number> is not valid (api_id abc)"
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
    }
}
