//! Configuration from the environment, read once per cold start. Every
//! problem names the variable, so a bad deployment fails with one clear line.

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use crate::{
    domain::{Channel, CodeLength, NumberType, OtpCode, PhoneNumber},
    keys::TokenAlgorithm,
    locale::Messages,
    message::{MessageTemplate, VoiceTemplate},
};

mod fraud;

pub use fraud::{
    BreakerConfig, CaptchaConfig, CaptchaOnRequest, CaptchaProvider, FraudConfig, LookupConfig,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub secret_id: String,
    pub policy: OtpPolicy,
    pub token: TokenConfig,
    pub redis: RedisConfig,
    pub plivo: PlivoConfig,
    /// The SMS and call texts of every locale.
    pub messages: Messages,
    pub voice: VoiceConfig,
    /// How often a warm instance reads the secret again.
    pub secret_refresh: Duration,
    /// Where Plivo calls back (custom domains, local development); when
    /// unset, the API Gateway domain and stage of the incoming event.
    pub public_base_url: Option<String>,
    /// CAPTCHA step-up, the pumping breaker and line-type screening.
    pub fraud: FraudConfig,
}

/// When a call is placed without being asked for (what calls say is in
/// `Config::messages`).
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// `VOICE_FALLBACK=auto`: an SMS that Plivo reports undelivered is
    /// followed by one call that speaks the same code.
    pub fallback: bool,
}

/// The verification rules; see the README's table for what each one stops.
#[derive(Debug, Clone)]
pub struct OtpPolicy {
    pub code_length: CodeLength,
    pub code_ttl: Duration,
    pub max_attempts: u32,
    /// The first lock's length; each further lock within a day doubles it.
    pub lockout: Duration,
    /// Wrong guesses at live codes a phone may make in 24 hours, in all.
    pub max_failures_per_day: u32,
    /// How long wrong guesses are remembered after the latest one. A new code
    /// does not reset them, so asking for codes cannot buy more guesses.
    pub failure_window: Duration,
    pub resend_cooldown: Duration,
    pub max_sends_per_hour: u32,
    /// ISO alpha-2 codes; empty means every country.
    pub allowed_countries: BTreeSet<String>,
    /// The same for calls, which cost more and draw toll fraud.
    pub voice_allowed_countries: BTreeSet<String>,
    /// The channels on offer (`OTP_CHANNELS`).
    pub channels: BTreeSet<Channel>,
    /// The line types each channel may reach, by libphonenumber's plan.
    pub sms_number_types: BTreeSet<NumberType>,
    pub voice_number_types: BTreeSet<NumberType>,
    /// Numbers exempt from the type and range rules: named on purpose.
    pub trusted_numbers: BTreeSet<String>,
    /// Calls allowed from one source IP per hour, shared by all instances.
    pub ip_max_sends_per_hour: u32,
    pub ip_max_verifies_per_hour: u32,
    /// The same per IPv6 /48 (a site's block), by default ten times more.
    pub ipv6_48_max_sends_per_hour: u32,
    pub ipv6_48_max_verifies_per_hour: u32,
    /// Numbers with a fixed code and no SMS (app-store review, staging).
    pub test_numbers: HashMap<String, OtpCode>,
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub issuer: String,
    /// `aud`, when the tokens are meant for one backend.
    pub audience: Option<String>,
    pub ttl: Duration,
    pub algorithm: TokenAlgorithm,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    pub cluster: bool,
    pub key_prefix: String,
    /// Bounds both connecting and each reply, so no call outlives the API.
    pub timeout: Duration,
    /// PEM file of extra CAs to trust for `rediss://` (private CAs, tests).
    pub tls_ca_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PlivoConfig {
    pub api_url: String,
    pub sender: String,
    /// The caller id of calls: a voice-enabled Plivo number.
    pub voice_sender: String,
    pub attempt_timeout: Duration,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required")]
    Missing { var: &'static str },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests can configure without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let code_length = {
            let digits = env.number("OTP_LENGTH", 6, 6, 10)?;
            CodeLength::new(digits as usize).ok_or(ConfigError::Invalid {
                var: "OTP_LENGTH",
                reason: "must be between 6 and 10".into(),
            })?
        };
        let code_ttl = env.seconds("OTP_TTL_SECONDS", 300, 30, 600)?;
        let allowed_countries = env.countries("ALLOWED_COUNTRIES")?;
        let ip_sends = env.number("IP_MAX_SENDS_PER_HOUR", 20, 1, 100_000)?;
        let ip_verifies = env.number("IP_MAX_VERIFIES_PER_HOUR", 60, 1, 100_000)?;
        let policy = OtpPolicy {
            code_length,
            code_ttl,
            max_attempts: env.number("OTP_MAX_ATTEMPTS", 5, 1, 100)? as u32,
            lockout: env.seconds("OTP_LOCKOUT_SECONDS", 900, 1, 86_400)?,
            max_failures_per_day: env.number("OTP_MAX_FAILURES_PER_DAY", 20, 1, 100)? as u32,
            failure_window: Duration::from_secs(3_600),
            resend_cooldown: env.seconds("OTP_RESEND_COOLDOWN_SECONDS", 30, 0, 3_600)?,
            max_sends_per_hour: env.number("OTP_MAX_SENDS_PER_HOUR", 5, 1, 1_000)? as u32,
            voice_allowed_countries: match env.optional("VOICE_ALLOWED_COUNTRIES") {
                Some(_) => env.countries("VOICE_ALLOWED_COUNTRIES")?,
                None => allowed_countries.clone(),
            },
            allowed_countries,
            channels: env.channels("OTP_CHANNELS")?,
            sms_number_types: env
                .number_types("ALLOWED_NUMBER_TYPES", "mobile,fixed_line_or_mobile")?,
            voice_number_types: env.number_types(
                "VOICE_ALLOWED_NUMBER_TYPES",
                "mobile,fixed_line_or_mobile,fixed_line",
            )?,
            trusted_numbers: env.phone_list("TRUSTED_PHONE_NUMBERS")?,
            ip_max_sends_per_hour: ip_sends as u32,
            ip_max_verifies_per_hour: ip_verifies as u32,
            ipv6_48_max_sends_per_hour: env.number(
                "IPV6_48_MAX_SENDS_PER_HOUR",
                ip_sends * 10,
                1,
                1_000_000,
            )? as u32,
            ipv6_48_max_verifies_per_hour: env.number(
                "IPV6_48_MAX_VERIFIES_PER_HOUR",
                ip_verifies * 10,
                1,
                1_000_000,
            )? as u32,
            test_numbers: env.test_numbers("TEST_PHONE_NUMBERS", code_length)?,
        };
        let token = TokenConfig {
            issuer: env.text("TOKEN_ISSUER", "otp-service")?,
            audience: env.optional("TOKEN_AUDIENCE"),
            ttl: env.seconds("TOKEN_TTL_SECONDS", 600, 30, 86_400)?,
            algorithm: match env.optional("TOKEN_ALGORITHM") {
                None => TokenAlgorithm::Auto,
                Some(_) => match env.choice("TOKEN_ALGORITHM", &["es256", "hs256"], "es256")? {
                    "hs256" => TokenAlgorithm::Hs256,
                    _ => TokenAlgorithm::Es256,
                },
            },
        };
        let redis = RedisConfig {
            url: env.redis_url()?,
            cluster: env.flag("REDIS_CLUSTER")?,
            key_prefix: env.text("REDIS_KEY_PREFIX", "otp")?,
            timeout: Duration::from_millis(env.number("REDIS_TIMEOUT_MS", 1_000, 50, 30_000)?),
            tls_ca_file: env.optional("REDIS_TLS_CA_FILE"),
        };
        let sender = env.required("PLIVO_SENDER")?;
        let plivo = PlivoConfig {
            voice_sender: env.text("PLIVO_VOICE_SENDER", &sender)?,
            api_url: env
                .text("PLIVO_API_URL", "https://api.plivo.com")?
                .trim_end_matches('/')
                .to_owned(),
            sender,
            attempt_timeout: Duration::from_millis(env.number(
                "PLIVO_TIMEOUT_MS",
                3_000,
                100,
                30_000,
            )?),
            max_attempts: env.number("PLIVO_MAX_ATTEMPTS", 3, 1, 10)? as u32,
        };
        if !plivo.api_url.starts_with("http://") && !plivo.api_url.starts_with("https://") {
            return Err(ConfigError::Invalid {
                var: "PLIVO_API_URL",
                reason: "must be an http:// or https:// URL".into(),
            });
        }
        let brand = env.text("OTP_BRAND", "app")?;
        let voice = VoiceConfig {
            fallback: env.choice("VOICE_FALLBACK", &["off", "auto"], "off")? == "auto",
        };
        let english_voice = VoiceTemplate::new(
            env.text(
                "VOICE_MESSAGE_TEMPLATE",
                "Your {brand} verification code is {code}. Once again, your code is {code}.",
            )?,
            brand.clone(),
        )?;
        let public_base_url = env.base_url("PUBLIC_BASE_URL")?;
        let english = MessageTemplate::new(
            env.text(
                "OTP_MESSAGE_TEMPLATE",
                "Your {brand} verification code is {code}. It expires in {minutes} minutes.",
            )?,
            brand,
            env.optional("WEBOTP_DOMAIN"),
            env.optional("ANDROID_APP_HASH"),
        )?;
        let messages = Messages::new(
            english,
            english_voice,
            env.language("VOICE_LANGUAGE", "en-US")?,
            env.optional("OTP_MESSAGE_TEMPLATES").as_deref(),
        )?;
        Ok(Self {
            secret_id: env.required("OTP_SECRET_ID")?,
            policy,
            token,
            redis,
            plivo,
            messages,
            voice,
            secret_refresh: env.seconds("SECRET_REFRESH_SECONDS", 300, 1, 3_600)?,
            public_base_url,
            fraud: FraudConfig::from_env(&env)?,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// Unset and blank are the same: SAM passes empty strings for parameters
    /// left at an empty default.
    fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var).ok_or(ConfigError::Missing { var })
    }

    fn text(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self.optional(var).unwrap_or_else(|| default.to_owned()))
    }

    fn number(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(default);
        };
        let invalid = || ConfigError::Invalid {
            var,
            reason: format!("must be a whole number from {min} to {max}, got {raw:?}"),
        };
        let value: u64 = raw.parse().map_err(|_| invalid())?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(invalid())
        }
    }

    fn seconds(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(var, default, min, max).map(Duration::from_secs)
    }

    fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self
            .optional(var)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                var,
                reason: format!("must be true or false, got {other:?}"),
            }),
        }
    }

    fn countries(&self, var: &'static str) -> Result<BTreeSet<String>, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(BTreeSet::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                    Ok(c.to_ascii_uppercase())
                } else {
                    Err(ConfigError::Invalid {
                        var,
                        reason: format!("{c:?} is not an ISO 3166 alpha-2 country code"),
                    })
                }
            })
            .collect()
    }

    /// `+15005550006:123456,+15005550007:654321`: each code must be exactly
    /// OTP_LENGTH digits, so a test number cannot be a weaker way in.
    fn test_numbers(
        &self,
        var: &'static str,
        length: CodeLength,
    ) -> Result<HashMap<String, OtpCode>, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(HashMap::new());
        };
        let invalid = |reason: String| ConfigError::Invalid { var, reason };
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (number, code) = entry
                    .split_once(':')
                    .ok_or_else(|| invalid("entries must look like +15005550006:123456".into()))?;
                let phone = PhoneNumber::parse(number.trim())
                    .map_err(|e| invalid(format!("an entry's number is not valid E.164: {e}")))?;
                let code = OtpCode::parse(code.trim(), length).map_err(|_| {
                    invalid(format!(
                        "the code of the entry for {} must be exactly {} digits (OTP_LENGTH)",
                        phone.masked(),
                        length.get()
                    ))
                })?;
                Ok((phone.as_e164().to_owned(), code))
            })
            .collect()
    }

    fn channels(&self, var: &'static str) -> Result<BTreeSet<Channel>, ConfigError> {
        let raw = self.text(var, "sms,voice")?;
        let channels = raw
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                Channel::parse(&c.to_ascii_lowercase()).ok_or_else(|| ConfigError::Invalid {
                    var,
                    reason: format!("{c:?} is not a channel; use sms and/or voice"),
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if channels.is_empty() {
            return Err(ConfigError::Invalid {
                var,
                reason: "must name at least one channel".into(),
            });
        }
        Ok(channels)
    }

    fn number_types(
        &self,
        var: &'static str,
        default: &str,
    ) -> Result<BTreeSet<NumberType>, ConfigError> {
        let raw = self.text(var, default)?;
        raw.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                NumberType::parse(&t.to_ascii_lowercase()).ok_or_else(|| ConfigError::Invalid {
                    var,
                    reason: format!(
                        "{t:?} is not a libphonenumber type; use {}",
                        NumberType::ALL.map(NumberType::name).join(", ")
                    ),
                })
            })
            .collect()
    }

    /// A comma list of E.164 numbers, normalised.
    fn phone_list(&self, var: &'static str) -> Result<BTreeSet<String>, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(BTreeSet::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                PhoneNumber::parse(n)
                    .map(|p| p.as_e164().to_owned())
                    .map_err(|e| ConfigError::Invalid {
                        var,
                        reason: format!("an entry is not valid E.164: {e}"),
                    })
            })
            .collect()
    }

    fn choice(
        &self,
        var: &'static str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(default);
        };
        let raw = raw.to_ascii_lowercase();
        allowed
            .iter()
            .find(|a| **a == raw)
            .copied()
            .ok_or_else(|| ConfigError::Invalid {
                var,
                reason: format!("must be one of {}, got {raw:?}", allowed.join(", ")),
            })
    }

    /// A BCP 47 tag as Plivo's `<Speak language>` takes it (`en-US`).
    fn language(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let tag = self.text(var, default)?;
        let valid = tag.len() <= 16
            && tag.split('-').all(|part| {
                !part.is_empty()
                    && part.len() <= 8
                    && part.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if valid {
            Ok(tag)
        } else {
            Err(ConfigError::Invalid {
                var,
                reason: format!("{tag:?} is not a language tag such as en-US"),
            })
        }
    }

    /// An http(s) origin, optionally with a path, without a trailing slash.
    fn base_url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(None);
        };
        let url = raw.trim_end_matches('/').to_owned();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !url.contains(['?', '#', ' ']) => Ok(Some(url)),
            _ => Err(ConfigError::Invalid {
                var,
                reason: "must be an http:// or https:// URL with no query, e.g. https://auth.example.com".into(),
            }),
        }
    }

    fn redis_url(&self) -> Result<String, ConfigError> {
        let url = self.required("REDIS_URL")?;
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(url)
        } else {
            Err(ConfigError::Invalid {
                var: "REDIS_URL",
                reason: "must start with redis:// or rediss://".into(),
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
