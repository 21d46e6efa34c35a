//! `POST /api/otp/request`: parse, run the request use case (through
//! idempotency when the client sent a key), answer.

use lambda_http::{
    Body, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use serde::{Deserialize, Serialize};

use super::{
    DEADLINE_MARGIN, callback_base, deadline_of,
    errors::{InputError, fail},
    json_response,
    parse::{captcha_token, client_ip, idempotency_key, parse},
    raw_json_response,
};
use crate::{
    domain::{Channel, PhoneNumber},
    metrics::{self, Metric},
    services::Services,
    store::RecordedResponse,
    usecase::{
        captcha::CaptchaFailure,
        idempotency::{self, Begin},
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
    let deadline = deadline_of(&event, services.config.redis.timeout + DEADLINE_MARGIN);
    let input = parse::<RequestBody>(
        &event,
        "Request body must be a JSON object with a string field \"phoneNumber\".",
    )
    .and_then(|body| {
        let key = idempotency_key(&event)?;
        let channel = channel(body.channel.as_ref())?;
        let captcha = captcha_token(body.captcha_token.as_ref())?;
        Ok((
            PhoneNumber::parse(&body.phone_number)?,
            channel,
            key,
            captcha,
        ))
    });
    let (phone, channel, key, captcha) = match input {
        Ok(input) => input,
        Err(err) => return fail(&err, None),
    };
    let client = client_ip(&event);
    let callbacks = callback_base(services, &event);
    let send = |client| {
        let callbacks = callbacks.clone();
        let phone = phone.clone();
        let captcha = captcha.clone();
        async move {
            let request = CodeRequest {
                phone: &phone,
                channel,
                client: &client,
                callbacks: callbacks.as_ref(),
                captcha: captcha.as_ref(),
                deadline,
            };
            send_code(services, request).await
        }
    };
    let Some(key) = key else {
        return send(client).await;
    };
    match idempotency::begin(services, &key, &phone, channel, deadline).await {
        Ok(Begin::Replay(recorded)) => {
            tracing::info!(phone = %phone.masked(), status = recorded.status, "idempotent replay");
            replay(recorded)
        }
        Ok(Begin::Proceed(claimed)) => {
            let response = send(client).await;
            // Failures on our side, "try later" and "solve a CAPTCHA" are
            // not kept: a retry after them must run again, not replay them.
            let recorded = replayable(&response).then(|| record(&response));
            idempotency::finish(services, &key, claimed, recorded.as_ref()).await;
            response
        }
        Err(err) => fail(&err, Some(&phone)),
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

/// Whether a retry with the same Idempotency-Key may get this answer
/// again: not a failure on our side, nor a "try later", nor a request for
/// a CAPTCHA (the retry carries the solved one).
fn replayable(response: &Response<Body>) -> bool {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return false;
    }
    let Body::Text(text) = response.body() else {
        return true;
    };
    let error = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|body| body["error"].as_str().map(str::to_owned));
    !error.is_some_and(|code| code.starts_with("captcha_"))
}

/// What a response would be replayed as.
fn record(response: &Response<Body>) -> RecordedResponse {
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    RecordedResponse {
        status: response.status().as_u16(),
        body,
        retry_after: response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    }
}

fn replay(recorded: RecordedResponse) -> Response<Body> {
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    let mut response = raw_json_response(status, recorded.body);
    let headers = response.headers_mut();
    if let Some(secs) = recorded.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
