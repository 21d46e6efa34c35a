//! The service's secret: Plivo credentials, the signing key and, with a
//! CAPTCHA provider, its secret key, read from
//! AWS Secrets Manager once per cold start and again when Plivo says the
//! credentials stopped working (they were rotated).

use std::{
    fmt,
    sync::{Arc, RwLock},
};

use aws_sdk_secretsmanager::Client;
use jsonwebtoken::EncodingKey;
use serde::Deserialize;

use crate::domain::{CodeKey, PhoneTagKey, SealKey};

/// The signing key must carry at least HS256's 256 bits.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// The secret's JSON document, as stored.
#[derive(Deserialize)]
struct SecretDocument {
    plivo_auth_id: String,
    plivo_auth_token: String,
    signing_key: String,
    /// The main account's token, for callbacks signed `-Ma-` when the
    /// service runs on a subaccount.
    #[serde(default)]
    plivo_main_auth_token: Option<String>,
    /// The CAPTCHA provider's secret key, for its siteverify call.
    #[serde(default)]
    captcha_secret: Option<String>,
}

#[derive(Clone)]
pub struct PlivoCredentials {
    pub auth_id: String,
    pub auth_token: String,
    pub main_auth_token: Option<String>,
}

/// What the functions need from the secret, with the keys already derived.
pub struct Secrets {
    pub plivo: PlivoCredentials,
    pub code_key: CodeKey,
    pub seal_key: SealKey,
    /// Names each phone's keys in Redis; derived from `signing_key`, which
    /// is therefore never rotated (tokens and codes rotate by their lists).
    pub phone_tags: PhoneTagKey,
    pub token_key: EncodingKey,
    /// The CAPTCHA provider's secret key (`captcha_secret`), when present.
    pub captcha_secret: Option<String>,
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
    pub fn parse(secret_id: &str, json: &str) -> Result<Self, SecretsError> {
        let malformed = |reason: String| SecretsError::Malformed {
            secret_id: secret_id.to_owned(),
            reason,
        };
        let doc: SecretDocument = serde_json::from_str(json).map_err(|e| {
            malformed(format!(
                "{:?} error at line {} column {}; expected an object with string fields plivo_auth_id, plivo_auth_token and signing_key",
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
        if doc.signing_key.len() < MIN_SIGNING_KEY_BYTES {
            return Err(malformed(format!(
                "signing_key must be at least {MIN_SIGNING_KEY_BYTES} bytes"
            )));
        }
        let key = doc.signing_key.as_bytes();
        Ok(Self {
            plivo: PlivoCredentials {
                auth_id: doc.plivo_auth_id,
                auth_token: doc.plivo_auth_token,
                main_auth_token: doc.plivo_main_auth_token.filter(|t| !t.is_empty()),
            },
            code_key: CodeKey::derive(key),
            seal_key: SealKey::derive(key),
            phone_tags: PhoneTagKey::derive(key),
            token_key: EncodingKey::from_secret(key),
            captcha_secret: doc.captcha_secret.filter(|s| !s.is_empty()),
        })
    }
}

/// The current secret, shared by every invocation of one Lambda instance.
pub struct SecretStore {
    client: Client,
    secret_id: String,
    current: RwLock<Arc<Secrets>>,
}

impl SecretStore {
    pub async fn load(client: Client, secret_id: String) -> Result<Self, SecretsError> {
        let secrets = fetch(&client, &secret_id).await?;
        Ok(Self {
            client,
            secret_id,
            current: RwLock::new(Arc::new(secrets)),
        })
    }

    pub fn current(&self) -> Arc<Secrets> {
        // A poisoned lock still holds a complete Arc: the writer only swaps it.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the secret again and makes it current.
    pub async fn refresh(&self) -> Result<Arc<Secrets>, SecretsError> {
        let fresh = Arc::new(fetch(&self.client, &self.secret_id).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

async fn fetch(client: &Client, secret_id: &str) -> Result<Secrets, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SecretsError::Fetch {
            secret_id: secret_id.to_owned(),
            source: Box::new(e),
        })?;
    let json = output
        .secret_string()
        .ok_or_else(|| SecretsError::NotAString {
            secret_id: secret_id.to_owned(),
        })?;
    Secrets::parse(secret_id, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn parse_accepts_the_documented_json() {
        let json = format!(
            r#"{{"plivo_auth_id":"MAXXXXXXXXXXXXXXXXXX","plivo_auth_token":"tok","signing_key":"{KEY}"}}"#
        );
        let secrets = Secrets::parse("otp/dev", &json).unwrap();
        assert_eq!(secrets.plivo.auth_id, "MAXXXXXXXXXXXXXXXXXX");
    }

    #[test]
    fn parse_reads_the_optional_captcha_secret() {
        let json = format!(
            r#"{{"plivo_auth_id":"MA1","plivo_auth_token":"tok","signing_key":"{KEY}","captcha_secret":"0x00"}}"#
        );
        let secrets = Secrets::parse("otp/dev", &json).unwrap();
        assert_eq!(secrets.captcha_secret.as_deref(), Some("0x00"));
        let json =
            format!(r#"{{"plivo_auth_id":"MA1","plivo_auth_token":"tok","signing_key":"{KEY}"}}"#);
        assert!(
            Secrets::parse("otp/dev", &json)
                .unwrap()
                .captcha_secret
                .is_none()
        );
    }

    #[test]
    fn parse_refuses_a_short_signing_key() {
        let json = r#"{"plivo_auth_id":"MA1","plivo_auth_token":"tok","signing_key":"short"}"#;
        let err = Secrets::parse("otp/dev", json).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    }

    #[test]
    fn parse_errors_never_quote_the_secret() {
        let json =
            r#"{"plivo_auth_id":"MA1","plivo_auth_token":12345678,"signing_key":"hunter2hunter2"}"#;
        let err = Secrets::parse("otp/dev", json).unwrap_err().to_string();
        assert!(
            !err.contains("12345678") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_an_auth_id_that_could_change_the_url_path() {
        let json = format!(
            r#"{{"plivo_auth_id":"../../x","plivo_auth_token":"tok","signing_key":"{KEY}"}}"#
        );
        assert!(Secrets::parse("otp/dev", &json).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let json =
            format!(r#"{{"plivo_auth_id":"MA1","plivo_auth_token":"tok","signing_key":"{KEY}"}}"#);
        let secrets = Secrets::parse("otp/dev", &json).unwrap();
        assert_eq!(format!("{secrets:?}"), "Secrets(<redacted>)");
    }
}
