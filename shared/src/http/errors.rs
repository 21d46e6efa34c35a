//! The one place where outcomes and errors become HTTP: every error enum
//! of the use cases maps to a status, a stable code and a sentence here.
//! A 5xx says nothing of its cause to the client and everything to the log.

use std::time::Duration;

use lambda_http::{
    Body, Response,
    http::{HeaderValue, Method, StatusCode, header},
};
use serde::Serialize;

use super::json_response;
use crate::{
    domain::{Channel, OtpCodeError, PhoneNumber, PhoneNumberError},
    metrics::{self, Dependency},
    plivo::PlivoError,
    usecase::{
        captcha::{CaptchaFailure, CaptchaWidget},
        idempotency::IdempotencyError,
        request::RequestError,
        verify::VerifyError,
        whole_seconds,
    },
};

/// How long a client should wait when a dependency is down.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;
/// The longest wait a 429 names: past it the client is told again.
const MAX_RETRY_AFTER: u64 = 3_600;

/// Whole minutes, at least one and at most an hour.
fn coarse_seconds(wait: Duration) -> u64 {
    (whole_seconds(wait).div_ceil(60) * 60).clamp(60, MAX_RETRY_AFTER)
}

#[derive(Serialize)]
pub(super) struct ErrorBody<'a> {
    error: &'static str,
    message: &'a str,
    /// With `captcha_required` and `captcha_invalid`: the widget to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    captcha: Option<WidgetBody<'a>>,
    /// `"voice"`: a call could reach this number where an SMS cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'static str>,
}

/// `{"provider": "turnstile", "siteKey": "..."}`: enough for a client app
/// to render the widget without hard-coding it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WidgetBody<'a> {
    provider: &'static str,
    site_key: &'a str,
}

/// A client-facing failure: status, stable code, and a sentence a person
/// can act on.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// The dependency whose failure this answer reports, if any.
    failed: Option<Dependency>,
    /// The `Allow` header of a 405.
    allow: Option<&'static str>,
    captcha: Option<CaptchaWidget>,
    hint: Option<&'static str>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            failed: None,
            allow: None,
            captcha: None,
            hint: None,
        }
    }

    fn because_of(mut self, dependency: Dependency) -> Self {
        self.failed = Some(dependency);
        self
    }

    /// 503, counted against Redis.
    pub(super) fn redis_unavailable() -> Self {
        Self::unavailable().because_of(Dependency::Redis)
    }

    /// A CAPTCHA step-up: 403 with the widget to show; a provider that
    /// could not be asked is our failure, and fails closed.
    fn captcha(failure: &CaptchaFailure) -> Self {
        let (code, message, widget) = match failure {
            CaptchaFailure::Required(widget) => (
                "captcha_required",
                "Solve the CAPTCHA and send its token as captchaToken.",
                widget,
            ),
            CaptchaFailure::Invalid { widget, .. } => (
                "captcha_invalid",
                "The CAPTCHA was not accepted. Solve it again and send the new token.",
                widget,
            ),
            CaptchaFailure::Unavailable(_) => return Self::unavailable(),
        };
        let mut api = Self::new(StatusCode::FORBIDDEN, code, message);
        api.captcha = Some(widget.clone());
        api
    }

    pub(super) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Cooldown, quota and lock look the same from outside, with a wait
    /// rounded up to whole minutes: a stranger learns only that this
    /// number cannot have a code right now, not when someone asked for one.
    fn phone_busy(wait: Duration) -> Self {
        let secs = coarse_seconds(wait);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "No new code can be sent to this phone number yet. Try again in {} minute(s).",
                secs / 60
            ),
        )
        .retry_after(secs)
    }

    fn from_this_network(wait: Duration) -> Self {
        let secs = coarse_seconds(wait);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "Too many requests from your network. Try again in {} minute(s).",
                secs / 60
            ),
        )
        .retry_after(secs)
    }

    fn too_many_attempts(wait: Duration) -> Self {
        let secs = coarse_seconds(wait);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many failed attempts for this phone number. Try again in {} minute(s).",
                secs / 60
            ),
        )
        .retry_after(secs)
    }

    pub(super) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable. Try again in a few seconds.",
        )
        .retry_after(UNAVAILABLE_RETRY_AFTER)
    }

    pub(super) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such route.")
    }

    pub(super) fn method_not_allowed() -> Self {
        Self {
            allow: Some("POST"),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Only POST is allowed on this endpoint.",
            )
        }
    }

    /// For the routes that only read (the JWK Set).
    pub(super) fn get_only() -> Self {
        Self {
            allow: Some("GET"),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Only GET is allowed on this endpoint.",
            )
        }
    }

    pub(super) fn invalid_signature() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_signature",
            "The request does not carry a valid Plivo signature.",
        )
    }

    pub(super) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Try again later.",
        )
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
            captcha: self.captcha.as_ref().map(|w| WidgetBody {
                provider: w.provider.as_str(),
                site_key: &w.site_key,
            }),
            hint: self.hint,
        };
        let mut response = json_response(self.status, &body);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// What is wrong with the request itself, found before any rule runs.
#[derive(Debug, thiserror::Error)]
pub(super) enum InputError {
    #[error("method {0} not allowed")]
    Method(Method),
    #[error("body is not usable: {0}")]
    Body(&'static str),
    #[error("invalid phone number: {0}")]
    Phone(#[from] PhoneNumberError),
    #[error("invalid code format: {0}")]
    Code(#[from] OtpCodeError),
    #[error("channel is not sms or voice")]
    Channel,
    #[error("content type is not JSON")]
    MediaType,
    #[error("captchaToken is not a usable token")]
    CaptchaToken,
}

impl From<&InputError> for ApiError {
    fn from(err: &InputError) -> Self {
        match err {
            InputError::Method(_) => Self::method_not_allowed(),
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
            InputError::MediaType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with Content-Type: application/json.",
            ),
            InputError::Channel => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_channel",
                "channel must be \"sms\" or \"voice\".",
            ),
            InputError::CaptchaToken => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "captchaToken must be a string of 1 to 4096 visible ASCII characters.",
            ),
        }
    }
}

impl From<&RequestError> for ApiError {
    fn from(err: &RequestError) -> Self {
        match err {
            RequestError::ChannelNotAllowed(channel) => Self::new(
                StatusCode::FORBIDDEN,
                "channel_not_allowed",
                format!("Codes cannot be delivered by {channel} here."),
            ),
            RequestError::DestinationNotAllowed { channel, .. } => Self::new(
                StatusCode::FORBIDDEN,
                "destination_not_allowed",
                match channel {
                    Channel::Sms => "SMS cannot be sent to this phone number.",
                    Channel::Voice => "This phone number cannot be called.",
                },
            ),
            RequestError::LineTypeNotAllowed {
                channel,
                voice_hint,
                ..
            } => {
                let mut api = Self::new(
                    StatusCode::FORBIDDEN,
                    "destination_not_allowed",
                    match (channel, voice_hint) {
                        (Channel::Sms, true) => {
                            "SMS cannot be sent to this phone number. Ask for a call instead."
                        }
                        (Channel::Sms, false) => "SMS cannot be sent to this phone number.",
                        (Channel::Voice, _) => "This phone number cannot be called.",
                    },
                );
                api.hint = voice_hint.then_some("voice");
                api
            }
            RequestError::NoSuchNumber => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_phone_number",
                "This phone number does not exist. Check it and try again.",
            ),
            RequestError::DestinationBlocked { retry_after } => {
                let secs = coarse_seconds(*retry_after);
                Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "destination_temporarily_blocked",
                    format!(
                        "Codes cannot be sent to numbers like this one right now. Try again in {} minute(s).",
                        secs / 60
                    ),
                )
                .retry_after(secs)
            }
            RequestError::Captcha(failure) => Self::captcha(failure),
            RequestError::NoCallbackBase => Self::internal(),
            RequestError::Locked { retry_after }
            | RequestError::TooSoon { retry_after }
            | RequestError::QuotaExhausted { retry_after } => Self::phone_busy(*retry_after),
            RequestError::TooManyFromIp { retry_after } => Self::from_this_network(*retry_after),
            RequestError::Store(crate::store::StoreError::UnexpectedReply(_)) => Self::internal(),
            RequestError::Store(_) => Self::redis_unavailable(),
            RequestError::Delivery { channel, source } => {
                let api = match channel {
                    Channel::Sms => Self::new(
                        StatusCode::BAD_GATEWAY,
                        "sms_delivery_failed",
                        "The SMS could not be sent. Check the number or try again later.",
                    ),
                    Channel::Voice => Self::new(
                        StatusCode::BAD_GATEWAY,
                        "voice_call_failed",
                        "The call could not be placed. Check the number or try again later.",
                    ),
                };
                // A refusal of this one number is not an outage.
                match source {
                    PlivoError::Rejected { .. } => api,
                    _ => api.because_of(Dependency::Plivo),
                }
            }
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
            VerifyError::AlreadyUsed => Self::new(
                StatusCode::BAD_REQUEST,
                "code_already_used",
                "This code was already used. Request a new one if you need to verify again.",
            ),
            VerifyError::TooManyFromIp { retry_after } => Self::from_this_network(*retry_after),
            VerifyError::Captcha(failure) => Self::captcha(failure),
            VerifyError::Store(crate::store::StoreError::UnexpectedReply(_))
            | VerifyError::Token(_) => Self::internal(),
            VerifyError::Store(_) => Self::redis_unavailable(),
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
            IdempotencyError::Store(_) => Self::redis_unavailable(),
        }
    }
}

/// Logs a failure once, at the level its status deserves, and answers it.
pub(super) fn fail<E>(err: &E, phone: Option<&PhoneNumber>) -> Response<Body>
where
    E: std::error::Error + 'static,
    for<'a> &'a E: Into<ApiError>,
{
    let api: ApiError = err.into();
    if let Some(dependency) = api.failed {
        metrics::dependency_failed(dependency);
    }
    let phone = phone.map(|p| p.masked().to_string()).unwrap_or_default();
    if api.status.is_server_error() {
        tracing::error!(phone, status = api.status.as_u16(), error = %crate::error_chain(err), "request failed");
    } else {
        tracing::info!(phone, status = api.status.as_u16(), outcome = api.code, reason = %err, "request refused");
    }
    api.into_response()
}
