//! The SMS pumping breaker's rules. Pumping rents number ranges and asks
//! for codes nobody enters, so each destination (country and number range)
//! is watched for sends that do not convert into verifications; one that
//! trips is blocked for a while (or, with a CAPTCHA provider, needs a
//! CAPTCHA). Counting never costs a sequential Redis round trip: a send is
//! counted alongside the per-IP check (and taken back if it did not happen
//! after all), a verification once the caller has its answer.

use std::time::Duration;

use crate::{
    config::BreakerConfig,
    domain::{Destination, PhoneNumber},
    metrics::{self, Metric},
    services::Services,
    store::{BreakerDecision, BreakerLimits, BreakerTicket, StoreError},
};

use super::is_named;

/// The destination `phone` counts toward, when the breaker is on and the
/// number is not a test or trusted one (those never trip nor get blocked).
pub fn destination<'a>(
    services: &'a Services,
    phone: &PhoneNumber,
) -> Option<(Destination, &'a BreakerConfig)> {
    let config = services.config.fraud.breaker.as_ref()?;
    if is_named(services, phone) {
        return None;
    }
    Some((Destination::of(phone, config.prefix_digits)?, config))
}

/// Whether a send may get through a blocked destination with a CAPTCHA.
pub fn captcha_opens_blocks(services: &Services) -> bool {
    services
        .config
        .fraud
        .captcha
        .as_ref()
        .is_some_and(|c| c.on_request != crate::config::CaptchaOnRequest::Never)
}

/// Counts a send to `destination`; a trip is logged and published once,
/// by the send that caused it.
pub async fn count_send(
    services: &Services,
    destination: &Destination,
    config: &BreakerConfig,
) -> Result<BreakerDecision, StoreError> {
    let limits = BreakerLimits {
        window: config.window,
        min_sends: config.min_sends,
        min_conversion: config.min_conversion,
        block: config.block,
        count_when_blocked: captcha_opens_blocks(services),
    };
    let decision = services.store.count_send(destination, limits).await?;
    if let BreakerDecision::Tripped {
        sends,
        verified,
        retry_after,
        ..
    } = &decision
    {
        let conversion = f64::from(*verified) / f64::from((*sends).max(1));
        tracing::warn!(
            %destination,
            sends,
            verified,
            conversion,
            block_seconds = retry_after.as_secs(),
            "pumping breaker tripped: sends to this destination do not convert"
        );
        metrics::emit(
            Some(destination.country()),
            &[Metric::PumpingBreakerTripped],
        );
    }
    Ok(decision)
}

/// Counts a successful verification. Run after the response (see
/// `deferred`): it decides nothing for the caller.
pub async fn count_verification(
    services: &Services,
    destination: &Destination,
    window: Duration,
) -> Result<(), StoreError> {
    services.store.count_verification(destination, window).await
}

/// Takes a count back. A failure only skews a count by one: it is logged,
/// and the caller's answer stands.
pub async fn take_back(services: &Services, ticket: Option<BreakerTicket>) {
    let Some(ticket) = ticket else {
        return;
    };
    if let Err(err) = services.store.uncount(&ticket).await {
        tracing::warn!(error = %crate::error_chain(&err), "could not take back a breaker count");
    }
}
