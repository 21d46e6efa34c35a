//! Integration tests against real services: the Redis server and the
//! Secrets Manager emulator started by `scripts/test.sh`, and a local HTTP
//! server standing in for Plivo that checks its exact wire format (and
//! others for a CAPTCHA provider's siteverify and Plivo's Lookup API).

mod abuse;
mod backend;
mod breaker;
mod captcha;
mod cluster;
mod concurrency;
mod edge;
mod failover;
mod faults;
mod fraud_mock;
mod hardening;
mod hostile;
mod locale;
mod lookup;
mod plivo;
mod plivo_mock;
mod redis_server;
mod request;
mod retries;
mod rotation;
mod secrets;
mod storm;
mod support;
mod tokens;
mod verify;
mod voice;
