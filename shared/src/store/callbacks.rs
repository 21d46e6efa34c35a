//! What Plivo's callbacks need from the store: the live code a call must
//! speak, the effect of a delivery receipt, and the nonces already seen.

use std::time::Duration;

use sha2::Digest;

use super::{Store, StoreError, millis};
use crate::domain::{PhoneTag, SealedCode, SendId};

/// The sealed code of the phone's live send, if that send is `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCode {
    pub sealed: SealedCode,
    pub expires_ms: u64,
}

/// What a failed-delivery receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// The receipt is for an older send (or the code is gone): nothing.
    Stale,
    /// The cooldown of the live send is lifted.
    Lifted,
    /// Lifted, and this receipt holds the code's one fallback call.
    Fallback(LiveCode),
}

impl Store {
    /// The sealed code stored by `send`, if it is still the phone's live code.
    pub async fn live_code(
        &self,
        phone: &PhoneTag,
        send: &SendId,
    ) -> Result<Option<LiveCode>, StoreError> {
        let (id, sealed, exp): (Option<String>, Option<String>, Option<u64>) = self
            .command(
                redis::cmd("HMGET")
                    .arg(self.key(phone, "code"))
                    .arg("id")
                    .arg("sealed")
                    .arg("exp"),
            )
            .await?;
        Ok(match (id, sealed, exp) {
            (Some(id), Some(sealed), Some(expires_ms)) if id == send.as_str() => Some(LiveCode {
                sealed: SealedCode::from_stored(sealed),
                expires_ms,
            }),
            _ => None,
        })
    }

    /// Applies a receipt that says `send`'s SMS was not delivered.
    pub async fn undelivered(
        &self,
        phone: &PhoneTag,
        send: &SendId,
        claim_fallback: bool,
    ) -> Result<Receipt, StoreError> {
        let mut invocation = self.receipt.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .arg(send.as_str())
            .arg(if claim_fallback { "1" } else { "0" })
            .arg(self.not_after());
        let reply: Vec<String> = self.run(invocation).await?;
        match reply.first().map(String::as_str) {
            Some("stale") => Ok(Receipt::Stale),
            Some("lifted") => Ok(Receipt::Lifted),
            Some("fallback") => {
                let expires_ms = reply
                    .get(2)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| StoreError::UnexpectedReply("fallback expiry".into()))?;
                Ok(Receipt::Fallback(LiveCode {
                    sealed: SealedCode::from_stored(reply.get(1).cloned().unwrap_or_default()),
                    expires_ms,
                }))
            }
            Some("expired") => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Records a callback's nonce; `false` if it was seen within `window`.
    pub async fn first_use_of_nonce(
        &self,
        nonce: &str,
        window: Duration,
    ) -> Result<bool, StoreError> {
        // Hashed: the nonce is caller input of any length.
        let digest = hex::encode(sha2::Sha256::digest(nonce.as_bytes()));
        let key = format!("{}:nonce:{{{digest}}}", self.prefix);
        let set: Option<String> = self
            .command(
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(window)),
            )
            .await?;
        Ok(set.is_some())
    }
}
