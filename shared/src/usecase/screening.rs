//! Line-type screening: before a number's first send, Plivo's Lookup says
//! what its carrier calls it (mobile, fixed, VoIP, toll-free); the types in
//! `LOOKUP_BLOCKED_LINE_TYPES` are refused. The type is cached per number.
//! A lookup that fails lets the send through: an outage of Plivo's lookup
//! must not lock people out, and the other rules still hold.

use tokio::time::Instant;

use super::destination_refusal;
use crate::{
    config::LookupConfig,
    domain::{Channel, LineType, PhoneNumber, PhoneTag},
    metrics::{self, Metric},
    plivo::lookup::Lookup,
    services::Services,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screening {
    /// The send may go; `fresh` is a type just looked up, for the send to
    /// cache (in the script that records it: no extra round trip).
    Pass { fresh: Option<LineType> },
    /// The carrier's type is refused for this channel. `voice_hint`: a
    /// fixed line asked for SMS, and could take a call instead.
    Refused { line: LineType, voice_hint: bool },
    /// Plivo does not know the number.
    NoSuchNumber,
}

/// Screens `phone` for `channel`, given the type cached for it, if any.
pub async fn screen(
    services: &Services,
    phone: &PhoneNumber,
    tag: &PhoneTag,
    channel: Channel,
    cached: Option<LineType>,
    deadline: Instant,
) -> Screening {
    let (Some(config), Some(client)) = (&services.config.fraud.lookup, &services.lookup) else {
        return Screening::Pass { fresh: None };
    };
    let (line, fresh) = match cached {
        Some(line) => (line, false),
        None => {
            let credentials = services.secrets.current().plivo.clone();
            match client.line_type(&credentials, phone, deadline).await {
                Ok(Lookup::Line(line)) => (line, true),
                Ok(Lookup::NoSuchNumber) => return Screening::NoSuchNumber,
                Err(err) => {
                    tracing::warn!(phone = %phone.masked(), error = %crate::error_chain(&err), "line-type lookup failed: sending without it");
                    metrics::emit(phone.country(), &[Metric::LookupFailed]);
                    return Screening::Pass { fresh: None };
                }
            }
        }
    };
    if !refused(config, line, channel) {
        return Screening::Pass {
            fresh: fresh.then_some(line),
        };
    }
    if fresh {
        // No send will cache it: the next request must not look it up again.
        if let Err(err) = services
            .store
            .cache_line_type(tag, line, config.cache_ttl)
            .await
        {
            tracing::warn!(error = %crate::error_chain(&err), "could not cache a line type");
        }
    }
    let policy = &services.config.policy;
    let voice_hint = channel == Channel::Sms
        && line == LineType::Fixed
        && policy.channels.contains(&Channel::Voice)
        && destination_refusal(services, phone, Channel::Voice).is_none()
        && !refused(config, line, Channel::Voice);
    Screening::Refused { line, voice_hint }
}

/// A fixed line cannot read an SMS but can take a call: `fixed` refuses
/// SMS only.
fn refused(config: &LookupConfig, line: LineType, channel: Channel) -> bool {
    config.blocked.contains(&line) && !(line == LineType::Fixed && channel == Channel::Voice)
}
