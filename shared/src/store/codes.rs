//! Codes: storing one per send (with the cooldown, quota and lock checks),
//! undoing a failed send, and checking guesses. One script each.

use std::time::Duration;

use super::{Store, StoreError, millis};
use crate::domain::{CodeDigest, LineType, PhoneTag, SealedCode, SendId};

/// What became of a send that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFate {
    /// Refused or never connected: no SMS went out.
    NotSent,
    /// Ended unclearly (timeout, 5xx): an SMS may have gone out.
    MaybeSent,
}

/// The limits a send is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub code_ttl: Duration,
    pub cooldown: Duration,
    pub max_sends: u32,
    pub window: Duration,
    /// Wrong guesses in a day after which no new code is sent.
    pub max_failures_per_day: u32,
}

/// The limits a guess is checked against.
#[derive(Debug, Clone, Copy)]
pub struct GuessLimits {
    pub max_attempts: u32,
    /// The first lock's length; each further lock within a day doubles it.
    pub lockout: Duration,
    pub failure_window: Duration,
    pub max_failures_per_day: u32,
    /// How long the code just approved is recognised if submitted again.
    pub used_ttl: Duration,
    /// Wrong guesses for the phone after which a guess needs a CAPTCHA;
    /// none when no CAPTCHA provider is configured.
    pub captcha_after: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// The code is stored; the SMS or call may go out.
    Stored,
    Locked {
        retry_after: Duration,
    },
    TooSoon {
        retry_after: Duration,
    },
    QuotaExhausted {
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuessDecision {
    Approved,
    /// The code approved moments ago, submitted again.
    AlreadyUsed,
    Rejected {
        attempts_left: u32,
    },
    /// Locked before this guess, or by it.
    Locked {
        retry_after: Duration,
    },
    /// Nothing was checked or counted: this guess needs a solved CAPTCHA.
    CaptchaRequired,
}

impl Store {
    /// Checks the day's failures, the cooldown and the quota, then records
    /// the send and stores the code's digest, replacing any earlier code
    /// (and ending a lock). `sealed` is the code for a call to speak, with
    /// its expiry (epoch ms); `line` a line type just looked up, to cache
    /// for its ttl whatever the decision.
    pub async fn begin_send(
        &self,
        phone: &PhoneTag,
        send: &SendId,
        digest: &CodeDigest,
        sealed: Option<(&SealedCode, u64)>,
        line: Option<(LineType, Duration)>,
        limits: SendLimits,
    ) -> Result<SendDecision, StoreError> {
        let mut invocation = self.request.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .key(self.key(phone, "lock"))
            .key(self.key(phone, "sends"))
            .key(self.key(phone, "fails"))
            .key(self.key(phone, "daily"))
            .key(self.key(phone, "line"))
            .arg(digest.as_str())
            .arg(send.as_str())
            .arg(millis(limits.code_ttl))
            .arg(millis(limits.cooldown))
            .arg(limits.max_sends)
            .arg(millis(limits.window))
            .arg(sealed.map(|(s, _)| s.as_str()).unwrap_or_default())
            .arg(sealed.map(|(_, exp)| exp).unwrap_or_default())
            .arg(limits.max_failures_per_day)
            .arg(line.map(|(l, _)| l.as_str()).unwrap_or_default())
            .arg(line.map(|(_, ttl)| millis(ttl)).unwrap_or_default())
            .arg(self.not_after());
        let (outcome, wait_ms): (String, i64) = self.run(invocation).await?;
        let retry_after = Duration::from_millis(wait_ms.max(0) as u64);
        match outcome.as_str() {
            "stored" => Ok(SendDecision::Stored),
            "locked" => Ok(SendDecision::Locked { retry_after }),
            "cooldown" => Ok(SendDecision::TooSoon { retry_after }),
            "quota" => Ok(SendDecision::QuotaExhausted { retry_after }),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Removes the code stored by `send` if it is still the current one; a
    /// send that surely never reached Plivo also stops counting.
    pub async fn cancel_send(
        &self,
        phone: &PhoneTag,
        send: &SendId,
        fate: SendFate,
    ) -> Result<(), StoreError> {
        let mut invocation = self.release.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .key(self.key(phone, "sends"))
            .arg(send.as_str())
            .arg(if fate == SendFate::NotSent { "1" } else { "0" });
        self.run::<i64>(invocation).await.map(drop)
    }

    /// Compares a guess with the stored digest. A wrong guess at a live code
    /// is counted; the last allowed one (per code, or per day) ends the code
    /// and locks verification. With no live code nothing is counted. Past
    /// `captcha_after` wrong guesses, nothing is checked without
    /// `captcha_passed`. `candidates` are the guess's digests under every
    /// code key: it is right if the stored digest is any of them.
    pub async fn check_guess(
        &self,
        phone: &PhoneTag,
        candidates: &[CodeDigest],
        limits: GuessLimits,
        captcha_passed: bool,
    ) -> Result<GuessDecision, StoreError> {
        // Hex digests hold no space, so a space separates them safely.
        let digests = candidates
            .iter()
            .map(CodeDigest::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let mut invocation = self.verify.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .key(self.key(phone, "fails"))
            .key(self.key(phone, "lock"))
            .key(self.key(phone, "last"))
            .key(self.key(phone, "used"))
            .key(self.key(phone, "daily"))
            .key(self.key(phone, "locks"))
            .key(self.key(phone, "approved"))
            .arg(digests)
            .arg(limits.max_attempts)
            .arg(millis(limits.lockout))
            .arg(millis(limits.failure_window))
            // Lets a resent call (the cluster client retries after a dropped
            // connection) get its first answer instead of a second decision.
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(limits.max_failures_per_day)
            .arg(millis(limits.used_ttl))
            .arg(limits.captcha_after.map_or(-1, i64::from))
            .arg(if captcha_passed { "1" } else { "0" })
            .arg(self.not_after());
        let (outcome, n): (String, i64) = self.run(invocation).await?;
        match outcome.as_str() {
            "approved" => Ok(GuessDecision::Approved),
            "used" => Ok(GuessDecision::AlreadyUsed),
            "rejected" => Ok(GuessDecision::Rejected {
                attempts_left: n.max(0) as u32,
            }),
            "locked" => Ok(GuessDecision::Locked {
                retry_after: Duration::from_millis(n.max(0) as u64),
            }),
            "captcha" => Ok(GuessDecision::CaptchaRequired),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }
}
