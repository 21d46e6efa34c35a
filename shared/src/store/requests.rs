//! Per-request bookkeeping that is not about one phone: the per-IP
//! budgets and Idempotency-Key records, each under its own hash tag.

use std::time::Duration;

use sha2::Digest;

use super::{Store, StoreError, millis};
use crate::domain::{IdempotencyKey, PhoneTag};

/// Which per-IP budget a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpAction {
    Send,
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpDecision {
    /// Within the limit: this is the `calls`th call of the window.
    Allowed {
        calls: u32,
    },
    Limited {
        retry_after: Duration,
    },
}

/// What an Idempotency-Key already stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: go ahead, then settle it.
    Fresh,
    /// Used with another request body.
    Conflict,
    /// The first request with this key is still running.
    Pending,
    /// The first request finished: answer what it answered.
    Replay(RecordedResponse),
}

/// A response kept for replay under an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Store {
    /// Counts a call from `ip` and says whether it is within `limit` for the
    /// current hour. IP keys carry their own hash tag: one more round trip.
    /// `block` is an address, an IPv6 /64 or an IPv6 /48.
    pub async fn count_ip(
        &self,
        block: &str,
        action: IpAction,
        limit: u32,
        window: Duration,
    ) -> Result<IpDecision, StoreError> {
        let name = match action {
            IpAction::Send => "sends",
            IpAction::Verify => "verifies",
        };
        let mut invocation = self.ip.prepare_invoke();
        invocation
            .key(format!("{}:ip:{{{block}}}:{name}", self.prefix))
            .arg(limit)
            .arg(millis(window))
            .arg(self.not_after());
        let (outcome, wait_ms, calls): (String, i64, i64) = self.run(invocation).await?;
        match outcome.as_str() {
            "allowed" => Ok(IpDecision::Allowed {
                calls: calls.clamp(0, i64::from(u32::MAX)) as u32,
            }),
            "limited" => Ok(IpDecision::Limited {
                retry_after: Duration::from_millis(wait_ms.max(0) as u64),
            }),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Under the phone's hash tag: keys are scoped to the number, so one
    /// client's predictable key never collides with another client's.
    fn idempotency_key(&self, phone: &PhoneTag, operation: &str, key: &IdempotencyKey) -> String {
        // Hashed: the key is client input of up to 255 bytes.
        let mut hasher = sha2::Sha256::new();
        hasher.update(operation.as_bytes());
        hasher.update([0]);
        hasher.update(key.as_str().as_bytes());
        let digest = hasher.finalize();
        format!(
            "{}:{{{}}}:idem:{}",
            self.prefix,
            phone.as_str(),
            hex::encode(digest)
        )
    }

    /// Claims `key` for a request, or says what became of it. A claim that
    /// is never settled lapses after `pending_ttl`.
    pub async fn claim(
        &self,
        phone: &PhoneTag,
        operation: &str,
        key: &IdempotencyKey,
        fingerprint: &str,
        pending_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut invocation = self.claim.prepare_invoke();
        invocation
            .key(self.idempotency_key(phone, operation, key))
            .arg(fingerprint)
            .arg(millis(pending_ttl))
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(self.not_after());
        let reply: Vec<Option<String>> = self.run(invocation).await?;
        let field = |i: usize| reply.get(i).cloned().flatten().unwrap_or_default();
        match field(0).as_str() {
            "fresh" => Ok(Claim::Fresh),
            "conflict" => Ok(Claim::Conflict),
            "pending" => Ok(Claim::Pending),
            "expired" => Err(StoreError::Late),
            "replay" => Ok(Claim::Replay(RecordedResponse {
                status: field(1)
                    .parse()
                    .map_err(|_| StoreError::UnexpectedReply("idempotency status".into()))?,
                body: field(2),
                retry_after: field(3).parse().ok(),
            })),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Records `response` for replay during `replay_ttl`, or with `None`
    /// frees the key so that a retry runs the request again.
    pub async fn settle(
        &self,
        phone: &PhoneTag,
        operation: &str,
        key: &IdempotencyKey,
        fingerprint: &str,
        response: Option<&RecordedResponse>,
        replay_ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .key(self.idempotency_key(phone, operation, key))
            .arg(fingerprint);
        match response {
            Some(r) => invocation
                .arg(r.status)
                .arg(&r.body)
                .arg(r.retry_after.map(|s| s.to_string()).unwrap_or_default()),
            None => invocation.arg("").arg("").arg(""),
        };
        invocation.arg(millis(replay_ttl));
        match self.run::<i64>(invocation).await? {
            1 => Ok(()),
            _ => Err(StoreError::UnexpectedReply(
                "the idempotency record was gone or held another request".into(),
            )),
        }
    }
}
