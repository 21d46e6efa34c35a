//! The invocation's deadline, carried beside the request (a task-local set
//! by the edge) so that every Redis call of that invocation is bounded by
//! it without threading it through each method: no call outlives the
//! Lambda, and no script acts after its caller stopped waiting.

use std::{
    future::Future,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with every Redis call in it bounded by `deadline`.
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline of the invocation this task serves, if one was set.
pub(super) fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// `deadline` as epoch milliseconds, by this machine's clock.
pub(super) fn epoch_ms_of(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (now + left).as_millis() as u64
}
