//! The edge: turns a Lambda HTTP event into domain types, calls a use case,
//! and maps every outcome and error to its response here and nowhere else.
//! Handlers always answer; a 5xx says nothing of its cause to the client and
//! everything of it to the log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::{
    Body, Request, RequestExt, Response,
    http::{HeaderValue, Method, StatusCode, header},
    request::RequestContext,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{
    domain::{ClientIp, IdempotencyKey, OtpCode, OtpCodeError, PhoneNumber, PhoneNumberError},
    metrics::{self, Metric},
    services::Services,
    store::RecordedResponse,
    usecase::{
        idempotency::{self, Begin, IdempotencyError},
        request::{RequestError, request_otp as request_use_case},
        verify::{VerifyError, verify_otp as verify_use_case},
        whole_seconds,
    },
};

/// Real bodies are under 100 bytes; anything this large is not a client.
const MAX_BODY_BYTES: usize = 4 * 1024;
/// Kept back from the invocation's deadline, on top of one Redis timeout,
/// so a failed send can still be undone and answered before Lambda kills us.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
/// The budget when the event carries no Lambda context (tests, tools).
const DEFAULT_BUDGET: Duration = Duration::from_secs(10);
/// How long a client should wait when a dependency is down.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody {
    phone_number: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody {
    phone_number: String,
    otp: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PendingBody {
    status: &'static str,
    message: &'static str,
    expires_in_seconds: u64,
    retry_after_seconds: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovedBody {
    status: &'static str,
    message: &'static str,
    verification_token: String,
    expires_in_seconds: u64,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: &'a str,
}

/// A client-facing failure: status, stable code, and a sentence a person
/// can act on.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn too_many_requests(wait: Duration) -> Self {
        let secs = whole_seconds(wait);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("Too many OTP requests for this phone number. Try again in {secs} seconds."),
        )
        .retry_after(secs)
    }

    fn too_many_attempts(wait: Duration) -> Self {
        let secs = whole_seconds(wait);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("Too many failed attempts for this phone number. Try again in {secs} seconds."),
        )
        .retry_after(secs)
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable. Try again in a few seconds.",
        )
        .retry_after(UNAVAILABLE_RETRY_AFTER)
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Try again later.",
        )
    }

    fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        let mut response = json_response(self.status, &body);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// What is wrong with the request itself, found before any rule runs.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("method {0} not allowed")]
    Method(Method),
    #[error("body is not usable: {0}")]
    Body(&'static str),
    #[error("invalid phone number: {0}")]
    Phone(#[from] PhoneNumberError),
    #[error("invalid code format: {0}")]
    Code(#[from] OtpCodeError),
}

impl From<&InputError> for ApiError {
    fn from(err: &InputError) -> Self {
        match err {
            InputError::Method(_) => Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Only POST is allowed on this endpoint.",
            ),
            InputError::Body(reason) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_request", *reason)
            }
            InputError::Phone(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_phone_number",
                "phoneNumber must be an international number in E.164 format: a + then the country code and the number.",
            ),
            InputError::Code(err) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_code_format",
                format!("otp must be exactly {} digits.", err.expected),
            ),
        }
    }
}

impl From<&RequestError> for ApiError {
    fn from(err: &RequestError) -> Self {
        match err {
            RequestError::DestinationNotAllowed(_) => Self::new(
                StatusCode::FORBIDDEN,
                "destination_not_allowed",
                "SMS cannot be sent to this phone number.",
            ),
            RequestError::Locked { retry_after } => Self::too_many_attempts(*retry_after),
            RequestError::TooSoon { retry_after }
            | RequestError::QuotaExhausted { retry_after }
            | RequestError::TooManyFromIp { retry_after } => Self::too_many_requests(*retry_after),
            RequestError::Store(crate::store::StoreError::UnexpectedReply(_)) => Self::internal(),
            RequestError::Store(_) => Self::unavailable(),
            RequestError::Delivery(_) => Self::new(
                StatusCode::BAD_GATEWAY,
                "sms_delivery_failed",
                "The SMS could not be sent. Check the number or try again later.",
            ),
        }
    }
}

impl From<&VerifyError> for ApiError {
    fn from(err: &VerifyError) -> Self {
        match err {
            VerifyError::InvalidCode { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_code",
                "Invalid or expired OTP.",
            ),
            VerifyError::Locked { retry_after } => Self::too_many_attempts(*retry_after),
            VerifyError::TooManyFromIp { retry_after } => Self::too_many_requests(*retry_after),
            VerifyError::Store(crate::store::StoreError::UnexpectedReply(_))
            | VerifyError::Token(_) => Self::internal(),
            VerifyError::Store(_) => Self::unavailable(),
        }
    }
}

impl From<&IdempotencyError> for ApiError {
    fn from(err: &IdempotencyError) -> Self {
        match err {
            IdempotencyError::Reused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request body.",
            ),
            IdempotencyError::InProgress => Self::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed. Retry shortly.",
            )
            .retry_after(1),
            IdempotencyError::Store(crate::store::StoreError::UnexpectedReply(_)) => {
                Self::internal()
            }
            IdempotencyError::Store(_) => Self::unavailable(),
        }
    }
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
        Ok((PhoneNumber::parse(&body.phone_number)?, key))
    });
    let (phone, key) = match input {
        Ok(input) => input,
        Err(err) => return fail(&err, None),
    };
    let client = client_ip(&event);
    let Some(key) = key else {
        return send_code(services, &phone, &client, deadline).await;
    };
    match idempotency::begin(services, &key, &phone, deadline).await {
        Ok(Begin::Replay(recorded)) => {
            tracing::info!(phone = %phone.masked(), status = recorded.status, "idempotent replay");
            replay(recorded)
        }
        Ok(Begin::Proceed(claimed)) => {
            let response = send_code(services, &phone, &client, deadline).await;
            // Failures on our side and "try later" are not kept: a retry
            // after them must run again, not replay them.
            let status = response.status();
            let keep = !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS;
            let recorded = keep.then(|| record(&response));
            idempotency::finish(services, &key, claimed, recorded.as_ref()).await;
            response
        }
        Err(err) => fail(&err, Some(&phone)),
    }
}

async fn send_code(
    services: &Services,
    phone: &PhoneNumber,
    client: &ClientIp,
    deadline: Instant,
) -> Response<Body> {
    let result = request_use_case(services, phone, client, deadline).await;
    let outcome_metric = match &result {
        Ok(_) => Some(Metric::OtpSent),
        Err(RequestError::Delivery(_)) => Some(Metric::SmsFailed),
        Err(
            RequestError::Locked { .. }
            | RequestError::TooSoon { .. }
            | RequestError::QuotaExhausted { .. }
            | RequestError::TooManyFromIp { .. },
        ) => Some(Metric::RateLimited),
        Err(_) => None,
    };
    let counted: Vec<Metric> = [Some(Metric::OtpRequested), outcome_metric]
        .into_iter()
        .flatten()
        .collect();
    metrics::emit(phone.country(), &counted);
    match result {
        Ok(outcome) => {
            tracing::info!(phone = %phone.masked(), outcome = "sent", "otp requested");
            json_response(
                StatusCode::OK,
                &PendingBody {
                    status: "pending",
                    message: "OTP has been sent successfully.",
                    expires_in_seconds: outcome.expires_in.as_secs(),
                    retry_after_seconds: outcome.retry_after.as_secs(),
                },
            )
        }
        Err(err) => fail(&err, Some(phone)),
    }
}

/// `POST /api/otp/verify`
pub async fn verify_otp(services: &Services, event: Request) -> Response<Body> {
    let length = services.config.policy.code_length;
    let input = parse::<VerifyBody>(
        &event,
        "Request body must be a JSON object with string fields \"phoneNumber\" and \"otp\".",
    )
    .and_then(|body| {
        let phone = PhoneNumber::parse(&body.phone_number)?;
        let code = OtpCode::parse(&body.otp, length)?;
        Ok((phone, code))
    });
    let (phone, code) = match input {
        Ok(input) => input,
        Err(err) => return fail(&err, None),
    };
    let result = verify_use_case(services, &phone, &code, &client_ip(&event)).await;
    let outcome_metric = match &result {
        Ok(_) => Some(Metric::OtpVerified),
        Err(VerifyError::InvalidCode { .. }) => Some(Metric::OtpRejected),
        Err(VerifyError::Locked { .. } | VerifyError::TooManyFromIp { .. }) => {
            Some(Metric::RateLimited)
        }
        Err(_) => None,
    };
    metrics::emit(phone.country(), outcome_metric.as_slice());
    match result {
        Ok(token) => {
            tracing::info!(phone = %phone.masked(), outcome = "approved", "otp verified");
            json_response(
                StatusCode::OK,
                &ApprovedBody {
                    status: "approved",
                    message: "OTP verified successfully.",
                    verification_token: token.token,
                    expires_in_seconds: token.expires_in.as_secs(),
                },
            )
        }
        Err(err) => fail(&err, Some(&phone)),
    }
}

/// Logs a failure once, at the level its status deserves, and answers it.
fn fail<E>(err: &E, phone: Option<&PhoneNumber>) -> Response<Body>
where
    E: std::error::Error + 'static,
    for<'a> &'a E: Into<ApiError>,
{
    let api: ApiError = err.into();
    let phone = phone.map(|p| p.masked().to_string()).unwrap_or_default();
    if api.status.is_server_error() {
        tracing::error!(phone, status = api.status.as_u16(), error = %crate::error_chain(err), "request failed");
    } else {
        tracing::info!(phone, status = api.status.as_u16(), outcome = api.code, reason = %err, "request refused");
    }
    api.into_response()
}

/// The Idempotency-Key header, when the client sent one.
fn idempotency_key(event: &Request) -> Result<Option<IdempotencyKey>, InputError> {
    let Some(value) = event.headers().get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(IdempotencyKey::parse)
        .map(Some)
        .ok_or(InputError::Body(
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        ))
}

/// The caller's address as API Gateway saw it. Never a client-set header on
/// API Gateway (X-Forwarded-For there is whatever the client sent); behind
/// an ALB, the last X-Forwarded-For entry, which the ALB itself appended.
fn client_ip(event: &Request) -> ClientIp {
    let seen = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        Some(RequestContext::Alb(_)) => event
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .map(str::to_owned),
        _ => None,
    };
    // Without an address, all such calls share one budget: fail closed.
    seen.as_deref()
        .and_then(ClientIp::parse)
        .unwrap_or_else(ClientIp::unknown)
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

fn parse<T: for<'de> Deserialize<'de>>(
    event: &Request,
    shape: &'static str,
) -> Result<T, InputError> {
    if event.method() != Method::POST {
        return Err(InputError::Method(event.method().clone()));
    }
    // lambda_http has already decoded a base64 body (isBase64Encoded).
    let bytes: &[u8] = match event.body() {
        Body::Empty => return Err(InputError::Body(shape)),
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(InputError::Body(shape)),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(InputError::Body("Request body is too large."));
    }
    // Content-Type is not required: many mobile HTTP stacks omit it, and
    // the body is JSON or it is refused either way.
    // Through a Value: serde would also read a struct from a JSON array.
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value @ serde_json::Value::Object(_)) => {
            serde_json::from_value(value).map_err(|_| InputError::Body(shape))
        }
        _ => Err(InputError::Body(shape)),
    }
}

/// The point after which the Lambda would be killed, less `margin`.
fn deadline_of(event: &Request, margin: Duration) -> Instant {
    let now = Instant::now();
    let budget = match event.lambda_context_ref() {
        Some(context) => remaining_budget(context.deadline, epoch_millis()),
        None => DEFAULT_BUDGET,
    };
    now + budget.saturating_sub(margin)
}

/// Lambda sends the deadline as Unix epoch milliseconds; `cargo lambda
/// watch` sends the budget itself (600000). A value too small to be a date
/// after 2001 can only be the latter.
fn remaining_budget(deadline_ms: u64, now_ms: u64) -> Duration {
    const EPOCH_2001_MS: u64 = 1_000_000_000_000;
    if deadline_ms < EPOCH_2001_MS {
        Duration::from_millis(deadline_ms)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    }
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serializing these plain structs cannot fail.
    raw_json_response(status, serde_json::to_string(body).unwrap_or_default())
}

fn raw_json_response(status: StatusCode, json: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(json));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Responses carry tokens and per-number state: never cache them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_what_is_left_before_an_epoch_deadline() {
        let now = 1_795_539_243_000;
        assert_eq!(
            remaining_budget(now + 2_500, now),
            Duration::from_millis(2_500)
        );
        assert_eq!(remaining_budget(now - 10, now), Duration::ZERO);
    }

    #[test]
    fn a_relative_deadline_from_the_local_emulator_is_the_budget_itself() {
        assert_eq!(
            remaining_budget(600_000, 1_795_539_243_000),
            Duration::from_secs(600)
        );
    }
}
