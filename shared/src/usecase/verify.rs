//! Verifying a code: one atomic check in Redis, then a signed token. After
//! enough wrong guesses for the phone, a guess needs a solved CAPTCHA; and
//! a success counts toward its destination's pumping breaker, once the
//! caller has its answer.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    breaker,
    captcha::{self, CaptchaFailure},
    deferred::{self, Job},
    ip_budget,
};
use crate::{
    domain::{CaptchaToken, ClientIp, OtpCode, PhoneNumber},
    services::Services,
    store::{GuessDecision, GuessLimits, IpAction, StoreError},
    token::{IssuedToken, TokenError},
};

/// How long an approved code is recognised when it comes again.
const USED_CODE_MEMORY: Duration = Duration::from_secs(60);

/// One submitted code, as the edge parsed it.
pub struct Guess<'a> {
    pub phone: &'a PhoneNumber,
    pub code: &'a OtpCode,
    pub client: &'a ClientIp,
    pub captcha: Option<&'a CaptchaToken>,
    pub deadline: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("too many verifications from this source IP")]
    TooManyFromIp { retry_after: Duration },
    /// Wrong, expired and never-requested look the same from outside.
    #[error("invalid or expired code ({attempts_left} attempt(s) left)")]
    InvalidCode { attempts_left: u32 },
    #[error("phone is locked after too many wrong codes")]
    Locked { retry_after: Duration },
    /// The phone's own code, approved moments ago, sent again: no second
    /// token, and no failure counted (a double tap or a client's retry).
    #[error("the code was already used")]
    AlreadyUsed,
    #[error(transparent)]
    Captcha(#[from] CaptchaFailure),
    #[error("store failed")]
    Store(#[from] StoreError),
    #[error("token signing failed")]
    Token(#[from] TokenError),
}

pub async fn verify_otp(services: &Services, guess: Guess<'_>) -> Result<IssuedToken, VerifyError> {
    let budget = ip_budget(services, guess.client, IpAction::Verify).await?;
    if let Some(retry_after) = budget.wait {
        return Err(VerifyError::TooManyFromIp { retry_after });
    }
    let (decision, mut signed) = tokio::join!(
        check(services, &guess, false),
        sign_while_the_guess_is_checked(services, guess.phone)
    );
    let decision = match decision? {
        GuessDecision::CaptchaRequired => {
            captcha::require(services, guess.captcha, guess.client, guess.deadline).await?;
            // Signed again: the CAPTCHA's provider may have taken seconds,
            // and the token's lifetime starts at the approval.
            let (decision, resigned) = tokio::join!(
                check(services, &guess, true),
                sign_while_the_guess_is_checked(services, guess.phone)
            );
            signed = resigned;
            decision?
        }
        other => other,
    };
    match decision {
        GuessDecision::Approved => {
            if let Some((destination, config)) = breaker::destination(services, guess.phone) {
                let job = Job::CountVerification {
                    destination,
                    window: config.window,
                };
                deferred::after_response(services, job).await;
            }
            Ok(signed?)
        }
        GuessDecision::AlreadyUsed => Err(VerifyError::AlreadyUsed),
        GuessDecision::Rejected { attempts_left } => {
            Err(VerifyError::InvalidCode { attempts_left })
        }
        GuessDecision::Locked { retry_after } => Err(VerifyError::Locked { retry_after }),
        // The store only asks again for a guess without a CAPTCHA.
        GuessDecision::CaptchaRequired => Err(VerifyError::Store(StoreError::UnexpectedReply(
            "captcha asked for a guess that carried one".into(),
        ))),
    }
}

/// Signs the token while the guess is on its way to Redis and back, so that
/// the signature (30 to 40 µs for ES256 here) costs an approved guess no
/// time where Redis runs on CPUs of its own, as ElastiCache does: with
/// Redis pinned to a core of its own, verify-otp's p50 was 8 to 12 % lower
/// than signing after the answer (on cores shared with Redis, the same).
/// The token only ever leaves through `GuessDecision::Approved`; for any
/// other answer it is dropped unread, and a wrong guess costs one
/// signature of CPU that its round trip hides.
async fn sign_while_the_guess_is_checked(
    services: &Services,
    phone: &PhoneNumber,
) -> Result<IssuedToken, TokenError> {
    // The connection's writer is a task of its own on this single-threaded
    // runtime: yielding once lets it put the guess on the wire first.
    tokio::task::yield_now().await;
    let secrets = services.secrets.current();
    services.tokens.sign(&secrets.token_keys, phone)
}

async fn check(
    services: &Services,
    guess: &Guess<'_>,
    captcha_passed: bool,
) -> Result<GuessDecision, VerifyError> {
    let policy = &services.config.policy;
    let secrets = services.secrets.current();
    let limits = GuessLimits {
        max_attempts: policy.max_attempts,
        lockout: policy.lockout,
        failure_window: policy.failure_window,
        max_failures_per_day: policy.max_failures_per_day,
        used_ttl: USED_CODE_MEMORY,
        captcha_after: services
            .config
            .fraud
            .captcha
            .as_ref()
            .map(|c| c.after_failed_attempts),
    };
    let tag = secrets.phone_tags.tag(guess.phone);
    // Every code key is tried, so a code stored before a rotation still works.
    let candidates = secrets.code_keys.candidates(guess.phone, guess.code);
    Ok(services
        .store
        .check_guess(&tag, &candidates, limits, captcha_passed)
        .await?)
}
