//! Reading a request: the JSON body, the Idempotency-Key header and the
//! caller's address, each turned into a domain type or an `InputError`.

use lambda_http::{Body, Request, RequestExt, http::Method, request::RequestContext};
use serde::Deserialize;

use super::errors::InputError;
use crate::domain::{ClientIp, IdempotencyKey};

/// Real bodies are under 100 bytes; anything this large is not a client.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// The Idempotency-Key header, when the client sent one.
pub(super) fn idempotency_key(event: &Request) -> Result<Option<IdempotencyKey>, InputError> {
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
pub(super) fn client_ip(event: &Request) -> ClientIp {
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

pub(super) fn parse<T: for<'de> Deserialize<'de>>(
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
