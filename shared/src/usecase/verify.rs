//! Verifying a code: one atomic check in Redis, then a signed token.

use std::time::Duration;

use crate::{
    domain::{OtpCode, PhoneNumber},
    services::Services,
    store::{GuessDecision, GuessLimits, StoreError},
    token::{IssuedToken, TokenError},
};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
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
) -> Result<IssuedToken, VerifyError> {
    let policy = &services.config.policy;
    let secrets = services.secrets.current();
    let limits = GuessLimits {
        max_attempts: policy.max_attempts,
        lockout: policy.lockout,
        failure_window: policy.failure_window,
    };
    match services
        .store
        .check_guess(phone, &secrets.code_key.digest(phone, code), limits)
        .await?
    {
        GuessDecision::Approved => Ok(services.tokens.sign(&secrets.token_key, phone)?),
        GuessDecision::Rejected { attempts_left } => {
            Err(VerifyError::InvalidCode { attempts_left })
        }
        GuessDecision::Locked { retry_after } => Err(VerifyError::Locked { retry_after }),
    }
}
