//! What Plivo calls back: the answer and hangup URLs of voice calls, and the
//! status callbacks (delivery receipts) of SMS. Builds the shared clients
//! once per cold start; each invocation is handed to the edge in `otp::http`.

use std::convert::Infallible;

use lambda_http::{Body, Error, Request, Response, service_fn};
use otp::services::{Role, Services};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    otp::telemetry::init();
    // Built once per cold start and kept for the life of the process, so
    // concurrent invocations (Lambda managed concurrency) share it.
    let services: &'static Services = Box::leak(Box::new(
        Services::from_env_or_exit(Role::PlivoWebhook).await,
    ));
    lambda_http::run_concurrent(service_fn(move |event: Request| async move {
        Ok::<Response<Body>, Infallible>(otp::http::plivo_webhook(services, event).await)
    }))
    .await
}
