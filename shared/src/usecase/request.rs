//! Requesting a code: check the channel and the destination, atomically
//! reserve a send and store the code's digest (and, for a call, the code
//! sealed), then deliver it by SMS or call; undo the reservation if
//! delivery finally fails.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    delivery::{Delivery, deliver},
    destination_refusal, epoch_ms, ip_budget,
};
use crate::{
    domain::{
        ANSWER_PATH, CallbackBase, Channel, ClientIp, HANGUP_PATH, OtpCode, PhoneNumber,
        STATUS_PATH, SendId,
    },
    locale::Locale,
    plivo::PlivoError,
    services::Services,
    store::{IpAction, SendDecision, SendFate, SendLimits, StoreError},
};

/// The rolling window `OTP_MAX_SENDS_PER_HOUR` counts over.
const SEND_WINDOW: Duration = Duration::from_secs(3_600);

#[derive(Debug)]
pub struct RequestOutcome {
    pub channel: Channel,
    pub expires_in: Duration,
    pub retry_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("too many requests from this source IP")]
    TooManyFromIp { retry_after: Duration },
    #[error("channel {0} is not in OTP_CHANNELS")]
    ChannelNotAllowed(Channel),
    #[error("destination not allowed for {channel}: {reason}")]
    DestinationNotAllowed {
        channel: Channel,
        reason: &'static str,
    },
    #[error("phone is locked after too many wrong codes")]
    Locked { retry_after: Duration },
    #[error("a code was sent moments ago")]
    TooSoon { retry_after: Duration },
    #[error("hourly send quota spent")]
    QuotaExhausted { retry_after: Duration },
    #[error("no public URL for Plivo to call back: set PUBLIC_BASE_URL")]
    NoCallbackBase,
    #[error("store failed")]
    Store(#[from] StoreError),
    #[error("{channel} delivery failed")]
    Delivery {
        channel: Channel,
        #[source]
        source: PlivoError,
    },
}

pub async fn request_otp(
    services: &Services,
    phone: &PhoneNumber,
    channel: Channel,
    client: &ClientIp,
    callbacks: Option<&CallbackBase>,
    locale: &Locale,
    deadline: Instant,
) -> Result<RequestOutcome, RequestError> {
    let policy = &services.config.policy;
    // First, so a flood from one address costs one small script per call.
    if let Some(retry_after) = ip_budget(services, client, IpAction::Send).await? {
        return Err(RequestError::TooManyFromIp { retry_after });
    }
    if !policy.channels.contains(&channel) {
        return Err(RequestError::ChannelNotAllowed(channel));
    }
    if let Some(reason) = destination_refusal(services, phone, channel) {
        return Err(RequestError::DestinationNotAllowed { channel, reason });
    }
    if channel == Channel::Voice && callbacks.is_none() {
        return Err(RequestError::NoCallbackBase);
    }

    let secrets = services.secrets.current();
    // A test number gets its fixed code and no SMS or call, under every
    // other rule. The secret's list wins over TEST_PHONE_NUMBERS.
    let test_code = secrets
        .test_numbers
        .get(phone.as_e164())
        .or_else(|| policy.test_numbers.get(phone.as_e164()));
    let code = test_code
        .cloned()
        .unwrap_or_else(|| OtpCode::generate(policy.code_length));
    let send = SendId::generate();
    // A call speaks the code, so it is kept, sealed; so is an SMS's when an
    // undelivered receipt may have to be followed by a call.
    let may_call = channel == Channel::Voice
        || (services.config.voice.fallback
            && callbacks.is_some()
            && policy.channels.contains(&Channel::Voice)
            && destination_refusal(services, phone, Channel::Voice).is_none());
    let expires_ms = epoch_ms() + policy.code_ttl.as_millis() as u64;
    let sealed = (may_call && test_code.is_none())
        .then(|| secrets.code_keys.seal(&code, phone, &send, expires_ms));
    let limits = SendLimits {
        code_ttl: policy.code_ttl,
        cooldown: policy.resend_cooldown,
        max_sends: policy.max_sends_per_hour,
        window: SEND_WINDOW,
        max_failures_per_day: policy.max_failures_per_day,
    };
    let digest = secrets.code_keys.digest(phone, &code);
    let tag = secrets.phone_tags.tag(phone);
    let decision = services
        .store
        .begin_send(
            &tag,
            &send,
            &digest,
            sealed.as_ref().map(|s| (s, expires_ms)),
            limits,
        )
        .await;
    let decision = match decision {
        Ok(decision) => decision,
        Err(err) => {
            // The script may have run with only its reply lost: undo it by
            // the send id chosen here, so the client's retry is not refused
            // by the cooldown of a code it never received.
            if let Err(undo) = services
                .store
                .cancel_send(&tag, &send, SendFate::NotSent)
                .await
            {
                tracing::warn!(error = %crate::error_chain(&undo), "could not undo a send whose outcome is unknown");
            }
            return Err(err.into());
        }
    };
    match decision {
        SendDecision::Stored => {}
        SendDecision::Locked { retry_after } => return Err(RequestError::Locked { retry_after }),
        SendDecision::TooSoon { retry_after } => return Err(RequestError::TooSoon { retry_after }),
        SendDecision::QuotaExhausted { retry_after } => {
            return Err(RequestError::QuotaExhausted { retry_after });
        }
    }

    let outcome = RequestOutcome {
        channel,
        expires_in: policy.code_ttl,
        retry_after: policy.resend_cooldown,
    };
    if test_code.is_some() {
        tracing::info!(phone = %phone.masked(), %channel, "test number: code stored, nothing sent");
        return Ok(outcome);
    }
    let messages = &services.config.messages;
    // The callbacks (the call's answer, the fallback call after an SMS)
    // speak the language chosen here; the number's own needs no mention.
    let url_locale = (*locale != messages.for_country(phone.country())).then(|| locale.as_str());
    let delivery = match (channel, callbacks) {
        (Channel::Voice, Some(base)) => Delivery::Call {
            answer_url: base.url(ANSWER_PATH, &send, url_locale),
            hangup_url: base.url(HANGUP_PATH, &send, None),
        },
        _ => Delivery::Sms {
            text: messages.sms(locale, &code, policy.code_ttl.as_secs()),
            status_url: callbacks.map(|base| base.url(STATUS_PATH, &send, url_locale)),
        },
    };
    match deliver(services, phone, &delivery, deadline).await {
        Ok(_) => Ok(outcome),
        Err(source) => {
            // The client is told the send failed, so the code must not stay
            // valid; it stops counting only if surely nobody received it.
            let fate = if source.maybe_sent() {
                SendFate::MaybeSent
            } else {
                SendFate::NotSent
            };
            if let Err(release) = services.store.cancel_send(&tag, &send, fate).await {
                tracing::error!(error = %crate::error_chain(&release), "could not cancel a failed send");
            }
            Err(RequestError::Delivery { channel, source })
        }
    }
}
