//! CAPTCHA step-up: when a rule asks for one, the client's `captchaToken`
//! must be one the provider accepts. Asking costs the client nothing (no
//! guess, no send); a provider that cannot be asked fails closed.

use tokio::time::Instant;

use crate::{
    captcha::{CaptchaError, Verdict},
    config::CaptchaProvider,
    domain::{CaptchaToken, ClientIp},
    services::Services,
};

/// What a client needs to render the widget: the provider and site key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaWidget {
    pub provider: CaptchaProvider,
    pub site_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptchaFailure {
    #[error("a CAPTCHA is required and none was sent")]
    Required(CaptchaWidget),
    #[error("the CAPTCHA provider rejected the token: {reason}")]
    Invalid {
        widget: CaptchaWidget,
        reason: String,
    },
    #[error("the CAPTCHA could not be checked")]
    Unavailable(#[source] CaptchaError),
}

/// Checks that `token` is a solved CAPTCHA. Only called where one is
/// required, which implies a provider is configured.
pub async fn require(
    services: &Services,
    token: Option<&CaptchaToken>,
    client: &ClientIp,
    deadline: Instant,
) -> Result<(), CaptchaFailure> {
    let (Some(config), Some(captcha)) = (&services.config.fraud.captcha, &services.captcha) else {
        return Err(CaptchaFailure::Unavailable(CaptchaError::NoSecret));
    };
    let widget = || CaptchaWidget {
        provider: config.provider,
        site_key: config.site_key.clone(),
    };
    let Some(token) = token else {
        return Err(CaptchaFailure::Required(widget()));
    };
    let secrets = services.secrets.current();
    let secret = secrets
        .captcha_secret
        .as_deref()
        .ok_or(CaptchaFailure::Unavailable(CaptchaError::NoSecret))?;
    match captcha
        .verify(secret, token, client.address(), deadline)
        .await
        .map_err(CaptchaFailure::Unavailable)?
    {
        Verdict::Passed => Ok(()),
        Verdict::Rejected { reason } => Err(CaptchaFailure::Invalid {
            widget: widget(),
            reason,
        }),
    }
}
