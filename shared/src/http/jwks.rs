//! `GET /.well-known/jwks.json`: the public keys that verify tokens, as a
//! JWK Set (`{"keys":[]}` with HS256). Served by verify-otp, which owns the
//! token keys, from the secret already in memory: no Secrets Manager call
//! per request, and what it serves follows the secret's timed refresh.

use lambda_http::{
    Body, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

use super::{errors::ApiError, raw_json_response};
use crate::services::Services;

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Whether `event` is for the JWK Set. By suffix: behind a stage or a
/// custom domain's base path the event's path has a prefix.
pub fn is_jwks(event: &Request) -> bool {
    event.uri().path().ends_with(JWKS_PATH)
}

pub fn jwks(services: &Services, event: &Request) -> Response<Body> {
    services.secrets.refresh_if_due();
    if event.method() != Method::GET {
        return ApiError::get_only().into_response();
    }
    let secrets = services.secrets.current();
    let mut response = raw_json_response(StatusCode::OK, secrets.token_keys.jwks().to_owned());
    // Public and the same for everyone: backends and CDNs may keep it for
    // five minutes, which a rotation's waits allow for (see the README).
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
