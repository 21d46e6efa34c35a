//! The CAPTCHA adapter: one siteverify call, the same for Cloudflare
//! Turnstile, hCaptcha and Google reCAPTCHA (a form POST of `secret`,
//! `response` and `remoteip`, answered by JSON with `success`), bounded by
//! its own timeout and the caller's deadline. It fails closed: an answer
//! that is not a clear yes is never taken for one.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    config::{CaptchaConfig, CaptchaProvider},
    domain::CaptchaToken,
};

/// A check with less time than this left is not worth starting.
const MIN_BUDGET: Duration = Duration::from_millis(50);

/// Error codes that blame our secret, not the client's token: retrying
/// with another token would not help, so they are not `Rejected`.
const OUR_FAULT: [&str; 3] = [
    "missing-input-secret",
    "invalid-input-secret",
    "sitekey-secret-mismatch",
];

pub struct CaptchaClient {
    http: reqwest::Client,
    provider: CaptchaProvider,
    verify_url: String,
    min_score: f64,
    timeout: Duration,
}

/// What the provider said of a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed,
    /// Not solved, expired, already used, or (reCAPTCHA v3) scored too low.
    Rejected {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CaptchaError {
    #[error("the secret has no captcha_secret for CAPTCHA_PROVIDER")]
    NoSecret,
    #[error("no time was left before the deadline to ask the CAPTCHA provider")]
    NoTime,
    #[error("the CAPTCHA provider could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the CAPTCHA provider answered HTTP {0}")]
    Status(u16),
    #[error("the CAPTCHA provider's answer is not siteverify JSON")]
    Malformed(#[source] serde_json::Error),
    #[error("the CAPTCHA provider refused our secret: {0}")]
    Misconfigured(String),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// siteverify's answer, as all three providers give it.
#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
    /// reCAPTCHA v3 only: 1.0 is very likely a person.
    #[serde(default)]
    score: Option<f64>,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

impl CaptchaClient {
    pub fn new(config: &CaptchaConfig) -> Result<Self, CaptchaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(CaptchaError::Client)?;
        Ok(Self {
            http,
            provider: config.provider,
            verify_url: config.verify_url.clone(),
            min_score: config.min_score,
            timeout: config.timeout,
        })
    }

    /// Asks the provider about `token`, once. `remote_ip` is the caller's
    /// address, which the providers use as one more signal.
    pub async fn verify(
        &self,
        secret: &str,
        token: &CaptchaToken,
        remote_ip: Option<&str>,
        deadline: Instant,
    ) -> Result<Verdict, CaptchaError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < MIN_BUDGET {
            return Err(CaptchaError::NoTime);
        }
        // Built apart: the serializer must not live across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("secret", secret)
                .append_pair("response", token.as_str());
            if let Some(ip) = remote_ip {
                form.append_pair("remoteip", ip);
            }
            form.finish()
        };
        let response = self
            .http
            .post(&self.verify_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            // Covers connecting, sending and reading the whole answer.
            .timeout(self.timeout.min(remaining))
            .send()
            .await
            .map_err(|e| CaptchaError::Unreachable(e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(CaptchaError::Status(status.as_u16()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CaptchaError::Unreachable(e.without_url()))?;
        let answer: SiteVerify = serde_json::from_slice(&bytes).map_err(CaptchaError::Malformed)?;
        self.judge(answer)
    }

    fn judge(&self, answer: SiteVerify) -> Result<Verdict, CaptchaError> {
        if let Some(code) = answer
            .error_codes
            .iter()
            .find(|c| OUR_FAULT.contains(&c.as_str()))
        {
            return Err(CaptchaError::Misconfigured(code.clone()));
        }
        if !answer.success {
            let reason = if answer.error_codes.is_empty() {
                "not solved".to_owned()
            } else {
                answer.error_codes.join(",")
            };
            return Ok(Verdict::Rejected { reason });
        }
        match answer.score {
            // hCaptcha Enterprise's score measures risk (higher is worse)
            // and Turnstile sends none: only reCAPTCHA's is a humanity score.
            Some(score)
                if self.provider == CaptchaProvider::Recaptcha && score < self.min_score =>
            {
                Ok(Verdict::Rejected {
                    reason: format!("score {score} below {}", self.min_score),
                })
            }
            _ => Ok(Verdict::Passed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CaptchaOnRequest;

    fn client(provider: CaptchaProvider) -> CaptchaClient {
        CaptchaClient::new(&CaptchaConfig {
            provider,
            site_key: "site".into(),
            verify_url: "http://127.0.0.1:9/siteverify".into(),
            min_score: 0.5,
            timeout: Duration::from_secs(1),
            on_request: CaptchaOnRequest::Elevated,
            after_failed_attempts: 2,
        })
        .unwrap()
    }

    fn answer(json: &str) -> SiteVerify {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_recaptcha_v3_score_below_the_minimum_is_rejected() {
        let recaptcha = client(CaptchaProvider::Recaptcha);
        let low = recaptcha.judge(answer(r#"{"success":true,"score":0.3,"action":"otp"}"#));
        assert!(matches!(low, Ok(Verdict::Rejected { .. })), "{low:?}");
        let high = recaptcha.judge(answer(r#"{"success":true,"score":0.9}"#));
        assert_eq!(high.unwrap(), Verdict::Passed);
        // reCAPTCHA v2 answers carry no score.
        assert_eq!(
            recaptcha.judge(answer(r#"{"success":true}"#)).unwrap(),
            Verdict::Passed
        );
        // hCaptcha's score is a risk score: not compared.
        let hcaptcha = client(CaptchaProvider::Hcaptcha);
        assert_eq!(
            hcaptcha
                .judge(answer(r#"{"success":true,"score":0.9}"#))
                .unwrap(),
            Verdict::Passed
        );
    }

    #[test]
    fn a_failed_token_is_rejected_but_a_refused_secret_is_our_fault() {
        let turnstile = client(CaptchaProvider::Turnstile);
        let rejected = turnstile.judge(answer(
            r#"{"success":false,"error-codes":["timeout-or-duplicate"]}"#,
        ));
        assert_eq!(
            rejected.unwrap(),
            Verdict::Rejected {
                reason: "timeout-or-duplicate".into()
            }
        );
        let ours = turnstile.judge(answer(
            r#"{"success":false,"error-codes":["invalid-input-secret"]}"#,
        ));
        assert!(
            matches!(ours, Err(CaptchaError::Misconfigured(_))),
            "{ours:?}"
        );
    }
}
