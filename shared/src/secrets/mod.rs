//! The service's secret: Plivo credentials, the token signing keys, the
//! code keys and the test numbers, read from AWS Secrets Manager at cold
//! start, again on a timer (`store`), and when Plivo says the credentials
//! stopped working (they were rotated).

mod store;

use std::{collections::HashMap, fmt};

use serde::Deserialize;

pub use store::SecretStore;

use crate::{
    domain::{CodeLength, OtpCode, PhoneNumber, PhoneTagKey},
    keys::{CodeKeys, DerivedKeyPosition, TokenAlgorithm, TokenKeyEntry, TokenKeys},
};

/// `signing_key` and every `code_keys` entry must carry HS256's 256 bits.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// The secret's JSON document, as stored. Only the Plivo fields are always
/// required; see `Secrets::parse` for when the others are.
#[derive(Deserialize)]
struct SecretDocument {
    plivo_auth_id: String,
    plivo_auth_token: String,
    #[serde(default)]
    signing_key: Option<String>,
    /// The main account's token, for callbacks signed `-Ma-` when the
    /// service runs on a subaccount.
    #[serde(default)]
    plivo_main_auth_token: Option<String>,
    /// ES256 keys, the first signing.
    #[serde(default)]
    token_keys: Vec<TokenKeyEntry>,
    /// `"first"` or `"last"`: adds a P-256 key derived from `signing_key`
    /// at that place among `token_keys` (what CloudFormation's template sets).
    #[serde(default)]
    derived_token_key: Option<String>,
    /// Material of the code keys, newest first.
    #[serde(default)]
    code_keys: Option<Vec<String>>,
    /// E.164 number → fixed code.
    #[serde(default)]
    test_numbers: HashMap<String, String>,
    /// The CAPTCHA provider's secret key, for its siteverify call.
    #[serde(default)]
    captcha_secret: Option<String>,
    /// What Redis key names are hashed with; defaults to `signing_key`.
    /// Never rotated: a new one would rename every phone's keys.
    #[serde(default)]
    phone_tag_key: Option<String>,
}

#[derive(Clone)]
pub struct PlivoCredentials {
    pub auth_id: String,
    pub auth_token: String,
    pub main_auth_token: Option<String>,
}

/// What the secret must agree with, from the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretRules {
    pub code_length: CodeLength,
    pub algorithm: TokenAlgorithm,
}

/// What the functions need from the secret, with the keys already built.
pub struct Secrets {
    pub plivo: PlivoCredentials,
    pub code_keys: CodeKeys,
    pub token_keys: TokenKeys,
    /// Names each phone's keys in Redis (a keyed hash, never the number),
    /// from `phone_tag_key` or else `signing_key`; unlike the code and token
    /// keys it never rotates.
    pub phone_tags: PhoneTagKey,
    /// The CAPTCHA provider's secret key (`captcha_secret`), when present.
    pub captcha_secret: Option<String>,
    /// Numbers with a fixed code and no SMS, kept out of the functions'
    /// environment (where anyone who can read the configuration sees them).
    pub test_numbers: HashMap<String, OtpCode>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read secret {secret_id} from Secrets Manager")]
    Fetch {
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading the secret again did not finish before the deadline")]
    TimedOut,
    #[error("secret {secret_id} has no SecretString")]
    NotAString { secret_id: String },
    /// Says where and what kind of problem, never the text: a parser's
    /// message can quote the secret's values.
    #[error("secret {secret_id} is not the expected JSON document: {reason}")]
    Malformed { secret_id: String, reason: String },
}

impl Secrets {
    pub fn parse(secret_id: &str, json: &str, rules: SecretRules) -> Result<Self, SecretsError> {
        let malformed = |reason: String| SecretsError::Malformed {
            secret_id: secret_id.to_owned(),
            reason,
        };
        let doc: SecretDocument = serde_json::from_str(json).map_err(|e| {
            malformed(format!(
                "{:?} error at line {} column {}; expected an object with string fields plivo_auth_id, plivo_auth_token and signing_key (see the README for the optional ones)",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        // The auth id goes into the Message API's URL path.
        if doc.plivo_auth_id.is_empty()
            || !doc.plivo_auth_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(malformed(
                "plivo_auth_id must be non-empty letters and digits".into(),
            ));
        }
        if doc.plivo_auth_token.is_empty() {
            return Err(malformed("plivo_auth_token is empty".into()));
        }
        let long_enough = |key: &str| key.len() >= MIN_SIGNING_KEY_BYTES;
        if doc.signing_key.as_deref().is_some_and(|k| !long_enough(k)) {
            return Err(malformed(format!(
                "signing_key must be at least {MIN_SIGNING_KEY_BYTES} bytes"
            )));
        }
        let derived = match doc.derived_token_key.as_deref() {
            None => None,
            Some("first") => Some(DerivedKeyPosition::First),
            Some("last") => Some(DerivedKeyPosition::Last),
            Some(_) => {
                return Err(malformed(
                    "derived_token_key must be \"first\" or \"last\"".into(),
                ));
            }
        };
        let token_keys = TokenKeys::build(
            rules.algorithm,
            doc.signing_key.as_deref(),
            &doc.token_keys,
            derived,
        )
        .map_err(malformed)?;
        let code_keys = match &doc.code_keys {
            Some(list) => {
                if let Some(i) = list.iter().position(|k| !long_enough(k)) {
                    return Err(malformed(format!(
                        "code_keys[{i}] must be at least {MIN_SIGNING_KEY_BYTES} bytes"
                    )));
                }
                CodeKeys::new(list.iter().map(|k| k.as_bytes()))
                    .ok_or_else(|| malformed("code_keys must not be empty".into()))?
            }
            None => {
                let key = doc.signing_key.as_deref().ok_or_else(|| {
                    malformed("signing_key is required when there are no code_keys".into())
                })?;
                CodeKeys::new([key.as_bytes()]).ok_or_else(|| malformed("no code key".into()))?
            }
        };
        let tag_material = doc
            .phone_tag_key
            .as_deref()
            .or(doc.signing_key.as_deref())
            .ok_or_else(|| {
                malformed("phone_tag_key or signing_key is required to name the Redis keys".into())
            })?;
        if !long_enough(tag_material) {
            return Err(malformed(format!(
                "phone_tag_key must be at least {MIN_SIGNING_KEY_BYTES} bytes"
            )));
        }
        Ok(Self {
            phone_tags: PhoneTagKey::derive(tag_material.as_bytes()),
            captcha_secret: doc.captcha_secret.filter(|s| !s.is_empty()),
            test_numbers: test_numbers(&doc.test_numbers, rules.code_length).map_err(malformed)?,
            plivo: PlivoCredentials {
                auth_id: doc.plivo_auth_id,
                auth_token: doc.plivo_auth_token,
                main_auth_token: doc.plivo_main_auth_token.filter(|t| !t.is_empty()),
            },
            code_keys,
            token_keys,
        })
    }
}

/// Each code must be exactly OTP_LENGTH digits, so a test number cannot be
/// a weaker way in. Errors mask the number and never show the code.
fn test_numbers(
    raw: &HashMap<String, String>,
    length: CodeLength,
) -> Result<HashMap<String, OtpCode>, String> {
    raw.iter()
        .map(|(number, code)| {
            let phone = PhoneNumber::parse(number)
                .map_err(|_| "a test_numbers key is not an E.164 number".to_owned())?;
            let code = OtpCode::parse(code, length).map_err(|_| {
                format!(
                    "the test_numbers code for {} must be exactly {} digits (OTP_LENGTH)",
                    phone.masked(),
                    length.get()
                )
            })?;
            Ok((phone.as_e164().to_owned(), code))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::SigningKey;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn parse(doc: serde_json::Value) -> Result<Secrets, SecretsError> {
        Secrets::parse("otp/dev", &doc.to_string(), SecretRules::default())
    }

    fn today() -> serde_json::Value {
        json!({"plivo_auth_id": "MAXXXXXXXXXXXXXXXXXX", "plivo_auth_token": "tok", "signing_key": KEY})
    }

    fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
        let mut doc = today();
        doc[field] = value;
        doc
    }

    #[test]
    fn a_secret_with_only_todays_fields_signs_hs256_with_the_code_key_from_signing_key() {
        let secrets = parse(today()).unwrap();
        assert_eq!(secrets.plivo.auth_id, "MAXXXXXXXXXXXXXXXXXX");
        assert!(matches!(secrets.token_keys.signing(), SigningKey::Hs256(_)));
        assert_eq!(secrets.token_keys.jwks(), r#"{"keys":[]}"#);
        let phone = PhoneNumber::parse("+14155552671").unwrap();
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        assert_eq!(
            secrets.code_keys.digest(&phone, &code),
            crate::domain::CodeKey::derive(KEY.as_bytes()).digest(&phone, &code)
        );
    }

    #[test]
    fn the_derived_token_key_flag_switches_to_es256_with_a_published_key() {
        let secrets = parse(with("derived_token_key", json!("first"))).unwrap();
        assert!(matches!(secrets.token_keys.signing(), SigningKey::Es256(_)));
        assert_eq!(secrets.token_keys.kids().len(), 1);
        assert!(parse(with("derived_token_key", json!(true))).is_err());
    }

    #[test]
    fn code_keys_replace_signing_key_as_code_key_material() {
        let secrets = parse(with("code_keys", json!(["n".repeat(32), KEY]))).unwrap();
        assert_eq!(secrets.code_keys.len(), 2);
        let phone = PhoneNumber::parse("+14155552671").unwrap();
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        let legacy = crate::domain::CodeKey::derive(KEY.as_bytes()).digest(&phone, &code);
        assert_ne!(secrets.code_keys.digest(&phone, &code), legacy);
        assert!(
            secrets
                .code_keys
                .candidates(&phone, &code)
                .contains(&legacy)
        );
    }

    #[test]
    fn signing_key_may_be_left_out_when_nothing_needs_it() {
        let mut doc = with("code_keys", json!([KEY]));
        doc.as_object_mut().unwrap().remove("signing_key");
        let err = parse(doc.clone()).unwrap_err().to_string();
        assert!(err.contains("signing_key is required for HS256"), "{err}");
        doc["token_keys"] = json!([{"kid": "k", "private_key": "not a pem"}]);
        let err = parse(doc).unwrap_err().to_string();
        assert!(err.contains("token_keys[0]"), "{err}");
    }

    #[test]
    fn test_numbers_in_the_secret_must_have_otp_length_digits() {
        let secrets = parse(with("test_numbers", json!({"+1 415 555 2671": "424242"}))).unwrap();
        assert_eq!(secrets.test_numbers["+14155552671"].expose(), "424242");
        let err = parse(with("test_numbers", json!({"+14155552671": "4242"})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly 6 digits"), "{err}");
        assert!(
            !err.contains("4242") && !err.contains("+14155552671"),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_short_keys() {
        let err = parse(with("signing_key", json!("short"))).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let err = parse(with("code_keys", json!([KEY, "short"]))).unwrap_err();
        assert!(err.to_string().contains("code_keys[1]"), "{err}");
        assert!(parse(with("code_keys", json!([]))).is_err());
    }

    #[test]
    fn parse_errors_never_quote_the_secret() {
        let json =
            r#"{"plivo_auth_id":"MA1","plivo_auth_token":12345678,"signing_key":"hunter2hunter2"}"#;
        let err = Secrets::parse("otp/dev", json, SecretRules::default())
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("12345678") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_an_auth_id_that_could_change_the_url_path() {
        assert!(parse(with("plivo_auth_id", json!("../../x"))).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let secrets = parse(today()).unwrap();
        assert_eq!(format!("{secrets:?}"), "Secrets(<redacted>)");
    }
}
