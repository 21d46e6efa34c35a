//! Delivering a code through Plivo, by SMS or by call, shared by requests
//! and by the automatic voice fallback: one attempt with the current
//! credentials and, when Plivo answers 401 (they were rotated), one more
//! after reading the secret again.

use std::sync::Arc;

use tokio::time::Instant;

use crate::{
    domain::PhoneNumber,
    metrics::{self, Dependency},
    plivo::PlivoError,
    secrets::{Secrets, SecretsError},
    services::Services,
};

/// What to ask Plivo for.
pub enum Delivery {
    Sms {
        text: String,
        status_url: Option<String>,
    },
    Call {
        answer_url: String,
        hangup_url: String,
    },
}

/// Returns Plivo's message or request UUID.
pub async fn deliver(
    services: &Services,
    phone: &PhoneNumber,
    delivery: &Delivery,
    deadline: Instant,
) -> Result<String, PlivoError> {
    let secrets = services.secrets.current();
    let result = attempt(services, &secrets, phone, delivery, deadline).await;
    if !matches!(result, Err(PlivoError::Unauthorized)) {
        return result;
    }
    let refresh = tokio::time::timeout_at(deadline, services.secrets.refresh()).await;
    match refresh.unwrap_or(Err(SecretsError::TimedOut)) {
        Ok(fresh) => {
            tracing::info!("secret refreshed after plivo answered 401");
            attempt(services, &fresh, phone, delivery, deadline).await
        }
        Err(err) => {
            tracing::error!(error = %crate::error_chain(&err), "secret refresh failed");
            metrics::dependency_failed(Dependency::Secrets);
            result
        }
    }
}

async fn attempt(
    services: &Services,
    secrets: &Arc<Secrets>,
    phone: &PhoneNumber,
    delivery: &Delivery,
    deadline: Instant,
) -> Result<String, PlivoError> {
    match delivery {
        Delivery::Sms { text, status_url } => {
            services
                .plivo
                .send_sms(&secrets.plivo, phone, text, status_url.as_deref(), deadline)
                .await
        }
        Delivery::Call {
            answer_url,
            hangup_url,
        } => {
            services
                .plivo
                .place_call(&secrets.plivo, phone, answer_url, hangup_url, deadline)
                .await
        }
    }
}
