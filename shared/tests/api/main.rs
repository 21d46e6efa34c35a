//! Integration tests against real services: the Redis server and the
//! Secrets Manager emulator started by `scripts/test.sh`, and a local HTTP
//! server standing in for Plivo that checks its exact wire format.

mod abuse;
mod cluster;
mod concurrency;
mod edge;
mod failover;
mod faults;
mod hardening;
mod hostile;
mod plivo;
mod plivo_mock;
mod redis_server;
mod request;
mod retries;
mod secrets;
mod storm;
mod support;
mod verify;
mod voice;
