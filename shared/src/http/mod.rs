//! The edge: turns a Lambda HTTP event into domain types, calls a use case,
//! and answers. One file per route; `errors` is the one place where every
//! outcome and error is mapped to a response. Handlers always answer, and
//! each starts the secret's timed refresh when one is due (beside itself).

mod errors;
mod idempotent;
mod jwks;
mod parse;
mod request;
mod runtime;
mod verify;
mod webhook;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::request::RequestContext;
use lambda_http::{
    Body, Request, RequestExt, Response,
    http::{HeaderValue, StatusCode, header},
};
use serde::Serialize;
use tokio::time::Instant;

use crate::{domain::CallbackBase, services::Services};

pub use jwks::{JWKS_PATH, is_jwks, jwks};
pub use request::request_otp;
pub use runtime::run;
pub use verify::verify_otp;
pub use webhook::plivo_webhook;

/// Kept back from the invocation's deadline, on top of one Redis timeout,
/// so a failed send can still be undone and answered before Lambda kills us.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
/// The budget when the event carries no Lambda context (tests, tools).
const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// Where Plivo is to call back: `PUBLIC_BASE_URL`, or the API Gateway
/// domain (and stage, unless it is `$default`) this event came through.
/// Both are trusted: the domain is API Gateway's, never a client's header.
fn callback_base(services: &Services, event: &Request) -> Option<CallbackBase> {
    if let Some(base) = &services.config.public_base_url {
        return Some(CallbackBase::new(base));
    }
    let (domain, stage) = match event.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => (ctx.domain_name.clone()?, ctx.stage.clone()),
        RequestContext::ApiGatewayV1(ctx) => (ctx.domain_name.clone()?, ctx.stage.clone()),
        _ => return None,
    };
    let base = match stage.as_deref() {
        None | Some("" | "$default") => format!("https://{domain}"),
        Some(stage) => format!("https://{domain}/{stage}"),
    };
    Some(CallbackBase::new(&base))
}

/// The deadline for calls that must finish before one last Redis call: a
/// Redis timeout before `hard`, so that what they started can be undone or
/// answered in time.
fn outer_deadline(services: &Services, hard: Instant) -> Instant {
    hard.checked_sub(services.config.redis.timeout)
        .unwrap_or(hard)
}

/// The point after which the Lambda would be killed, less `margin`.
fn deadline_of(event: &Request, margin: Duration) -> Instant {
    let now = Instant::now();
    let budget = match event.lambda_context_ref() {
        Some(context) => remaining_budget(context.deadline, epoch_millis()),
        None => DEFAULT_BUDGET,
    };
    now + budget.saturating_sub(margin)
}

/// Lambda sends the deadline as Unix epoch milliseconds; `cargo lambda
/// watch` sends the budget itself (600000). A value too small to be a date
/// after 2001 can only be the latter.
fn remaining_budget(deadline_ms: u64, now_ms: u64) -> Duration {
    const EPOCH_2001_MS: u64 = 1_000_000_000_000;
    if deadline_ms < EPOCH_2001_MS {
        Duration::from_millis(deadline_ms)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    }
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serializing these plain structs cannot fail.
    raw_json_response(status, serde_json::to_string(body).unwrap_or_default())
}

fn raw_json_response(status: StatusCode, json: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(json));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Responses carry tokens and per-number state: never cache them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_what_is_left_before_an_epoch_deadline() {
        let now = 1_795_539_243_000;
        assert_eq!(
            remaining_budget(now + 2_500, now),
            Duration::from_millis(2_500)
        );
        assert_eq!(remaining_budget(now - 10, now), Duration::ZERO);
    }

    #[test]
    fn a_relative_deadline_from_the_local_emulator_is_the_budget_itself() {
        assert_eq!(
            remaining_budget(600_000, 1_795_539_243_000),
            Duration::from_secs(600)
        );
    }
}
