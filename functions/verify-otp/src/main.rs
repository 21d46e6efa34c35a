//! verify-otp: `POST /api/otp/verify`, where a client submits the code and
//! gets a verification token, and `GET /.well-known/jwks.json`, the public
//! keys that verify those tokens. Builds the shared clients once per cold
//! start; each invocation is handed to the edge in `otp::http` by its path.

use lambda_http::Error;
use otp::services::{Role, Services};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    otp::telemetry::init();
    // Built once, used by every invocation until the process ends.
    let services: &'static Services =
        Box::leak(Box::new(Services::from_env_or_exit(Role::VerifyOtp).await));
    otp::http::run(services, move |event| async move {
        if otp::http::is_jwks(&event) {
            otp::http::jwks(services, &event)
        } else {
            otp::http::verify_otp(services, event).await
        }
    })
    .await
}
