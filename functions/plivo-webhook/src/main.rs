//! What Plivo calls back: the answer and hangup URLs of voice calls, and the
//! status callbacks (delivery receipts) of SMS. Builds the shared clients
//! once per cold start; each invocation is handed to the edge in `otp::http`.

use lambda_http::Error;
use otp::services::{Role, Services};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    otp::telemetry::init();
    // Built once, used by every invocation until the process ends.
    let services: &'static Services = Box::leak(Box::new(
        Services::from_env_or_exit(Role::PlivoWebhook).await,
    ));
    otp::http::run(services, move |event| {
        otp::http::plivo_webhook(services, event)
    })
    .await
}
