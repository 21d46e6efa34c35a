//! The Lambda runtime loop each function runs: lambda_http's, with its
//! request-id tracing span, plus steps after every invocation. Once the
//! response is posted (the caller has its answer) and before the next event
//! is asked for (after which Lambda may freeze the instance), the work the
//! invocation deferred runs, its held log lines are written, and a secret
//! refresh that it started is given time to finish.

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
use crate::{services::Services, usecase::deferred};

/// The longest the runtime spends after an invocation (its deferred work,
/// then a refresh); a refresh still running goes on beside the next one.
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
        .layer(AfterResponse(services))
        // Sequential on classic Lambda; N invocations at once where Lambda
        // manages concurrency (AWS_LAMBDA_MAX_CONCURRENCY).
        .run_concurrent()
        .await
}

struct AfterResponse(&'static Services);

impl<S> Layer<S> for AfterResponse {
    type Service = Settling<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Settling {
            inner,
            services: self.0,
        }
    }
}

#[derive(Clone)]
struct Settling<S> {
    inner: S,
    services: &'static Services,
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
        let deadline = invocation.context.deadline;
        let services = self.services;
        // The inner service answers the invocation: it posts the response.
        let answered = deferred::collect(self.inner.call(invocation));
        Box::pin(async move {
            let held = crate::telemetry::hold_lines();
            let (outcome, jobs) = answered.await;
            // Run and written once the caller has its answer, within what
            // is left of the invocation's time once it has that answer.
            let left = remaining_budget(deadline, epoch_millis());
            let limit = SETTLE_LIMIT.min(left.saturating_sub(SETTLE_MARGIN));
            let answered_at = tokio::time::Instant::now();
            deferred::run(services, jobs, limit).await;
            drop(held);
            services
                .secrets
                .settle(limit.saturating_sub(answered_at.elapsed()))
                .await;
            outcome
        })
    }
}
