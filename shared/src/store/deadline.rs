//! The invocation's deadline, carried beside the request (a task-local set
//! by the edge) so that every Redis call of that invocation is bounded by
//! it without threading it through each method: no call outlives the
//! Lambda, and no script acts after its caller stopped waiting.

use std::{
    convert::Infallible,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{sync::Notify, time::Instant};

use super::StoreError;

tokio::task_local! {
    static DEADLINE: Deadline;
}

#[derive(Clone)]
struct Deadline {
    at: Instant,
    passed: Arc<Passed>,
}

/// Raised once when the deadline passes; every call still waiting gives up.
#[derive(Default)]
struct Passed {
    raised: AtomicBool,
    notify: Notify,
}

impl Passed {
    async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a raise in between is seen.
        notified.as_mut().enable();
        if !self.raised.load(Ordering::Acquire) {
            notified.await;
        }
    }
}

/// Runs `work` with every Redis call in it bounded by `deadline`. One timer
/// serves the whole invocation: a timer per call cost an eventfd write and
/// an extra turn of the event loop each (the runtime wakes its I/O driver
/// whenever a timer earlier than its next wake-up is registered).
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    let passed = Arc::new(Passed::default());
    let alarm = async {
        tokio::time::sleep_until(deadline).await;
        passed.raised.store(true, Ordering::Release);
        passed.notify.notify_waiters();
        std::future::pending::<Infallible>().await
    };
    let work = DEADLINE.scope(
        Deadline {
            at: deadline,
            passed: Arc::clone(&passed),
        },
        work,
    );
    tokio::select! {
        biased;
        out = work => out,
        never = alarm => match never {},
    }
}

/// The deadline of the invocation this task serves, if one was set.
pub(super) fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| d.at).ok()
}

/// Gives up on `call` at the invocation's deadline.
pub(super) async fn bounded<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let Ok(passed) = DEADLINE.try_with(|d| Arc::clone(&d.passed)) else {
        return call.await;
    };
    tokio::select! {
        biased;
        reply = call => reply,
        () = passed.wait() => Err(StoreError::Deadline),
    }
}

/// `deadline` as epoch milliseconds, by this machine's clock.
pub(super) fn epoch_ms_of(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (now + left).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reply_after(ms: u64) -> Result<u64, StoreError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    #[tokio::test]
    async fn a_call_answered_before_the_deadline_keeps_its_answer() {
        let deadline = Instant::now() + Duration::from_millis(500);
        let reply = within(deadline, bounded(reply_after(10))).await;
        assert!(matches!(reply, Ok(10)));
    }

    #[tokio::test]
    async fn every_call_still_waiting_at_the_deadline_gives_up_then() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(100);
        let (first, second) = within(deadline, async {
            tokio::join!(bounded(reply_after(5_000)), bounded(reply_after(5_000)))
        })
        .await;
        assert!(matches!(first, Err(StoreError::Deadline)));
        assert!(matches!(second, Err(StoreError::Deadline)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_call_made_after_the_deadline_gives_up_at_once_unless_already_answered() {
        let deadline = Instant::now() + Duration::from_millis(20);
        let (late, ready) = within(deadline, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (
                bounded(reply_after(5_000)).await,
                bounded(async { Ok(1) }).await,
            )
        })
        .await;
        assert!(matches!(late, Err(StoreError::Deadline)));
        assert!(matches!(ready, Ok(1)));
    }

    #[tokio::test]
    async fn outside_an_invocation_a_call_is_not_bounded() {
        assert!(matches!(bounded(reply_after(10)).await, Ok(10)));
        assert_eq!(current(), None);
    }
}
