//! Integration tests against real services: the Redis server and the
//! Secrets Manager emulator started by `scripts/test.sh`, and a local HTTP
//! server standing in for Plivo that checks its exact wire format.

mod abuse;
mod backend;
mod concurrency;
mod edge;
mod faults;
mod hardening;
mod hostile;
mod locale;
mod plivo;
mod plivo_mock;
mod redis_server;
mod request;
mod retries;
mod rotation;
mod secrets;
mod support;
mod tokens;
mod verify;
mod voice;
