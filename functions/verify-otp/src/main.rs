//! verify-otp: `POST /api/otp/verify`, where a client submits the code and
//! gets a verification token, and `GET /.well-known/jwks.json`, the public
//! keys that verify those tokens. Builds the shared clients once per cold
//! start; each invocation is handed to the edge in `otp::http` by its path.

use std::convert::Infallible;

use lambda_http::{Body, Error, Request, Response, service_fn};
use otp::services::{Role, Services};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    otp::telemetry::init();
    let services = &Services::from_env_or_exit(Role::VerifyOtp).await;
    lambda_http::run(service_fn(move |event: Request| async move {
        let response = if otp::http::is_jwks(&event) {
            otp::http::jwks(services, &event)
        } else {
            otp::http::verify_otp(services, event).await
        };
        Ok::<Response<Body>, Infallible>(response)
    }))
    .await
}
