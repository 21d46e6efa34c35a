//! Verifying a code: one atomic check in Redis, then a signed token.

use std::time::Duration;

use super::ip_budget;
use crate::{
    domain::{ClientIp, OtpCode, PhoneNumber},
    services::Services,
    store::{GuessDecision, GuessLimits, IpAction, StoreError},
    token::{IssuedToken, TokenError},
};

/// How long an approved code is recognised when it comes again.
const USED_CODE_MEMORY: Duration = Duration::from_secs(60);

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
    #[error("store failed")]
    Store(#[from] StoreError),
    #[error("token signing failed")]
    Token(#[from] TokenError),
}

pub async fn verify_otp(
    services: &Services,
    phone: &PhoneNumber,
    code: &OtpCode,
    client: &ClientIp,
) -> Result<IssuedToken, VerifyError> {
    let policy = &services.config.policy;
    if let Some(retry_after) = ip_budget(services, client, IpAction::Verify).await? {
        return Err(VerifyError::TooManyFromIp { retry_after });
    }
    let secrets = services.secrets.current();
    let limits = GuessLimits {
        max_attempts: policy.max_attempts,
        lockout: policy.lockout,
        failure_window: policy.failure_window,
        max_failures_per_day: policy.max_failures_per_day,
        used_ttl: USED_CODE_MEMORY,
    };
    let tag = secrets.phone_tags.tag(phone);
    // Every code key is tried, so a code stored before a rotation still works.
    let candidates = secrets.code_keys.candidates(phone, code);
    match services
        .store
        .check_guess(&tag, &candidates, limits)
        .await?
    {
        GuessDecision::Approved => Ok(services.tokens.sign(&secrets.token_keys, phone)?),
        GuessDecision::AlreadyUsed => Err(VerifyError::AlreadyUsed),
        GuessDecision::Rejected { attempts_left } => {
            Err(VerifyError::InvalidCode { attempts_left })
        }
        GuessDecision::Locked { retry_after } => Err(VerifyError::Locked { retry_after }),
    }
}
