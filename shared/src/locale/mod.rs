//! Messages in the person's language. The locale is the request's
//! `"locale"` when the service has it (or a close one: `es-MX` gets `es`),
//! else the one of the number's country (+34 gets Spanish), else English.
//! An unknown locale is never an error. `OTP_MESSAGE_TEMPLATES` adds
//! locales or replaces the built-in texts.

mod builtin;
mod segments;
mod tag;

use std::collections::HashMap;

use serde_json::Value;

pub use builtin::BUILTIN;
pub use segments::{Encoding, Segments, segments};

use crate::{
    config::ConfigError,
    domain::OtpCode,
    message::{MessageTemplate, VoiceTemplate},
};

const VAR: &str = "OTP_MESSAGE_TEMPLATES";
/// The locale of last resort, whose texts are `OTP_MESSAGE_TEMPLATE` and
/// `VOICE_MESSAGE_TEMPLATE`.
const FALLBACK: &str = "en";

/// A locale the service has texts for, as its lowercase id (`pt-br`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale(String);

impl Locale {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a call says: Plivo's `<Speak language>` and the text.
#[derive(Debug, Clone)]
struct Voice {
    language: String,
    template: VoiceTemplate,
}

/// Every locale's SMS text, and the call's text where there is one.
#[derive(Debug, Clone)]
pub struct Messages {
    sms: HashMap<String, MessageTemplate>,
    voice: HashMap<String, Voice>,
    /// English, also kept apart so a lookup always has an answer.
    fallback_sms: MessageTemplate,
    fallback_voice: Voice,
}

impl Messages {
    /// `english` and `english_voice` (in `voice_language`) are the fallback;
    /// `overrides` is `OTP_MESSAGE_TEMPLATES`, if set.
    pub fn new(
        english: MessageTemplate,
        english_voice: VoiceTemplate,
        voice_language: String,
        overrides: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let fallback_voice = Voice {
            language: voice_language,
            template: english_voice.clone(),
        };
        let mut messages = Self {
            sms: HashMap::new(),
            voice: HashMap::new(),
            fallback_sms: english.clone(),
            fallback_voice: fallback_voice.clone(),
        };
        for builtin in BUILTIN {
            let id = builtin.id.to_ascii_lowercase();
            let sms = english.with_text(VAR, builtin.sms.to_owned())?;
            messages.sms.insert(id.clone(), sms);
            if let Some((language, text)) = builtin.voice {
                let template = english_voice.with_text(VAR, text.to_owned())?;
                let language = language.to_owned();
                messages.voice.insert(id, Voice { language, template });
            }
        }
        messages.sms.insert(FALLBACK.to_owned(), english.clone());
        messages.voice.insert(FALLBACK.to_owned(), fallback_voice);
        if let Some(json) = overrides {
            messages.apply(json, &english, &english_voice)?;
        }
        // An override of `en` is the fallback too.
        if let Some(sms) = messages.sms.get(FALLBACK) {
            messages.fallback_sms = sms.clone();
        }
        if let Some(voice) = messages.voice.get(FALLBACK) {
            messages.fallback_voice = voice.clone();
        }
        Ok(messages)
    }

    /// `{"es": "sms text", "ca": {"sms": …, "voice": …, "voice_language": "ca-ES"}}`.
    fn apply(
        &mut self,
        json: &str,
        english: &MessageTemplate,
        english_voice: &VoiceTemplate,
    ) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { var: VAR, reason };
        let Ok(Value::Object(entries)) = serde_json::from_str::<Value>(json) else {
            return Err(invalid(
                "must be a JSON object of locale to template, e.g. {\"es\": \"Tu código: {code}\"}"
                    .into(),
            ));
        };
        for (key, entry) in entries {
            let id = tag::normalize(&key).ok_or_else(|| {
                invalid(format!("{key:?} is not a language tag such as es or pt-BR"))
            })?;
            let text = |value: Option<&Value>, what: &str| -> Result<Option<String>, ConfigError> {
                match value {
                    None => Ok(None),
                    Some(Value::String(t)) if t.contains("{code}") => Ok(Some(t.clone())),
                    Some(_) => Err(invalid(format!(
                        "the {what} for {key} must be a string containing {{code}}"
                    ))),
                }
            };
            let (sms, voice, language) = match &entry {
                Value::String(_) => (text(Some(&entry), "text")?, None, None),
                Value::Object(parts)
                    if parts
                        .keys()
                        .all(|k| ["sms", "voice", "voice_language"].contains(&k.as_str())) =>
                {
                    (
                        text(parts.get("sms"), "sms text")?,
                        text(parts.get("voice"), "voice text")?,
                        parts
                            .get("voice_language")
                            .map(|l| {
                                l.as_str().filter(|l| language_tag(l)).ok_or_else(|| {
                                    invalid(format!(
                                        "the voice_language for {key} must be a tag such as ca-ES"
                                    ))
                                })
                            })
                            .transpose()?,
                    )
                }
                _ => {
                    return Err(invalid(format!(
                        "the entry for {key} must be a string, or an object with sms, voice and voice_language"
                    )));
                }
            };
            if let Some(sms) = sms {
                self.sms.insert(id.clone(), english.with_text(VAR, sms)?);
            } else if !self.sms.contains_key(&id) {
                return Err(invalid(format!(
                    "{key} is a new locale: it needs an sms text"
                )));
            }
            if let Some(text) = voice {
                let language = match (language, self.voice.get(&id)) {
                    (Some(language), _) => language.to_owned(),
                    (None, Some(builtin)) => builtin.language.clone(),
                    (None, None) => {
                        return Err(invalid(format!(
                            "the voice text for {key} needs a voice_language (Plivo's <Speak language>)"
                        )));
                    }
                };
                let template = english_voice.with_text(VAR, text)?;
                self.voice.insert(id, Voice { language, template });
            }
        }
        Ok(())
    }

    /// The request's `locale` if the service has it (or a close one), else
    /// the language of the number's `country`.
    pub fn resolve(&self, requested: Option<&str>, country: Option<&str>) -> Locale {
        requested
            .and_then(tag::normalize)
            .and_then(|tag| self.lookup(&tag))
            .unwrap_or_else(|| self.for_country(country))
    }

    /// The locale of a number of `country` that asked for none.
    pub fn for_country(&self, country: Option<&str>) -> Locale {
        country
            .and_then(|country| {
                let language = builtin::country_language(country)?;
                self.lookup(&tag::normalize(&format!("{language}-{country}"))?)
            })
            .unwrap_or_else(|| Locale(FALLBACK.to_owned()))
    }

    /// A locale id as this service writes it (in callback URLs), if known.
    pub fn known(&self, id: &str) -> Option<Locale> {
        self.sms.contains_key(id).then(|| Locale(id.to_owned()))
    }

    fn lookup(&self, tag: &str) -> Option<Locale> {
        tag::candidates(tag)
            .into_iter()
            .find(|id| self.sms.contains_key(id))
            .map(Locale)
    }

    pub fn sms(&self, locale: &Locale, code: &OtpCode, ttl_seconds: u64) -> String {
        self.sms_template(locale).render(code, ttl_seconds)
    }

    fn sms_template(&self, locale: &Locale) -> &MessageTemplate {
        self.sms.get(locale.as_str()).unwrap_or(&self.fallback_sms)
    }

    /// Plivo's `<Speak language>` and the text of a call in `locale`, or in
    /// English when Plivo cannot speak that language.
    pub fn voice(&self, locale: &Locale, code: &OtpCode) -> (&str, String) {
        let voice = self.voice_of(locale);
        (&voice.language, voice.template.render(code))
    }

    /// The language calls fall back to (what `VOICE_LANGUAGE` says).
    pub fn fallback_voice_language(&self) -> &str {
        &self.fallback_voice.language
    }

    fn voice_of(&self, locale: &Locale) -> &Voice {
        self.voice
            .get(locale.as_str())
            .unwrap_or(&self.fallback_voice)
    }

    /// Every locale with an SMS text, sorted.
    pub fn locales(&self) -> Vec<Locale> {
        let mut ids: Vec<_> = self.sms.keys().cloned().map(Locale).collect();
        ids.sort_by(|a, b| a.0.cmp(&b.0));
        ids
    }
}

/// Plivo's `<Speak language>` values: `en-US`, `arb`, `cmn-CN`.
fn language_tag(tag: &str) -> bool {
    tag.len() <= 16
        && tag
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests;
