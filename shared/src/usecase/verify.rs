//! Verifying a code: one atomic check in Redis, then a signed token.

use std::time::Duration;

use crate::{
    domain::{ClientIp, OtpCode, PhoneNumber},
    services::Services,
    store::{GuessDecision, GuessLimits, IpAction, IpDecision, StoreError},
    token::{IssuedToken, TokenError},
};

/// The window `IP_MAX_VERIFIES_PER_HOUR` counts over.
const IP_WINDOW: Duration = Duration::from_secs(3_600);

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("too many verifications from this source IP")]
    TooManyFromIp { retry_after: Duration },
    /// Wrong, expired and never-requested look the same from outside.
    #[error("invalid or expired code ({attempts_left} attempt(s) left)")]
    InvalidCode { attempts_left: u32 },
    #[error("phone is locked after too many wrong codes")]
    Locked { retry_after: Duration },
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
    if let IpDecision::Limited { retry_after } = services
        .store
        .count_ip(
            client,
            IpAction::Verify,
            policy.ip_max_verifies_per_hour,
            IP_WINDOW,
        )
        .await?
    {
        return Err(VerifyError::TooManyFromIp { retry_after });
    }
    let secrets = services.secrets.current();
    let limits = GuessLimits {
        max_attempts: policy.max_attempts,
        lockout: policy.lockout,
        failure_window: policy.failure_window,
    };
    // Every code key is tried, so a code stored before a rotation still works.
    let candidates = secrets.code_keys.candidates(phone, code);
    match services
        .store
        .check_guess(phone, &candidates, limits)
        .await?
    {
        GuessDecision::Approved => Ok(services.tokens.sign(&secrets.token_keys, phone)?),
        GuessDecision::Rejected { attempts_left } => {
            Err(VerifyError::InvalidCode { attempts_left })
        }
        GuessDecision::Locked { retry_after } => Err(VerifyError::Locked { retry_after }),
    }
}
