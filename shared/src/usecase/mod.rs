//! The use cases, each with its own error enum. They see domain types and
//! adapters only; the edge (`crate::http`) turns their results into
//! responses.

pub mod breaker;
pub mod callbacks;
pub mod captcha;
pub mod deferred;
pub mod delivery;
pub mod idempotency;
pub mod request;
pub mod screening;
pub mod verify;

use std::time::Duration;

use crate::{
    domain::{Channel, ClientIp, PhoneNumber},
    services::Services,
    store::{IpAction, IpDecision, StoreError},
};

/// The window the per-IP budgets count over.
const IP_WINDOW: Duration = Duration::from_secs(3_600);

/// Where a caller stands with its per-IP budgets after this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBudget {
    /// The longer wait, when either budget is spent.
    pub wait: Option<Duration>,
    /// Half of either budget was already used before this call: reason
    /// enough for a CAPTCHA (`CAPTCHA_ON_REQUEST=elevated`).
    pub half_spent: bool,
}

/// Counts a call against the caller's budgets: its address (or IPv6 /64)
/// and, for IPv6, its /48 too, both at once so that the second costs no
/// extra round trip.
pub async fn ip_budget(
    services: &Services,
    client: &ClientIp,
    action: IpAction,
) -> Result<IpBudget, StoreError> {
    let policy = &services.config.policy;
    let (per_address, per_site) = match action {
        IpAction::Send => (
            policy.ip_max_sends_per_hour,
            policy.ipv6_48_max_sends_per_hour,
        ),
        IpAction::Verify => (
            policy.ip_max_verifies_per_hour,
            policy.ipv6_48_max_verifies_per_hour,
        ),
    };
    let store = &services.store;
    let address = store.count_ip(client.as_str(), action, per_address, IP_WINDOW);
    let (address, site) = match client.site() {
        None => (address.await?, IpDecision::Allowed { calls: 0 }),
        Some(site) => tokio::try_join!(address, store.count_ip(site, action, per_site, IP_WINDOW))?,
    };
    let decisions = [(address, per_address), (site, per_site)];
    let wait = decisions
        .iter()
        .filter_map(|(d, _)| match d {
            IpDecision::Limited { retry_after } => Some(*retry_after),
            IpDecision::Allowed { .. } => None,
        })
        .max();
    let half_spent = decisions.iter().any(|(d, limit)| match d {
        IpDecision::Allowed { calls } => {
            2 * u64::from(calls.saturating_sub(1)) >= u64::from(*limit)
        }
        IpDecision::Limited { .. } => true,
    });
    Ok(IpBudget { wait, half_spent })
}

/// Rounds a wait up to whole seconds, never below one: a client told
/// "retry after 0" would retry at once.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// Test and trusted numbers were named on purpose: the line-type rules,
/// the pumping breaker and lookups leave them alone.
pub fn is_named(services: &Services, phone: &PhoneNumber) -> bool {
    let policy = &services.config.policy;
    let e164 = phone.as_e164();
    policy.test_numbers.contains_key(e164)
        || policy.trusted_numbers.contains(e164)
        || services.secrets.current().test_numbers.contains_key(e164)
}

/// Why `phone` may not be reached by `channel`, if it may not: line types
/// not on the channel's list (premium-rate, shared-cost, personal, pager,
/// VoIP numbers earn someone money or cannot prove a person), numbers of
/// no country (satellite, international networks), and countries not on
/// the channel's list (calls draw toll fraud, so they have a list of their
/// own). Test and trusted numbers were named on purpose: only the country
/// rule applies to them.
pub fn destination_refusal(
    services: &Services,
    phone: &PhoneNumber,
    channel: Channel,
) -> Option<&'static str> {
    let policy = &services.config.policy;
    if !is_named(services, phone) {
        if phone.is_non_geographic() {
            return Some("non-geographic number");
        }
        let types = match channel {
            Channel::Sms => &policy.sms_number_types,
            Channel::Voice => &policy.voice_number_types,
        };
        if !types.contains(&phone.kind()) {
            return Some("number type not allowed for this channel");
        }
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
