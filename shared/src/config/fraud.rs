//! The adaptive defences' settings (issue 9): CAPTCHA step-up, the SMS
//! pumping breaker and line-type screening. Each is switchable, and each
//! is off, or on with a default, exactly as the README's tables say.

use std::{collections::BTreeSet, time::Duration};

use super::{ConfigError, Env};
use crate::domain::LineType;

#[derive(Debug, Clone, Default)]
pub struct FraudConfig {
    /// `CAPTCHA_PROVIDER`; none when unset.
    pub captcha: Option<CaptchaConfig>,
    /// `PUMPING_BREAKER=on` (the default).
    pub breaker: Option<BreakerConfig>,
    /// `LOOKUP_BLOCKED_LINE_TYPES`; none when unset.
    pub lookup: Option<LookupConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaProvider {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl CaptchaProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::Hcaptcha => "hcaptcha",
            Self::Recaptcha => "recaptcha",
        }
    }

    /// The provider's own siteverify endpoint.
    pub fn verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }
}

/// When request-otp asks for a CAPTCHA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaOnRequest {
    Always,
    /// While the destination's breaker is open, or once the source IP has
    /// used half its hourly budget.
    Elevated,
    Never,
}

#[derive(Debug, Clone)]
pub struct CaptchaConfig {
    pub provider: CaptchaProvider,
    /// Handed to clients in the 403, so an app renders the right widget.
    pub site_key: String,
    pub verify_url: String,
    /// reCAPTCHA v3's `score` must reach this (other providers send none;
    /// hCaptcha Enterprise's score measures risk the other way round).
    pub min_score: f64,
    pub timeout: Duration,
    pub on_request: CaptchaOnRequest,
    /// Wrong guesses for a phone (since its last success, within a day)
    /// after which verify-otp needs a token.
    pub after_failed_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Leading national digits that name a destination (6: NPA-NXX).
    pub prefix_digits: usize,
    pub window: Duration,
    pub min_sends: u32,
    /// verified ÷ sent under which a destination with `min_sends` trips.
    pub min_conversion: f64,
    pub block: Duration,
}

#[derive(Debug, Clone)]
pub struct LookupConfig {
    pub url: String,
    pub blocked: BTreeSet<LineType>,
    pub cache_ttl: Duration,
    pub timeout: Duration,
}

impl FraudConfig {
    pub(super) fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            captcha: captcha(env)?,
            breaker: breaker(env)?,
            lookup: lookup(env)?,
        })
    }
}

fn captcha(env: &Env) -> Result<Option<CaptchaConfig>, ConfigError> {
    let Some(_) = env.optional("CAPTCHA_PROVIDER") else {
        return Ok(None);
    };
    let provider = match env.choice(
        "CAPTCHA_PROVIDER",
        &["turnstile", "hcaptcha", "recaptcha"],
        "turnstile",
    )? {
        "hcaptcha" => CaptchaProvider::Hcaptcha,
        "recaptcha" => CaptchaProvider::Recaptcha,
        _ => CaptchaProvider::Turnstile,
    };
    let on_request = match env.choice(
        "CAPTCHA_ON_REQUEST",
        &["always", "elevated", "never"],
        "elevated",
    )? {
        "always" => CaptchaOnRequest::Always,
        "never" => CaptchaOnRequest::Never,
        _ => CaptchaOnRequest::Elevated,
    };
    Ok(Some(CaptchaConfig {
        provider,
        site_key: env.required("CAPTCHA_SITE_KEY")?,
        verify_url: env.http_url("CAPTCHA_VERIFY_URL", provider.verify_url())?,
        min_score: env.fraction("CAPTCHA_MIN_SCORE", 0.5)?,
        timeout: Duration::from_millis(env.number("CAPTCHA_TIMEOUT_MS", 2_000, 100, 30_000)?),
        on_request,
        after_failed_attempts: env.number("CAPTCHA_AFTER_FAILED_ATTEMPTS", 2, 0, 100)? as u32,
    }))
}

fn breaker(env: &Env) -> Result<Option<BreakerConfig>, ConfigError> {
    if env.choice("PUMPING_BREAKER", &["on", "off"], "on")? == "off" {
        return Ok(None);
    }
    Ok(Some(BreakerConfig {
        prefix_digits: env.number("PUMPING_PREFIX_DIGITS", 6, 1, 8)? as usize,
        window: env.seconds("PUMPING_WINDOW_SECONDS", 3_600, 60, 86_400)?,
        min_sends: env.number("PUMPING_MIN_SENDS", 20, 1, 1_000_000)? as u32,
        min_conversion: env.fraction("PUMPING_MIN_CONVERSION", 0.2)?,
        block: env.seconds("PUMPING_BLOCK_SECONDS", 3_600, 1, 86_400)?,
    }))
}

fn lookup(env: &Env) -> Result<Option<LookupConfig>, ConfigError> {
    let var = "LOOKUP_BLOCKED_LINE_TYPES";
    let Some(raw) = env.optional(var) else {
        return Ok(None);
    };
    let blocked = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            LineType::parse(&t.to_ascii_lowercase())
                .filter(|t| LineType::BLOCKABLE.contains(t))
                .ok_or_else(|| ConfigError::Invalid {
                    var,
                    reason: format!("{t:?} is not one of voip, fixed, toll-free, unknown"),
                })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    if blocked.is_empty() {
        return Ok(None);
    }
    Ok(Some(LookupConfig {
        url: env.http_url("PLIVO_LOOKUP_URL", "https://lookup.plivo.com")?,
        blocked,
        cache_ttl: env.seconds("LOOKUP_CACHE_SECONDS", 30 * 86_400, 60, 365 * 86_400)?,
        timeout: Duration::from_millis(env.number("LOOKUP_TIMEOUT_MS", 2_000, 100, 30_000)?),
    }))
}

impl Env<'_> {
    /// A decimal from 0 to 1.
    fn fraction(&self, var: &'static str, default: f64) -> Result<f64, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(default);
        };
        raw.parse::<f64>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| ConfigError::Invalid {
                var,
                reason: format!("must be a number from 0 to 1, got {raw:?}"),
            })
    }

    /// An http(s) URL, without a trailing slash.
    fn http_url(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let url = self.text(var, default)?.trim_end_matches('/').to_owned();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !url.contains(' ') => Ok(url),
            _ => Err(ConfigError::Invalid {
                var,
                reason: "must be an http:// or https:// URL".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config;

    #[test]
    fn by_default_the_breaker_is_on_and_captcha_and_lookups_are_off() {
        let fraud = config(&[]).unwrap().fraud;
        assert!(fraud.captcha.is_none());
        assert!(fraud.lookup.is_none());
        let breaker = fraud.breaker.unwrap();
        assert_eq!(breaker.prefix_digits, 6);
        assert_eq!(breaker.window, Duration::from_secs(3_600));
        assert_eq!(breaker.min_sends, 20);
        assert_eq!(breaker.min_conversion, 0.2);
        assert_eq!(breaker.block, Duration::from_secs(3_600));
        assert!(
            config(&[("PUMPING_BREAKER", "off")])
                .unwrap()
                .fraud
                .breaker
                .is_none()
        );
    }

    #[test]
    fn a_captcha_provider_brings_its_own_siteverify_url_and_the_documented_defaults() {
        let captcha = config(&[
            ("CAPTCHA_PROVIDER", "hcaptcha"),
            ("CAPTCHA_SITE_KEY", "10000000-ffff-ffff-ffff-000000000001"),
        ])
        .unwrap()
        .fraud
        .captcha
        .unwrap();
        assert_eq!(captcha.provider, CaptchaProvider::Hcaptcha);
        assert_eq!(captcha.verify_url, "https://api.hcaptcha.com/siteverify");
        assert_eq!(captcha.min_score, 0.5);
        assert_eq!(captcha.on_request, CaptchaOnRequest::Elevated);
        assert_eq!(captcha.after_failed_attempts, 2);
        let local = config(&[
            ("CAPTCHA_PROVIDER", "Turnstile"),
            ("CAPTCHA_SITE_KEY", "1x00000000000000000000AA"),
            (
                "CAPTCHA_VERIFY_URL",
                "http://127.0.0.1:8090/turnstile/v0/siteverify",
            ),
            ("CAPTCHA_ON_REQUEST", "always"),
        ])
        .unwrap()
        .fraud
        .captcha
        .unwrap();
        assert_eq!(
            local.verify_url,
            "http://127.0.0.1:8090/turnstile/v0/siteverify"
        );
        assert_eq!(local.on_request, CaptchaOnRequest::Always);
    }

    #[test]
    fn lookups_are_on_once_a_line_type_is_blocked() {
        let lookup = config(&[("LOOKUP_BLOCKED_LINE_TYPES", "VoIP, toll-free")])
            .unwrap()
            .fraud
            .lookup
            .unwrap();
        assert_eq!(lookup.blocked, [LineType::Voip, LineType::TollFree].into());
        assert_eq!(lookup.url, "https://lookup.plivo.com");
        assert_eq!(lookup.cache_ttl, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn bad_fraud_settings_are_refused_with_the_variable_name() {
        for vars in [
            &[("CAPTCHA_PROVIDER", "recaptcha")][..],
            &[("CAPTCHA_PROVIDER", "friendly"), ("CAPTCHA_SITE_KEY", "k")],
            &[
                ("CAPTCHA_PROVIDER", "turnstile"),
                ("CAPTCHA_SITE_KEY", "k"),
                ("CAPTCHA_MIN_SCORE", "1.5"),
            ],
            &[
                ("CAPTCHA_PROVIDER", "turnstile"),
                ("CAPTCHA_SITE_KEY", "k"),
                ("CAPTCHA_ON_REQUEST", "sometimes"),
            ],
            &[
                ("CAPTCHA_PROVIDER", "turnstile"),
                ("CAPTCHA_SITE_KEY", "k"),
                ("CAPTCHA_VERIFY_URL", "localhost"),
            ],
            &[("PUMPING_PREFIX_DIGITS", "9")],
            &[("PUMPING_MIN_CONVERSION", "-0.1")],
            &[("PUMPING_BREAKER", "maybe")],
            &[("LOOKUP_BLOCKED_LINE_TYPES", "mobile")],
            &[
                ("LOOKUP_BLOCKED_LINE_TYPES", "voip"),
                ("PLIVO_LOOKUP_URL", "lookup.plivo.com"),
            ],
        ] {
            let err = config(vars).unwrap_err();
            let named = vars.iter().any(|(var, _)| err.to_string().starts_with(var))
                || err.to_string().starts_with("CAPTCHA_SITE_KEY");
            assert!(named, "{vars:?}: {err}");
        }
    }
}
