//! Everything the two OTP functions do, arranged so data flows one way:
//! `http` (the edge: Lambda events in, JSON responses out) → `usecase`
//! (the rules of requesting and verifying a code) → adapters (`store`,
//! `plivo`, `captcha`, `secrets`, `token`) → `domain` (types that cannot be
//! invalid).
//! Only `http` and `telemetry` know about HTTP or Lambda.

pub mod captcha;
pub mod config;
pub mod domain;
pub mod http;
pub mod keys;
pub mod locale;
pub mod message;
pub mod metrics;
pub mod plivo;
pub mod secrets;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod usecase;

/// Renders an error with every `source()` below it, so a log line carries the
/// whole story ("redis unavailable: connection refused") in one field.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Many wrappers repeat their source's text; say each thing once.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
