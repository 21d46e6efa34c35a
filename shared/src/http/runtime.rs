//! The Lambda runtime loop each function runs: lambda_http's, with its
//! request-id tracing span, plus steps after every invocation. Once the
//! response is posted (the caller has its answer) and before the next event
//! is asked for (after which Lambda may freeze the instance), the
//! invocation's held log lines are written, and a secret refresh that the
//! invocation started is given time to finish.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use lambda_http::{
    Body, Error, Request, Response,
    lambda_runtime::{LambdaInvocation, layers::TracingLayer},
    service_fn,
    tower::{Layer, Service},
};

use super::{epoch_millis, remaining_budget};
use crate::{secrets::SecretStore, services::Services};

/// The longest the runtime waits for a refresh after an invocation; one
/// still running goes on beside the next invocation.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// Kept back from the invocation's deadline, so waiting never times it out.
const SETTLE_MARGIN: Duration = Duration::from_millis(200);

/// Runs `handler` for every event until the process ends.
pub async fn run<H, F>(services: &'static Services, handler: H) -> Result<(), Error>
where
    H: Fn(Request) -> F + Clone + Send + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = service_fn(move |event: Request| {
        let answer = handler(event);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    lambda_http::runtime_concurrent(service)
        .layer(TracingLayer::new())
        .layer(SettleRefresh(services.secrets.clone()))
        // Sequential on classic Lambda; N invocations at once where Lambda
        // manages concurrency (AWS_LAMBDA_MAX_CONCURRENCY).
        .run_concurrent()
        .await
}

struct SettleRefresh(SecretStore);

impl<S> Layer<S> for SettleRefresh {
    type Service = Settling<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Settling {
            inner,
            secrets: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Settling<S> {
    inner: S,
    secrets: SecretStore,
}

impl<S> Service<LambdaInvocation> for Settling<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let left = remaining_budget(invocation.context.deadline, epoch_millis());
        let limit = SETTLE_LIMIT.min(left.saturating_sub(SETTLE_MARGIN));
        let secrets = self.secrets.clone();
        // The inner service answers the invocation: it posts the response.
        let answered = self.inner.call(invocation);
        Box::pin(async move {
            let held = crate::telemetry::hold_lines();
            let outcome = answered.await;
            // Written once the caller has its answer.
            drop(held);
            secrets.settle(limit).await;
            outcome
        })
    }
}
