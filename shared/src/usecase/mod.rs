//! The use cases, each with its own error enum. They see domain types and
//! adapters only; the edge (`crate::http`) turns their results into
//! responses.

pub mod callbacks;
pub mod delivery;
pub mod idempotency;
pub mod request;
pub mod verify;

use std::time::Duration;

use crate::{
    config::OtpPolicy,
    domain::{Channel, PhoneNumber},
};

/// Rounds a wait up to whole seconds, never below one: a client told
/// "retry after 0" would retry at once.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// Why `phone` may not be reached by `channel`, if it may not: numbers that
/// bill the sender a premium, and countries not on the channel's list
/// (calls draw toll fraud, so they have a list of their own).
pub fn destination_refusal(
    policy: &OtpPolicy,
    phone: &PhoneNumber,
    channel: Channel,
) -> Option<&'static str> {
    if phone.is_premium_or_shared_cost() {
        return Some("premium-rate or shared-cost number");
    }
    let (countries, reason) = match channel {
        Channel::Sms => (
            &policy.allowed_countries,
            "country not in ALLOWED_COUNTRIES",
        ),
        Channel::Voice => (
            &policy.voice_allowed_countries,
            "country not in VOICE_ALLOWED_COUNTRIES",
        ),
    };
    let listed = phone.country().is_some_and(|c| countries.contains(c));
    (!countries.is_empty() && !listed).then_some(reason)
}

/// The epoch milliseconds now, by this machine's (NTP-synchronised) clock.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
