//! Requesting a code: check the channel and the destination, atomically
//! reserve a send and store the code's digest (and, for a call, the code
//! sealed), then deliver it by SMS or call; undo the reservation if
//! delivery finally fails. Before any of that, in one parallel Redis step:
//! the per-IP budgets, the destination's pumping breaker and the number's
//! cached line type; then, when asked for, a CAPTCHA and a line-type lookup.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    IpBudget,
    breaker::{self, captcha_opens_blocks},
    captcha::{self, CaptchaFailure},
    delivery::{Delivery, deliver},
    destination_refusal, epoch_ms, ip_budget, is_named,
    screening::{self, Screening},
};
use crate::{
    config::CaptchaOnRequest,
    domain::{
        ANSWER_PATH, CallbackBase, CaptchaToken, Channel, ClientIp, HANGUP_PATH, LineType, OtpCode,
        PhoneNumber, PhoneTag, STATUS_PATH, SendId,
    },
    locale::Locale,
    plivo::PlivoError,
    services::Services,
    store::{BreakerDecision, IpAction, SendDecision, SendFate, SendLimits, StoreError},
};

/// The rolling window `OTP_MAX_SENDS_PER_HOUR` counts over.
const SEND_WINDOW: Duration = Duration::from_secs(3_600);

#[derive(Debug)]
pub struct RequestOutcome {
    pub channel: Channel,
    pub expires_in: Duration,
    pub retry_after: Duration,
}

/// One request for a code, as the edge parsed it.
pub struct CodeRequest<'a> {
    pub phone: &'a PhoneNumber,
    pub channel: Channel,
    pub client: &'a ClientIp,
    pub callbacks: Option<&'a CallbackBase>,
    pub captcha: Option<&'a CaptchaToken>,
    /// The language of the SMS or call.
    pub locale: &'a Locale,
    pub deadline: Instant,
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
    #[error("the carrier says this is a {line} line, refused for {channel}")]
    LineTypeNotAllowed {
        channel: Channel,
        line: LineType,
        /// A call could reach it instead.
        voice_hint: bool,
    },
    #[error("plivo lookup knows no such number")]
    NoSuchNumber,
    #[error("the destination's pumping breaker is open")]
    DestinationBlocked { retry_after: Duration },
    #[error(transparent)]
    Captcha(#[from] CaptchaFailure),
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

impl RequestError {
    /// Whether an SMS or call may have gone out despite the error, so the
    /// send must keep counting (for the breaker too).
    fn maybe_sent(&self) -> bool {
        matches!(self, Self::Delivery { source, .. } if source.maybe_sent())
    }
}

/// What the parallel first step found.
struct FirstStep {
    ip: IpBudget,
    breaker: Option<BreakerDecision>,
    cached_line: Option<LineType>,
}

pub async fn request_otp(
    services: &Services,
    request: CodeRequest<'_>,
) -> Result<RequestOutcome, RequestError> {
    let CodeRequest { phone, channel, .. } = request;
    let policy = &services.config.policy;
    // What needs no Redis is known first, so a refused request counts
    // toward no destination and looks up nothing.
    let refusal = if !policy.channels.contains(&channel) {
        Some(RequestError::ChannelNotAllowed(channel))
    } else if let Some(reason) = destination_refusal(services, phone, channel) {
        Some(RequestError::DestinationNotAllowed { channel, reason })
    } else if channel == Channel::Voice && request.callbacks.is_none() {
        Some(RequestError::NoCallbackBase)
    } else {
        None
    };
    let destination = refusal
        .is_none()
        .then(|| breaker::destination(services, phone))
        .flatten();
    let screens = refusal.is_none() && services.lookup.is_some() && !is_named(services, phone);
    let tag = services.secrets.current().phone_tags.tag(phone);

    // One round trip for all three: separate hash tags, sent side by side.
    let (ip, counted, cached_line) = tokio::join!(
        ip_budget(services, request.client, IpAction::Send),
        async {
            match &destination {
                Some((destination, config)) => breaker::count_send(services, destination, config)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        },
        async {
            match screens {
                true => services.store.cached_line_type(&tag).await,
                false => Ok(None),
            }
        },
    );
    let ticket = match &counted {
        Ok(Some(
            BreakerDecision::Open { ticket }
            | BreakerDecision::Tripped { ticket, .. }
            | BreakerDecision::Blocked { ticket, .. },
        )) => ticket.clone(),
        _ => None,
    };
    let result = match (ip, counted, cached_line) {
        (Ok(ip), Ok(breaker), Ok(cached_line)) => {
            let first = FirstStep {
                ip,
                breaker,
                cached_line,
            };
            decide_and_send(services, &request, &tag, refusal, first).await
        }
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => Err(err.into()),
    };
    // A send that did not happen does not count toward its destination.
    if matches!(&result, Err(err) if !err.maybe_sent()) {
        breaker::take_back(services, ticket).await;
    }
    result
}

async fn decide_and_send(
    services: &Services,
    request: &CodeRequest<'_>,
    tag: &PhoneTag,
    refusal: Option<RequestError>,
    first: FirstStep,
) -> Result<RequestOutcome, RequestError> {
    let CodeRequest {
        phone,
        channel,
        client,
        callbacks,
        deadline,
        ..
    } = *request;
    let policy = &services.config.policy;
    // The per-IP limit first, so a flooding address learns nothing else.
    if let Some(retry_after) = first.ip.wait {
        return Err(RequestError::TooManyFromIp { retry_after });
    }
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    let blocked = match first.breaker {
        Some(
            BreakerDecision::Tripped { retry_after, .. }
            | BreakerDecision::Blocked { retry_after, .. },
        ) => Some(retry_after),
        _ => None,
    };
    if let Some(retry_after) = blocked
        && !captcha_opens_blocks(services)
    {
        return Err(RequestError::DestinationBlocked { retry_after });
    }
    let wants_captcha =
        services
            .config
            .fraud
            .captcha
            .as_ref()
            .is_some_and(|c| match c.on_request {
                CaptchaOnRequest::Always => true,
                CaptchaOnRequest::Elevated => blocked.is_some() || first.ip.half_spent,
                CaptchaOnRequest::Never => false,
            });
    if wants_captcha {
        captcha::require(services, request.captcha, client, deadline).await?;
    }

    let secrets = services.secrets.current();
    let mut fresh_line = None;
    if services.lookup.is_some() && !is_named(services, phone) {
        let screening =
            screening::screen(services, phone, tag, channel, first.cached_line, deadline).await;
        match screening {
            Screening::Pass { fresh } => fresh_line = fresh,
            Screening::Refused { line, voice_hint } => {
                return Err(RequestError::LineTypeNotAllowed {
                    channel,
                    line,
                    voice_hint,
                });
            }
            Screening::NoSuchNumber => return Err(RequestError::NoSuchNumber),
        }
    }

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
    let line_cache = fresh_line.zip(
        services
            .config
            .fraud
            .lookup
            .as_ref()
            .map(|lookup| lookup.cache_ttl),
    );
    let digest = secrets.code_keys.digest(phone, &code);
    let decision = services
        .store
        .begin_send(
            tag,
            &send,
            &digest,
            sealed.as_ref().map(|s| (s, expires_ms)),
            line_cache,
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
                .cancel_send(tag, &send, SendFate::NotSent)
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
    let locale = request.locale;
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
            if let Err(release) = services.store.cancel_send(tag, &send, fate).await {
                tracing::error!(error = %crate::error_chain(&release), "could not cancel a failed send");
            }
            Err(RequestError::Delivery { channel, source })
        }
    }
}
