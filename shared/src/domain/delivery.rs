//! How a code reaches the person (the channel) and which send it was (the
//! send id that Plivo's callbacks carry back to us).

use std::fmt;

/// The channel a code is delivered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Sms,
    Voice,
}

impl Channel {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "sms" => Some(Self::Sms),
            "voice" => Some(Self::Voice),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one send: the store records it, and Plivo's callbacks name it
/// in their URL, so a receipt or a call can be matched to the live code.
/// 32 lowercase hex digits, random, so it says nothing about the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendId(String);

impl SendId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn parse(input: &str) -> Option<Self> {
        let valid = input.len() == 32
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The routes Plivo calls back, under the API's public base URL.
pub const ANSWER_PATH: &str = "/api/otp/voice/answer";
pub const HANGUP_PATH: &str = "/api/otp/voice/hangup";
pub const STATUS_PATH: &str = "/api/otp/status";

/// The public base URL of this API (`https://id.execute-api.region.amazonaws.com/stage`
/// or a custom domain), from which Plivo's callback URLs are made. Only
/// the send id (and a locale id, when the client chose one) travels in
/// them: no number, no code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackBase(String);

impl CallbackBase {
    /// `base` is trusted configuration or API Gateway's own domain and stage.
    pub fn new(base: &str) -> Self {
        Self(base.trim_end_matches('/').to_owned())
    }

    /// `locale` is a locale id (`pt-br`): letters, digits and hyphens.
    pub fn url(&self, path: &str, send: &SendId, locale: Option<&str>) -> String {
        match locale {
            Some(locale) => format!("{}{path}?send={}&locale={locale}", self.0, send.as_str()),
            None => format!("{}{path}?send={}", self.0, send.as_str()),
        }
    }

    /// The URL of `path` with the query it was called with, as Plivo signed it.
    pub fn called(&self, path: &str, query: Option<&str>) -> String {
        match query {
            Some(q) if !q.is_empty() => format!("{}{path}?{q}", self.0),
            _ => format!("{}{path}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_from_their_lowercase_names_only() {
        assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
        assert_eq!(Channel::parse("voice"), Some(Channel::Voice));
        for other in ["SMS", "Voice", "fax", "", " sms"] {
            assert_eq!(Channel::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_send_id_is_32_lowercase_hex_digits() {
        let id = SendId::generate();
        assert_eq!(SendId::parse(id.as_str()), Some(id));
        assert!(SendId::parse("0123456789ABCDEF0123456789abcdef").is_none());
        assert!(SendId::parse("0123").is_none());
        assert!(SendId::parse("../../0123456789abcdef0123456789a").is_none());
    }
}
