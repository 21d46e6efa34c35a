//! Integration tests against real services: the Redis server and the
//! Secrets Manager emulator started by `scripts/test.sh`, and a local HTTP
//! server standing in for Plivo that checks its exact wire format (and
//! others for a CAPTCHA provider's siteverify and Plivo's Lookup API).

mod abuse;
mod breaker;
mod captcha;
mod concurrency;
mod edge;
mod faults;
mod fraud_mock;
mod hardening;
mod hostile;
mod lookup;
mod plivo;
mod plivo_mock;
mod request;
mod secrets;
mod support;
mod verify;
mod voice;
