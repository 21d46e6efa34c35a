//! The two use cases, each with its own error enum. They see domain types
//! and adapters only; the edge (`crate::http`) turns their results into
//! responses.

pub mod idempotency;
pub mod request;
pub mod verify;

use std::time::Duration;

/// Rounds a wait up to whole seconds, never below one: a client told
/// "retry after 0" would retry at once.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}
