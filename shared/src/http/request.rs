//! `POST /api/otp/request`: parse, run the request use case (through
//! idempotency when the client sent a key), answer.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    DEADLINE_MARGIN, callback_base, deadline_of,
    errors::{InputError, fail},
    idempotent::once,
    json_response, outer_deadline,
    parse::{captcha_token, client_ip, idempotency_key, parse},
};
use crate::{
    domain::{Channel, PhoneNumber},
    metrics::{self, Metric},
    services::Services,
    store::deadline,
    usecase::{
        captcha::CaptchaFailure,
        idempotency::Operation,
        request::{CodeRequest, RequestError, request_otp as request_use_case},
    },
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody {
    phone_number: String,
    /// Any JSON value, so that a wrong one is `invalid_channel`, not a
    /// malformed body.
    #[serde(default)]
    channel: Option<serde_json::Value>,
    /// BCP 47 (`es`, `pt-BR`); one the service lacks falls back, never an
    /// error. A value that is not a string is one.
    #[serde(default)]
    locale: Option<serde_json::Value>,
    /// A solved CAPTCHA, when a 403 `captcha_required` asked for one.
    #[serde(default)]
    captcha_token: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PendingBody {
    status: &'static str,
    message: &'static str,
    expires_in_seconds: u64,
    retry_after_seconds: u64,
    channel: &'static str,
}

/// `POST /api/otp/request`
pub async fn request_otp(services: &Services, event: Request) -> Response<Body> {
    services.secrets.refresh_if_due();
    let hard = deadline_of(&event, DEADLINE_MARGIN);
    deadline::within(hard, request_within(services, event, hard)).await
}

async fn request_within(services: &Services, event: Request, hard: Instant) -> Response<Body> {
    // Plivo gets less time than Redis, so a failed send can still be undone.
    let deadline = outer_deadline(services, hard);
    let input = parse::<RequestBody>(
        &event,
        "Request body must be a JSON object with a string field \"phoneNumber\".",
    )
    .and_then(|body| {
        let key = idempotency_key(&event)?;
        let channel = channel(body.channel.as_ref())?;
        let requested = requested_locale(body.locale)?;
        let captcha = captcha_token(body.captcha_token.as_ref())?;
        let phone = PhoneNumber::parse(&body.phone_number)?;
        Ok((phone, channel, key, requested, captcha))
    });
    let (phone, channel, key, requested, captcha) = match input {
        Ok(input) => input,
        Err(err) => return fail(&err, None),
    };
    let locale = services
        .config
        .messages
        .resolve(requested.as_deref(), phone.country());
    let client = client_ip(&event);
    let callbacks = callback_base(services, &event);
    let send = |client| {
        let callbacks = callbacks.clone();
        let phone = phone.clone();
        let locale = locale.clone();
        let captcha = captcha.clone();
        async move {
            let request = CodeRequest {
                phone: &phone,
                channel,
                client: &client,
                callbacks: callbacks.as_ref(),
                captcha: captcha.as_ref(),
                locale: &locale,
                deadline,
            };
            send_code(services, request).await
        }
    };
    let Some(key) = key else {
        return send(client).await;
    };
    once(
        services,
        &key,
        &phone,
        Operation::Request(channel),
        deadline,
        || send(client),
    )
    .await
}

/// `"locale"`: absent (or null) means the number's country decides.
fn requested_locale(value: Option<serde_json::Value>) -> Result<Option<String>, InputError> {
    match value {
        None => Ok(None),
        Some(serde_json::Value::String(tag)) => Ok(Some(tag)),
        Some(_) => Err(InputError::Body(
            "locale must be a string such as \"es\" or \"pt-BR\".",
        )),
    }
}

/// `"channel"`: absent means SMS.
fn channel(value: Option<&serde_json::Value>) -> Result<Channel, InputError> {
    match value {
        None => Ok(Channel::Sms),
        Some(serde_json::Value::String(name)) => Channel::parse(name).ok_or(InputError::Channel),
        Some(_) => Err(InputError::Channel),
    }
}

async fn send_code(services: &Services, request: CodeRequest<'_>) -> Response<Body> {
    let phone = request.phone;
    let result = request_use_case(services, request).await;
    let outcome_metric = match &result {
        Ok(outcome) => Some(match outcome.channel {
            Channel::Sms => Metric::OtpSent,
            Channel::Voice => Metric::VoiceCallPlaced,
        }),
        Err(RequestError::Delivery {
            channel: Channel::Sms,
            ..
        }) => Some(Metric::SmsFailed),
        Err(RequestError::Delivery {
            channel: Channel::Voice,
            ..
        }) => Some(Metric::VoiceCallFailed),
        Err(
            RequestError::Locked { .. }
            | RequestError::TooSoon { .. }
            | RequestError::QuotaExhausted { .. }
            | RequestError::TooManyFromIp { .. }
            | RequestError::DestinationBlocked { .. },
        ) => Some(Metric::RateLimited),
        Err(RequestError::Captcha(CaptchaFailure::Required(_))) => Some(Metric::CaptchaRequired),
        Err(RequestError::Captcha(CaptchaFailure::Invalid { .. })) => Some(Metric::CaptchaRejected),
        Err(_) => None,
    };
    let counted: Vec<Metric> = [Some(Metric::OtpRequested), outcome_metric]
        .into_iter()
        .flatten()
        .collect();
    metrics::emit(phone.country(), &counted);
    match result {
        Ok(outcome) => {
            tracing::info!(phone = %phone.masked(), channel = %outcome.channel, outcome = "sent", "otp requested");
            json_response(
                StatusCode::OK,
                &PendingBody {
                    status: "pending",
                    message: match outcome.channel {
                        Channel::Sms => "OTP has been sent successfully.",
                        Channel::Voice => "A call is on its way with the OTP.",
                    },
                    expires_in_seconds: outcome.expires_in.as_secs(),
                    retry_after_seconds: outcome.retry_after.as_secs(),
                    channel: outcome.channel.as_str(),
                },
            )
        }
        Err(err) => fail(&err, Some(phone)),
    }
}
