//! Idempotency-Key on request-otp and verify-otp: the first request with a
//! key runs; a retry with the same key and body gets the same answer (and
//! sends no second SMS, or replays the token whose reply was lost); the
//! same key with another body is refused. Answers that failed on our side
//! (5xx) are not kept, so their retries run again.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    domain::{Channel, IdempotencyKey, OtpCode, PhoneNumber, PhoneTag},
    services::Services,
    store::{Claim, RecordedResponse, StoreError},
};

/// How often a concurrent duplicate looks again for the first one's answer.
const POLL: Duration = Duration::from_millis(50);
/// How long a claim outlives its request's deadline if never settled (the
/// function crashed or timed out): then the key is free again.
const PENDING_SLACK: Duration = Duration::from_secs(2);
/// The longest a duplicate waits for it.
const MAX_WAIT: Duration = Duration::from_secs(5);

pub enum Begin {
    /// Run the request, then `finish` with this claim.
    Proceed(Claimed),
    Replay(RecordedResponse),
}

/// A key this request holds. It remembers the fingerprint it was claimed
/// with, so settling matches even if the secret was reloaded meanwhile.
pub struct Claimed {
    tag: PhoneTag,
    operation: &'static str,
    fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("the Idempotency-Key was used with a different request")]
    Reused,
    #[error("the first request with this Idempotency-Key is still running")]
    InProgress,
    #[error("store failed")]
    Store(#[from] StoreError),
}

/// Identifies the request a key was first used for, without storing the
/// phone number itself.
/// The call a key is used for; a key names one call of one kind.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    Request(Channel),
    /// The code is part of the request: a retry with another code is
    /// another request. It is only ever kept as a keyed hash.
    Verify(&'a OtpCode),
}

impl Operation<'_> {
    fn name(self) -> &'static str {
        match self {
            Self::Request(_) => "request",
            Self::Verify(_) => "verify",
        }
    }
}

fn fingerprint(services: &Services, phone: &PhoneNumber, operation: Operation<'_>) -> String {
    let secrets = services.secrets.current();
    match operation {
        Operation::Request(channel) => secrets
            .code_keys
            .label("idempotency", &format!("{}|{channel}", phone.as_e164())),
        Operation::Verify(code) => secrets.code_keys.label(
            "idempotency-verify",
            &format!("{}|{}", phone.as_e164(), code.expose()),
        ),
    }
}

pub async fn begin(
    services: &Services,
    key: &IdempotencyKey,
    phone: &PhoneNumber,
    operation: Operation<'_>,
    deadline: Instant,
) -> Result<Begin, IdempotencyError> {
    let fingerprint = fingerprint(services, phone, operation);
    let name = operation.name();
    let tag = services.secrets.current().phone_tags.tag(phone);
    let pending_ttl = deadline.saturating_duration_since(Instant::now()) + PENDING_SLACK;
    let give_up = deadline.min(Instant::now() + MAX_WAIT);
    loop {
        match services
            .store
            .claim(&tag, name, key, &fingerprint, pending_ttl)
            .await?
        {
            Claim::Fresh => {
                return Ok(Begin::Proceed(Claimed {
                    tag,
                    operation: name,
                    fingerprint,
                }));
            }
            Claim::Replay(response) => return Ok(Begin::Replay(response)),
            Claim::Conflict => return Err(IdempotencyError::Reused),
            Claim::Pending if Instant::now() + POLL < give_up => tokio::time::sleep(POLL).await,
            Claim::Pending => return Err(IdempotencyError::InProgress),
        }
    }
}

/// Keeps `response` for replay for the code's lifetime, or frees the key
/// when it is `None`.
pub async fn finish(
    services: &Services,
    key: &IdempotencyKey,
    claimed: Claimed,
    response: Option<&RecordedResponse>,
) {
    let replay_ttl = services.config.policy.code_ttl;
    let settled = services
        .store
        .settle(
            &claimed.tag,
            claimed.operation,
            key,
            &claimed.fingerprint,
            response,
            replay_ttl,
        )
        .await;
    if let Err(err) = settled {
        // The claim then lapses with its request's deadline.
        tracing::error!(error = %crate::error_chain(&err), "could not record the idempotent response");
    }
}
