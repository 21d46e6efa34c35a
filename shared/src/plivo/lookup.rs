//! Plivo's Lookup API: `GET {PLIVO_LOOKUP_URL}/v1/Number/{e164}?type=carrier`
//! with the account's Basic auth, read for `carrier.type`. One attempt,
//! bounded by its timeout and the caller's deadline: the caller fails open
//! when it does not answer, so a retry would only delay the SMS.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    config::LookupConfig,
    domain::{LineType, PhoneNumber},
    secrets::PlivoCredentials,
};

/// A lookup with less time than this left is not worth starting.
const MIN_BUDGET: Duration = Duration::from_millis(50);

pub struct LookupClient {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// What Plivo knows of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Line(LineType),
    /// Plivo answered 404: no such number.
    NoSuchNumber,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no time was left before the deadline for a lookup")]
    NoTime,
    /// Never with the URL, which holds the number.
    #[error("plivo lookup could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("plivo lookup answered HTTP {0}")]
    Status(u16),
    #[error("plivo lookup's answer is not the documented JSON")]
    Malformed(#[source] serde_json::Error),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    carrier: Option<Carrier>,
}

#[derive(Deserialize)]
struct Carrier {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

impl LookupClient {
    pub fn new(config: &LookupConfig) -> Result<Self, LookupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(LookupError::Client)?;
        Ok(Self {
            http,
            url: config.url.clone(),
            timeout: config.timeout,
        })
    }

    /// The carrier's line type for `phone`.
    pub async fn line_type(
        &self,
        credentials: &PlivoCredentials,
        phone: &PhoneNumber,
        deadline: Instant,
    ) -> Result<Lookup, LookupError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < MIN_BUDGET {
            return Err(LookupError::NoTime);
        }
        // E.164 is `+` and digits: nothing in it needs escaping in a path.
        let url = format!("{}/v1/Number/{}?type=carrier", self.url, phone.as_e164());
        let response = self
            .http
            .get(url)
            .basic_auth(&credentials.auth_id, Some(&credentials.auth_token))
            .timeout(self.timeout.min(remaining))
            .send()
            .await
            .map_err(|e| LookupError::Unreachable(e.without_url()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Lookup::NoSuchNumber);
        }
        if !status.is_success() {
            return Err(LookupError::Status(status.as_u16()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| LookupError::Unreachable(e.without_url()))?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(LookupError::Malformed)?;
        let kind = answer.carrier.and_then(|c| c.kind);
        Ok(Lookup::Line(LineType::from_carrier(kind.as_deref())))
    }
}
