//! Verifying a code: one atomic check in Redis, then a signed token. After
//! enough wrong guesses for the phone, a guess needs a solved CAPTCHA; and
//! a success counts toward its destination's pumping breaker, counted in
//! parallel with the check and taken back when the guess was not one.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    breaker,
    captcha::{self, CaptchaFailure},
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
    let destination = breaker::destination(services, guess.phone);
    let (decision, counted) = tokio::join!(check(services, &guess, false), async {
        match &destination {
            Some((destination, config)) => {
                breaker::count_verification(services, destination, config)
                    .await
                    .map(Some)
            }
            None => Ok(None),
        }
    });
    let ticket = counted.unwrap_or_else(|err| {
        // The guess is answered all the same: a lost count only weakens
        // the breaker by one verification.
        tracing::warn!(error = %crate::error_chain(&err), "could not count a verification");
        None
    });
    let result = match decision {
        Ok(GuessDecision::CaptchaRequired) => {
            match captcha::require(services, guess.captcha, guess.client, guess.deadline).await {
                Ok(()) => check(services, &guess, true).await,
                Err(failure) => Err(failure.into()),
            }
        }
        other => other,
    };
    let approved = matches!(result, Ok(GuessDecision::Approved));
    if !approved {
        breaker::take_back(services, ticket).await;
    }
    let secrets = services.secrets.current();
    match result? {
        GuessDecision::Approved => Ok(services.tokens.sign(&secrets.token_keys, guess.phone)?),
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
