//! Work whose result the caller does not wait for: it runs once the
//! invocation's response is posted and before the next event is asked for
//! (after which Lambda may freeze the instance), so it costs the caller no
//! latency. The runtime opens a scope around each invocation (`collect`)
//! and runs what was deferred in it (`run`); where no scope is open (a test
//! calling the edge directly), the work runs at once, before the answer.

use std::{
    mem,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

use crate::{domain::Destination, services::Services, store::deadline};

/// One piece of deferred work.
#[derive(Debug)]
pub enum Job {
    /// A successful verification, for its destination's pumping breaker.
    CountVerification {
        destination: Destination,
        window: Duration,
    },
}

impl Job {
    async fn run(self, services: &Services) {
        match self {
            Self::CountVerification {
                destination,
                window,
            } => {
                if let Err(err) =
                    super::breaker::count_verification(services, &destination, window).await
                {
                    // Only the breaker's count is short by one: a lost count
                    // makes the destination look worse, never better.
                    tracing::warn!(
                        error = %crate::error_chain(&err),
                        "could not count a verification"
                    );
                }
            }
        }
    }
}

tokio::task_local! {
    static QUEUE: Arc<Mutex<Vec<Job>>>;
}

/// Runs `job` after the response when the runtime collects this
/// invocation's work, and now otherwise.
pub async fn after_response(services: &Services, job: Job) {
    match QUEUE.try_with(Arc::clone) {
        Ok(queue) => queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job),
        Err(_) => job.run(services).await,
    }
}

/// Runs `invocation`, collecting the work it defers instead of running it.
pub async fn collect<F: Future>(invocation: F) -> (F::Output, Vec<Job>) {
    let queue = Arc::new(Mutex::new(Vec::new()));
    let output = QUEUE.scope(Arc::clone(&queue), invocation).await;
    let jobs = mem::take(&mut *queue.lock().unwrap_or_else(PoisonError::into_inner));
    (output, jobs)
}

/// Runs the collected jobs one after another, every Redis call in them
/// bounded by `limit` from now: past it, a job's calls fail at once and the
/// job logs what was lost.
pub async fn run(services: &Services, jobs: Vec<Job>, limit: Duration) {
    if jobs.is_empty() {
        return;
    }
    deadline::within(Instant::now() + limit, async {
        for job in jobs {
            job.run(services).await;
        }
    })
    .await;
}
