//! The SMS text: a template (one per locale, see `locale`), plus the lines
//! that let browsers (WebOTP) and Android (SMS Retriever) fill the code in
//! by themselves, whatever the language.

use crate::{config::ConfigError, domain::OtpCode};

/// What a call speaks: the template with `{code}` read out digit by digit
/// ("1, 2, 3, 4, 5, 6"), since text-to-speech reads "123456" as a number.
#[derive(Debug, Clone)]
pub struct VoiceTemplate {
    template: String,
    brand: String,
}

impl VoiceTemplate {
    pub fn new(template: String, brand: String) -> Result<Self, ConfigError> {
        if !template.contains("{code}") {
            return Err(ConfigError::Invalid {
                var: "VOICE_MESSAGE_TEMPLATE",
                reason: "must contain {code}".into(),
            });
        }
        Ok(Self { template, brand })
    }

    /// The same brand with another text; `var` names where the text came from.
    pub fn with_text(&self, var: &'static str, template: String) -> Result<Self, ConfigError> {
        if !template.contains("{code}") {
            return Err(ConfigError::Invalid {
                var,
                reason: "every voice text must contain {code}".into(),
            });
        }
        Ok(Self {
            template,
            brand: self.brand.clone(),
        })
    }

    pub fn render(&self, code: &OtpCode) -> String {
        let spoken = code
            .expose()
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(", ");
        self.template
            .replace("{brand}", &self.brand)
            .replace("{code}", &spoken)
    }
}

#[derive(Debug, Clone)]
pub struct MessageTemplate {
    template: String,
    brand: String,
    webotp_domain: Option<String>,
    android_app_hash: Option<String>,
}

impl MessageTemplate {
    pub fn new(
        template: String,
        brand: String,
        webotp_domain: Option<String>,
        android_app_hash: Option<String>,
    ) -> Result<Self, ConfigError> {
        if !template.contains("{code}") {
            return Err(ConfigError::Invalid {
                var: "OTP_MESSAGE_TEMPLATE",
                reason: "must contain {code}".into(),
            });
        }
        if let Some(domain) = &webotp_domain {
            let host_like = domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
            if !host_like {
                return Err(ConfigError::Invalid {
                    var: "WEBOTP_DOMAIN",
                    reason: "must be a bare host such as example.com (no scheme or path)".into(),
                });
            }
        }
        if let Some(hash) = &android_app_hash {
            let valid = hash.len() == 11
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
            if !valid {
                return Err(ConfigError::Invalid {
                    var: "ANDROID_APP_HASH",
                    reason: "must be the 11-character app signature hash".into(),
                });
            }
        }
        Ok(Self {
            template,
            brand,
            webotp_domain,
            android_app_hash,
        })
    }

    /// The same brand and autofill lines with another text; `var` names
    /// where the text came from.
    pub fn with_text(&self, var: &'static str, template: String) -> Result<Self, ConfigError> {
        if !template.contains("{code}") {
            return Err(ConfigError::Invalid {
                var,
                reason: "every template must contain {code}".into(),
            });
        }
        Ok(Self {
            template,
            ..self.clone()
        })
    }

    pub fn render(&self, code: &OtpCode, ttl_seconds: u64) -> String {
        let minutes = ttl_seconds.div_ceil(60).to_string();
        let mut text = self
            .template
            .replace("{brand}", &self.brand)
            .replace("{minutes}", &minutes)
            .replace("{code}", code.expose());
        if let Some(hash) = &self.android_app_hash {
            text.push_str("\n\n");
            text.push_str(hash);
        }
        // WebOTP only reads the message's last line, so it goes last.
        if let Some(domain) = &self.webotp_domain {
            text.push_str(if self.android_app_hash.is_some() {
                "\n"
            } else {
                "\n\n"
            });
            text.push('@');
            text.push_str(domain);
            text.push_str(" #");
            text.push_str(code.expose());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CodeLength;

    fn code() -> OtpCode {
        OtpCode::parse("042424", CodeLength::default()).unwrap()
    }

    fn template(domain: Option<&str>, hash: Option<&str>) -> MessageTemplate {
        MessageTemplate::new(
            "Your {brand} verification code is {code}. It expires in {minutes} minutes.".into(),
            "Acme".into(),
            domain.map(String::from),
            hash.map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn a_call_reads_the_code_digit_by_digit_twice() {
        let voice = VoiceTemplate::new(
            "Your {brand} verification code is {code}. Once again, your code is {code}.".into(),
            "Acme".into(),
        )
        .unwrap();
        assert_eq!(
            voice.render(&code()),
            "Your Acme verification code is 0, 4, 2, 4, 2, 4. Once again, your code is 0, 4, 2, 4, 2, 4."
        );
    }

    #[test]
    fn render_fills_brand_code_and_minutes_rounded_up() {
        assert_eq!(
            template(None, None).render(&code(), 90),
            "Your Acme verification code is 042424. It expires in 2 minutes."
        );
    }

    #[test]
    fn render_ends_with_the_webotp_line_after_the_android_hash() {
        let text = template(Some("login.example.com"), Some("FA+9qCX9VSu")).render(&code(), 300);
        assert_eq!(
            text,
            "Your Acme verification code is 042424. It expires in 5 minutes.\n\nFA+9qCX9VSu\n@login.example.com #042424"
        );
    }

    #[test]
    fn a_template_without_the_code_is_refused() {
        let err =
            MessageTemplate::new("Hello {brand}".into(), "Acme".into(), None, None).unwrap_err();
        assert!(err.to_string().starts_with("OTP_MESSAGE_TEMPLATE"));
    }

    #[test]
    fn a_webotp_domain_with_a_scheme_is_refused() {
        let err = MessageTemplate::new(
            "{code}".into(),
            "Acme".into(),
            Some("https://x.com".into()),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("WEBOTP_DOMAIN"));
    }
}
