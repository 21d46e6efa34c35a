//! What Plivo calls back, each route behind a signature check that runs
//! before anything else: `POST /api/otp/voice/answer` (what a call says),
//! `/api/otp/voice/hangup` (how it ended) and `/api/otp/status` (an SMS's
//! delivery receipt). Plivo posts forms; the send id is in the query.

use lambda_http::{
    Body, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

use tokio::time::Instant;

use super::{DEADLINE_MARGIN, callback_base, deadline_of, errors::ApiError, outer_deadline};
use crate::{
    domain::{ANSWER_PATH, CallbackBase, HANGUP_PATH, PhoneNumber, STATUS_PATH, SendId},
    locale::Locale,
    metrics::{self, Dependency, Metric},
    plivo::{
        signature::{HEADERS, Signature, Signed},
        xml,
    },
    services::Services,
    store::deadline,
    usecase::callbacks::{
        Authentic, CallbackError, MessageStatus, ReceiptOutcome, authenticate, code_to_speak,
        message_status,
    },
};

/// Plivo's form bodies are small; this bounds what is hashed and parsed.
const MAX_FORM_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Answer,
    Hangup,
    Status,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        [
            (ANSWER_PATH, Self::Answer),
            (HANGUP_PATH, Self::Hangup),
            (STATUS_PATH, Self::Status),
        ]
        .into_iter()
        .find(|(p, _)| path.trim_end_matches('/').ends_with(p))
        .map(|(_, route)| route)
    }

    fn path(self) -> &'static str {
        match self {
            Self::Answer => ANSWER_PATH,
            Self::Hangup => HANGUP_PATH,
            Self::Status => STATUS_PATH,
        }
    }
}

/// The form fields of one callback, as received.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A number as Plivo writes it (`14155552671`, without the `+`).
    fn phone(&self, name: &str) -> Option<PhoneNumber> {
        let raw = self.get(name)?.trim();
        let e164 = if raw.starts_with('+') {
            raw.to_owned()
        } else {
            format!("+{raw}")
        };
        PhoneNumber::parse(&e164).ok()
    }
}

pub async fn plivo_webhook(services: &Services, event: Request) -> Response<Body> {
    services.secrets.refresh_if_due();
    let hard = deadline_of(&event, DEADLINE_MARGIN);
    deadline::within(hard, callback(services, event, hard)).await
}

async fn callback(services: &Services, event: Request, hard: Instant) -> Response<Body> {
    let Some(route) = Route::of(event.uri().path()) else {
        return ApiError::not_found().into_response();
    };
    if event.method() != Method::POST {
        return ApiError::method_not_allowed().into_response();
    }
    let Some(base) = callback_base(services, &event) else {
        tracing::error!("no public base URL to check the signature against: set PUBLIC_BASE_URL");
        return ApiError::internal().into_response();
    };
    let form = form(&event);
    let query = event.uri().query().map(str::to_owned);
    let url = base.called(route.path(), query.as_deref());
    let signed = Signed {
        url: &url,
        params: &form.0,
    };
    match authenticate(services, &signatures(&event), signed).await {
        Ok(Authentic::Fresh) => {}
        Ok(Authentic::Replayed) => {
            tracing::warn!(route = route.path(), "callback nonce seen before: ignored");
            return match route {
                Route::Answer => no_code(services),
                _ => no_content(),
            };
        }
        Err(CallbackError::BadSignature) => {
            metrics::emit(None, &[Metric::WebhookSignatureRejected]);
            tracing::warn!(
                route = route.path(),
                "callback without a valid plivo signature"
            );
            return ApiError::invalid_signature().into_response();
        }
        Err(err @ CallbackError::Store(_)) => return unavailable(&err),
    }
    let send = query_param(query.as_deref(), "send").and_then(|v| SendId::parse(&v));
    // The client's choice, carried by the URL request-otp gave Plivo.
    let locale =
        query_param(query.as_deref(), "locale").and_then(|id| services.config.messages.known(&id));
    match route {
        Route::Answer => answer(services, &form, send, locale).await,
        Route::Hangup => hangup(&form),
        Route::Status => {
            let deadline = outer_deadline(services, hard);
            let callback = StatusCallback {
                send,
                base: &base,
                locale: locale.as_ref(),
                deadline,
            };
            status(services, &form, callback).await
        }
    }
}

async fn answer(
    services: &Services,
    form: &Form,
    send: Option<SendId>,
    locale: Option<Locale>,
) -> Response<Body> {
    let (Some(phone), Some(send)) = (form.phone("To"), send) else {
        return no_code(services);
    };
    match code_to_speak(services, &phone, &send).await {
        Ok(Some(code)) => {
            tracing::info!(phone = %phone.masked(), "call answered: speaking the code");
            let messages = &services.config.messages;
            let locale = locale.unwrap_or_else(|| messages.for_country(phone.country()));
            let (language, text) = messages.voice(&locale, &code);
            xml_response(xml::speak(language, &text, true))
        }
        Ok(None) => {
            tracing::info!(phone = %phone.masked(), "call answered: the code is no longer live");
            no_code(services)
        }
        Err(err) => unavailable(&err),
    }
}

fn hangup(form: &Form) -> Response<Body> {
    let phone = form.phone("To");
    let status = form.get("CallStatus").unwrap_or_default();
    let cause = form.get("HangupCause").unwrap_or_default();
    let metric = if status == "completed" {
        Metric::VoiceCallCompleted
    } else {
        Metric::VoiceCallNotAnswered
    };
    metrics::emit(phone.as_ref().and_then(PhoneNumber::country), &[metric]);
    tracing::info!(
        phone = %phone.as_ref().map(|p| p.masked().to_string()).unwrap_or_default(),
        call_status = status,
        hangup_cause = cause,
        duration = form.get("Duration").unwrap_or_default(),
        "call ended"
    );
    no_content()
}

/// What a status callback's URL says, besides the form.
struct StatusCallback<'a> {
    send: Option<SendId>,
    base: &'a CallbackBase,
    locale: Option<&'a Locale>,
    deadline: Instant,
}

async fn status(services: &Services, form: &Form, callback: StatusCallback<'_>) -> Response<Body> {
    let StatusCallback {
        send,
        base,
        locale,
        deadline,
    } = callback;
    let phone = form.phone("To");
    let raw_status = form.get("Status").unwrap_or_default();
    let status = MessageStatus::parse(raw_status);
    let country = phone.as_ref().and_then(PhoneNumber::country);
    match status {
        MessageStatus::Delivered => metrics::emit(country, &[Metric::SmsDelivered]),
        MessageStatus::NotDelivered => metrics::emit(country, &[Metric::SmsUndelivered]),
        _ => {}
    }
    let masked = phone
        .as_ref()
        .map(|p| p.masked().to_string())
        .unwrap_or_default();
    tracing::info!(
        phone = %masked,
        status = raw_status,
        error_code = form.get("ErrorCode").unwrap_or_default(),
        message_uuid = form.get("MessageUUID").unwrap_or_default(),
        "sms status"
    );
    let (Some(phone), Some(send)) = (phone, send) else {
        return no_content();
    };
    match message_status(services, &phone, &send, status, base, locale, deadline).await {
        Ok(ReceiptOutcome::Noted) => {}
        Ok(ReceiptOutcome::CooldownLifted) => {
            tracing::info!(phone = %masked, "sms not delivered: resend cooldown lifted");
        }
        Ok(ReceiptOutcome::FallbackCalled(Ok(()))) => {
            metrics::emit(phone.country(), &[Metric::VoiceFallbackPlaced]);
            tracing::info!(phone = %masked, "sms not delivered: cooldown lifted, fallback call placed");
        }
        Ok(ReceiptOutcome::FallbackCalled(Err(reason))) => {
            metrics::emit(phone.country(), &[Metric::VoiceCallFailed]);
            metrics::dependency_failed(Dependency::Plivo);
            tracing::error!(phone = %masked, error = %reason, "sms not delivered: the fallback call failed");
        }
        Err(err) => return unavailable(&err),
    }
    no_content()
}

/// Every signature header present, each with its nonce.
fn signatures(event: &Request) -> Vec<Signature> {
    let header = |name: &str| {
        event
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    HEADERS
        .iter()
        .filter_map(|(version, signer, name, nonce)| {
            Some(Signature {
                version: *version,
                signer: *signer,
                value: header(name)?,
                nonce: header(nonce)?,
            })
        })
        .collect()
}

fn form(event: &Request) -> Form {
    // lambda_http has already decoded a base64 body (isBase64Encoded).
    let bytes: &[u8] = match event.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > MAX_FORM_BYTES {
        return Form(Vec::new());
    }
    Form(
        form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What a call says when there is no live code for it: no digits at all.
fn no_code(services: &Services) -> Response<Body> {
    xml_response(xml::speak(
        services.config.messages.fallback_voice_language(),
        "This code is no longer valid. Please request a new one.",
        true,
    ))
}

fn unavailable(err: &CallbackError) -> Response<Body> {
    tracing::error!(error = %crate::error_chain(err), "callback failed");
    metrics::dependency_failed(Dependency::Redis);
    ApiError::unavailable().into_response()
}

fn xml_response(xml: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(xml));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
