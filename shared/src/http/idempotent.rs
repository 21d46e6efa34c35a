//! `Idempotency-Key` at the edge: the answer a use case gave is recorded as
//! the HTTP response it became, and replayed as such to a retry.

use std::future::Future;

use lambda_http::{
    Body, Response,
    http::{HeaderValue, StatusCode, header},
};
use tokio::time::Instant;

use super::{errors::fail, raw_json_response};
use crate::{
    domain::{IdempotencyKey, PhoneNumber},
    services::Services,
    store::RecordedResponse,
    usecase::idempotency::{self, Begin, Operation},
};

/// Runs `work` once for `key`: a retry with the same key and request gets
/// the first answer, replayed.
pub(super) async fn once<Fut>(
    services: &Services,
    key: &IdempotencyKey,
    phone: &PhoneNumber,
    operation: Operation<'_>,
    deadline: Instant,
    work: impl FnOnce() -> Fut,
) -> Response<Body>
where
    Fut: Future<Output = Response<Body>>,
{
    match idempotency::begin(services, key, phone, operation, deadline).await {
        Ok(Begin::Replay(recorded)) => {
            tracing::info!(phone = %phone.masked(), status = recorded.status, "idempotent replay");
            replay(recorded)
        }
        Ok(Begin::Proceed(claimed)) => {
            let response = work().await;
            // Failures on our side, "try later" and "solve a CAPTCHA" are
            // not kept: a retry after them must run again, not replay them.
            let recorded = replayable(&response).then(|| record(&response));
            idempotency::finish(services, key, claimed, recorded.as_ref()).await;
            response
        }
        Err(err) => fail(&err, Some(phone)),
    }
}

/// Whether a retry with the same Idempotency-Key may get this answer
/// again: not a failure on our side, nor a "try later", nor a request for
/// a CAPTCHA (the retry carries the solved one).
fn replayable(response: &Response<Body>) -> bool {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return false;
    }
    let Body::Text(text) = response.body() else {
        return true;
    };
    let error = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|body| body["error"].as_str().map(str::to_owned));
    !error.is_some_and(|code| code.starts_with("captcha_"))
}

/// What a response would be replayed as.
fn record(response: &Response<Body>) -> RecordedResponse {
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    RecordedResponse {
        status: response.status().as_u16(),
        body,
        retry_after: response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    }
}

fn replay(recorded: RecordedResponse) -> Response<Body> {
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    let mut response = raw_json_response(status, recorded.body);
    let headers = response.headers_mut();
    if let Some(secs) = recorded.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
