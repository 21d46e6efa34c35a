//! Reading a request: the JSON body, the Idempotency-Key header, the
//! CAPTCHA token and the caller's address, each turned into a domain type
//! or an `InputError`.

use lambda_http::{
    Body, Request, RequestExt,
    http::{Method, header},
    request::RequestContext,
};
use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, SeqAccess, Visitor},
};

use super::errors::InputError;
use crate::domain::{CaptchaToken, ClientIp, IdempotencyKey};

/// Real bodies are under 100 bytes, or a few KiB with a CAPTCHA token;
/// anything this large is not a client.
const MAX_BODY_BYTES: usize = 8 * 1024;

/// `"captchaToken"`: absent or null means none.
pub(super) fn captcha_token(
    value: Option<&serde_json::Value>,
) -> Result<Option<CaptchaToken>, InputError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(token)) => CaptchaToken::parse(token)
            .map(Some)
            .ok_or(InputError::CaptchaToken),
        Some(_) => Err(InputError::CaptchaToken),
    }
}

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
    check_content_type(event)?;
    // Through a Value: serde would also read a struct from a JSON array.
    // `Unique` refuses duplicate keys, which serde_json would resolve to
    // the last one while a gateway or WAF rule may read the first.
    match serde_json::from_slice::<Unique>(bytes) {
        Ok(Unique(value @ serde_json::Value::Object(_))) => {
            serde_json::from_value(value).map_err(|_| InputError::Body(shape))
        }
        Err(err) if err.to_string().starts_with(DUPLICATE) => {
            Err(InputError::Body("Request body must not repeat a field."))
        }
        _ => Err(InputError::Body(shape)),
    }
}

/// A browser sends `text/plain`, form and multipart bodies cross-site
/// without a CORS preflight, so any page could spend its visitors' per-IP
/// budgets: only JSON is taken. A missing Content-Type is allowed, since
/// many mobile HTTP stacks omit it (and no browser sends a body without).
fn check_content_type(event: &Request) -> Result<(), InputError> {
    let Some(value) = event.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(InputError::MediaType)
    }
}

const DUPLICATE: &str = "duplicate field";

/// A JSON value whose objects, at any depth, have no repeated key.
struct Unique(serde_json::Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Unique(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom(DUPLICATE));
            }
        }
        Ok(serde_json::Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(json: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str::<Unique>(json)
            .map(|u| u.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(
            unique(r#"{"a":1,"a":2}"#)
                .unwrap_err()
                .starts_with(DUPLICATE)
        );
        assert!(
            unique(r#"{"a":{"b":1,"b":1}}"#)
                .unwrap_err()
                .starts_with(DUPLICATE)
        );
        assert!(
            unique(r#"[{"b":1,"b":2}]"#)
                .unwrap_err()
                .starts_with(DUPLICATE)
        );
        assert_eq!(
            unique(r#"{"a":[1,"x",null,true,1.5],"b":{"c":-1}}"#).unwrap(),
            serde_json::json!({"a":[1,"x",null,true,1.5],"b":{"c":-1}})
        );
    }
}
