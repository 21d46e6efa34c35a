//! What Plivo's callbacks may do, once their signature is proven: speak
//! the live code of a call, and act on delivery receipts (lift the cooldown
//! of an SMS that never arrived, and with `VOICE_FALLBACK=auto` follow it
//! with one call). Callbacks never create codes or count sends.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    delivery::{Delivery, deliver},
    destination_refusal, epoch_ms,
};
use crate::{
    domain::{ANSWER_PATH, CallbackBase, Channel, HANGUP_PATH, OtpCode, PhoneNumber, SendId},
    locale::Locale,
    plivo::{
        PlivoError,
        signature::{self, Signature, Signed, Signer},
    },
    services::Services,
    store::{Receipt, StoreError},
};

/// How long a nonce is remembered: V2 signs neither query nor body, so a
/// captured V2 signature must not be usable again with other fields.
const NONCE_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no valid Plivo signature")]
    BadSignature,
    #[error("store failed")]
    Store(#[from] StoreError),
}

/// A callback whose signature holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentic {
    /// First time this nonce is seen: act on it.
    Fresh,
    /// The nonce was seen in the last ten minutes: change nothing.
    Replayed,
}

/// Checks the signatures (any valid one will do) and then the nonce of the
/// one that held. Nothing else is read or written before this passes.
pub async fn authenticate(
    services: &Services,
    signatures: &[Signature],
    signed: Signed<'_>,
) -> Result<Authentic, CallbackError> {
    let secrets = services.secrets.current();
    let valid = signatures.iter().find(|sig| {
        let token = match sig.signer {
            Signer::Account => Some(secrets.plivo.auth_token.as_str()),
            Signer::MainAccount => secrets.plivo.main_auth_token.as_deref(),
        };
        token.is_some_and(|token| signature::verify(sig, token, signed))
    });
    let Some(valid) = valid else {
        return Err(CallbackError::BadSignature);
    };
    let nonce = format!("{:?}:{}", valid.version, valid.nonce);
    if services
        .store
        .first_use_of_nonce(&nonce, NONCE_WINDOW)
        .await?
    {
        Ok(Authentic::Fresh)
    } else {
        Ok(Authentic::Replayed)
    }
}

/// The code a call for `send` must speak, if it is still the live one.
pub async fn code_to_speak(
    services: &Services,
    phone: &PhoneNumber,
    send: &SendId,
) -> Result<Option<OtpCode>, CallbackError> {
    let secrets = services.secrets.current();
    let tag = secrets.phone_tags.tag(phone);
    let Some(live) = services.store.live_code(&tag, send).await? else {
        return Ok(None);
    };
    Ok(secrets
        .code_keys
        .open(&live.sealed, phone, send, live.expires_ms, epoch_ms()))
}

/// A message's status as Plivo reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Queued,
    Sent,
    Delivered,
    /// Undelivered, failed or rejected: it will not arrive.
    NotDelivered,
    Other,
}

impl MessageStatus {
    pub fn parse(status: &str) -> Self {
        match status {
            "queued" => Self::Queued,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" | "failed" | "rejected" => Self::NotDelivered,
            _ => Self::Other,
        }
    }
}

/// What a delivery receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Not a final failure, or not about the live code: nothing changed.
    Noted,
    /// The live code's cooldown is lifted.
    CooldownLifted,
    /// Lifted, and the fallback call was placed (`Ok`) or failed (`Err`).
    FallbackCalled(Result<(), String>),
}

/// `locale` is the one the SMS's status URL named (the client's choice),
/// for the fallback call to speak.
pub async fn message_status(
    services: &Services,
    phone: &PhoneNumber,
    send: &SendId,
    status: MessageStatus,
    callbacks: &CallbackBase,
    locale: Option<&Locale>,
    deadline: Instant,
) -> Result<ReceiptOutcome, CallbackError> {
    if status != MessageStatus::NotDelivered {
        return Ok(ReceiptOutcome::Noted);
    }
    let policy = &services.config.policy;
    let fallback = services.config.voice.fallback
        && policy.channels.contains(&Channel::Voice)
        && destination_refusal(services, phone, Channel::Voice).is_none();
    let tag = services.secrets.current().phone_tags.tag(phone);
    match services.store.undelivered(&tag, send, fallback).await? {
        Receipt::Stale => Ok(ReceiptOutcome::Noted),
        Receipt::Lifted => Ok(ReceiptOutcome::CooldownLifted),
        Receipt::Fallback(_) => {
            let call = Delivery::Call {
                answer_url: callbacks.url(ANSWER_PATH, send, locale.map(Locale::as_str)),
                hangup_url: callbacks.url(HANGUP_PATH, send, None),
            };
            let placed = deliver(services, phone, &call, deadline).await;
            Ok(ReceiptOutcome::FallbackCalled(
                placed
                    .map(drop)
                    .map_err(|err: PlivoError| crate::error_chain(&err)),
            ))
        }
    }
}
