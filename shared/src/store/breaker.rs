//! The pumping breaker's counters: per destination (a country and a number
//! range, under its own hash tag), the sends and successful verifications
//! of a rolling window and the end of a block. One script, `breaker.lua`,
//! counts and decides in one step, so a destination trips exactly once
//! however many instances send to it at the same moment.

use std::time::Duration;

use super::{Store, StoreError, millis};
use crate::domain::Destination;

/// Buckets per window: the window rolls forward one sixtieth at a time.
const BUCKETS: u64 = 60;

/// When a destination trips, and what then.
#[derive(Debug, Clone, Copy)]
pub struct BreakerLimits {
    pub window: Duration,
    pub min_sends: u32,
    pub min_conversion: f64,
    pub block: Duration,
    /// Count a send made while blocked: a CAPTCHA may still let it through.
    pub count_when_blocked: bool,
}

/// One count the breaker holds, to be taken back if what it counted did
/// not happen after all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerTicket {
    key: String,
    field: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerDecision {
    /// Sends may go there; this one is counted.
    Open { ticket: Option<BreakerTicket> },
    /// This send tripped the breaker: the destination had `sends` in the
    /// window and only `verified` verifications.
    Tripped {
        sends: u32,
        verified: u32,
        retry_after: Duration,
        ticket: Option<BreakerTicket>,
    },
    /// Blocked since an earlier send tripped it.
    Blocked {
        retry_after: Duration,
        ticket: Option<BreakerTicket>,
    },
}

impl Store {
    fn destination_key(&self, destination: &Destination) -> String {
        format!("{}:dest:{{{destination}}}", self.prefix)
    }

    /// Counts a send to `destination` and says whether sends may go there.
    pub async fn count_send(
        &self,
        destination: &Destination,
        limits: BreakerLimits,
    ) -> Result<BreakerDecision, StoreError> {
        let key = self.destination_key(destination);
        let mut invocation = self.breaker.prepare_invoke();
        invocation
            .key(&key)
            .arg("send")
            .arg("")
            .arg(bucket_ms(limits.window))
            .arg(BUCKETS)
            .arg(limits.min_sends)
            .arg(limits.min_conversion)
            .arg(millis(limits.block))
            .arg(if limits.count_when_blocked { "1" } else { "0" })
            .arg(self.not_after());
        let (outcome, wait_ms, field, sends, verified): (String, i64, String, i64, i64) =
            self.run(invocation).await?;
        let ticket = (!field.is_empty()).then(|| BreakerTicket {
            key: key.clone(),
            field,
        });
        let retry_after = Duration::from_millis(wait_ms.max(0) as u64);
        match outcome.as_str() {
            "open" => Ok(BreakerDecision::Open { ticket }),
            "tripped" => Ok(BreakerDecision::Tripped {
                sends: sends.max(0) as u32,
                verified: verified.max(0) as u32,
                retry_after,
                ticket,
            }),
            "blocked" => Ok(BreakerDecision::Blocked {
                retry_after,
                ticket,
            }),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Counts a successful verification for `destination`.
    pub async fn count_verification(
        &self,
        destination: &Destination,
        window: Duration,
    ) -> Result<(), StoreError> {
        let key = self.destination_key(destination);
        let mut invocation = self.breaker.prepare_invoke();
        invocation
            .key(&key)
            .arg("verify")
            .arg("")
            .arg(bucket_ms(window))
            .arg(BUCKETS)
            .arg(0)
            .arg(0)
            .arg(0)
            .arg("0")
            .arg(self.not_after());
        let (outcome, ..): (String, i64, String, i64, i64) = self.run(invocation).await?;
        match outcome.as_str() {
            "counted" => Ok(()),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Takes back what `ticket` counted (never below zero).
    pub async fn uncount(&self, ticket: &BreakerTicket) -> Result<(), StoreError> {
        let mut invocation = self.breaker.prepare_invoke();
        invocation
            .key(&ticket.key)
            .arg("uncount")
            .arg(&ticket.field)
            .arg(self.not_after());
        let (outcome, ..): (String, i64, String, i64, i64) = self.run(invocation).await?;
        match outcome.as_str() {
            "uncounted" => Ok(()),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }
}

/// The window in sixtieths, never under a second.
fn bucket_ms(window: Duration) -> u64 {
    (millis(window) / BUCKETS).max(1_000)
}
