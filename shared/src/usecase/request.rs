//! Requesting a code: check the destination, atomically reserve a send and
//! store the code's digest, then deliver the SMS; undo the reservation if
//! delivery finally fails.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    domain::{ClientIp, OtpCode, PhoneNumber},
    secrets::SecretsError,
    services::Services,
    sms::SmsError,
    store::{IpAction, IpDecision, SendDecision, SendFate, SendLimits, StoreError},
};

/// The rolling window `OTP_MAX_SENDS_PER_HOUR` counts over.
const SEND_WINDOW: Duration = Duration::from_secs(3_600);

#[derive(Debug)]
pub struct RequestOutcome {
    pub expires_in: Duration,
    pub retry_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("too many requests from this source IP")]
    TooManyFromIp { retry_after: Duration },
    #[error("destination not allowed: {0}")]
    DestinationNotAllowed(&'static str),
    #[error("phone is locked after too many wrong codes")]
    Locked { retry_after: Duration },
    #[error("a code was sent moments ago")]
    TooSoon { retry_after: Duration },
    #[error("hourly send quota spent")]
    QuotaExhausted { retry_after: Duration },
    #[error("store failed")]
    Store(#[from] StoreError),
    #[error("sms delivery failed")]
    Delivery(#[source] SmsError),
}

pub async fn request_otp(
    services: &Services,
    phone: &PhoneNumber,
    client: &ClientIp,
    deadline: Instant,
) -> Result<RequestOutcome, RequestError> {
    let policy = &services.config.policy;
    // First, so a flood from one address costs one small script per call.
    if let IpDecision::Limited { retry_after } = services
        .store
        .count_ip(
            client,
            IpAction::Send,
            policy.ip_max_sends_per_hour,
            SEND_WINDOW,
        )
        .await?
    {
        return Err(RequestError::TooManyFromIp { retry_after });
    }
    if phone.is_premium_or_shared_cost() {
        return Err(RequestError::DestinationNotAllowed(
            "premium-rate or shared-cost number",
        ));
    }
    if !policy.allowed_countries.is_empty()
        && !phone
            .country()
            .is_some_and(|c| policy.allowed_countries.contains(c))
    {
        return Err(RequestError::DestinationNotAllowed(
            "country not in ALLOWED_COUNTRIES",
        ));
    }

    // A test number gets its fixed code and no SMS, under every other rule.
    let test_code = policy.test_numbers.get(phone.as_e164());
    let code = test_code
        .cloned()
        .unwrap_or_else(|| OtpCode::generate(policy.code_length));
    let mut secrets = services.secrets.current();
    let limits = SendLimits {
        code_ttl: policy.code_ttl,
        cooldown: policy.resend_cooldown,
        max_sends: policy.max_sends_per_hour,
        window: SEND_WINDOW,
    };
    let send = match services
        .store
        .begin_send(phone, &secrets.code_key.digest(phone, &code), limits)
        .await?
    {
        SendDecision::Stored(send) => send,
        SendDecision::Locked { retry_after } => return Err(RequestError::Locked { retry_after }),
        SendDecision::TooSoon { retry_after } => return Err(RequestError::TooSoon { retry_after }),
        SendDecision::QuotaExhausted { retry_after } => {
            return Err(RequestError::QuotaExhausted { retry_after });
        }
    };

    let outcome = RequestOutcome {
        expires_in: policy.code_ttl,
        retry_after: policy.resend_cooldown,
    };
    if test_code.is_some() {
        tracing::info!(phone = %phone.masked(), "test number: code stored, no SMS sent");
        return Ok(outcome);
    }
    let text = services
        .config
        .message
        .render(&code, policy.code_ttl.as_secs());
    let mut result = services
        .sms
        .send(&secrets.plivo, phone, &text, deadline)
        .await;
    if matches!(result, Err(SmsError::Unauthorized)) {
        // Credentials rotated since the cold start: read the secret once more.
        let refresh = tokio::time::timeout_at(deadline, services.secrets.refresh()).await;
        match refresh.unwrap_or(Err(SecretsError::TimedOut)) {
            Ok(fresh) => {
                tracing::info!("secret refreshed after plivo answered 401");
                secrets = fresh;
                result = services
                    .sms
                    .send(&secrets.plivo, phone, &text, deadline)
                    .await;
            }
            Err(err) => {
                tracing::error!(error = %crate::error_chain(&err), "secret refresh failed");
            }
        }
    }
    match result {
        Ok(_) => Ok(outcome),
        Err(err) => {
            // The client is told the send failed, so the code must not stay
            // valid; it stops counting only if surely nobody received it.
            let fate = if err.maybe_sent() {
                SendFate::MaybeSent
            } else {
                SendFate::NotSent
            };
            if let Err(release) = services.store.cancel_send(phone, &send, fate).await {
                tracing::error!(error = %crate::error_chain(&release), "could not cancel a failed send");
            }
            Err(RequestError::Delivery(err))
        }
    }
}
