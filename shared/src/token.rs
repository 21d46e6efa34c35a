//! The verification token: a JWT saying "this phone number was verified".
//! ES256 with the key id in its header, so a backend checks it with the
//! published keys alone; or HS256 with the shared `signing_key`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use crate::{
    config::TokenConfig,
    domain::PhoneNumber,
    keys::{JwsError, SigningKey, TokenKeys},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// `TOKEN_AUDIENCE`, when set: the backend the token is meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub sub: String,
    pub phone_number: String,
    pub phone_number_verified: bool,
    pub iat: u64,
    pub exp: u64,
    /// Unique per token, so a backend can refuse a replayed one.
    pub jti: String,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot sign the verification token (HS256)")]
    Hs256(#[from] jsonwebtoken::errors::Error),
    #[error("cannot sign the verification token (ES256)")]
    Es256(#[from] JwsError),
}

pub struct TokenSigner {
    issuer: String,
    audience: Option<String>,
    ttl: Duration,
}

impl TokenSigner {
    pub fn new(config: &TokenConfig) -> Self {
        Self {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.ttl,
        }
    }

    /// Signs with the first key of `keys`, naming it in the header (`kid`).
    pub fn sign(&self, keys: &TokenKeys, phone: &PhoneNumber) -> Result<IssuedToken, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: phone.as_e164().to_owned(),
            phone_number: phone.as_e164().to_owned(),
            phone_number_verified: true,
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = match keys.signing() {
            // As before ES256 existed: no kid, nothing else a backend could trip on.
            SigningKey::Hs256(key) => {
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)?
            }
            SigningKey::Es256(signer) => {
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(signer.kid().to_owned());
                signer.jws(&header, &claims)?
            }
        };
        Ok(IssuedToken {
            token,
            expires_in: self.ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};

    use super::*;
    use crate::keys::{DerivedKeyPosition, TokenAlgorithm};

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn signer(audience: Option<&str>) -> TokenSigner {
        TokenSigner::new(&TokenConfig {
            issuer: "otp-service".into(),
            audience: audience.map(String::from),
            ttl: Duration::from_secs(600),
            algorithm: TokenAlgorithm::Auto,
        })
    }

    fn keys(algorithm: TokenAlgorithm, derived: Option<DerivedKeyPosition>) -> TokenKeys {
        TokenKeys::build(algorithm, Some(KEY), &[], derived).unwrap()
    }

    #[test]
    fn an_hs256_token_verifies_with_the_shared_key_and_carries_the_claims() {
        let phone = PhoneNumber::parse("+14155552671").unwrap();
        let issued = signer(None)
            .sign(&keys(TokenAlgorithm::Hs256, None), &phone)
            .unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!((header.alg, header.kid), (Algorithm::HS256, None));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["otp-service"]);
        let claims = jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_secret(KEY.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.sub, "+14155552671");
        assert_eq!(claims.phone_number, "+14155552671");
        assert!(claims.phone_number_verified);
        assert_eq!(claims.exp - claims.iat, 600);
        assert_eq!(claims.aud, None);
        let other = DecodingKey::from_secret(b"another key, another key, another");
        assert!(jsonwebtoken::decode::<Claims>(&issued.token, &other, &validation).is_err());
    }

    #[test]
    fn an_es256_token_names_its_key_carries_the_audience_and_verifies_with_the_jwk() {
        let keys = keys(TokenAlgorithm::Auto, Some(DerivedKeyPosition::First));
        let phone = PhoneNumber::parse("+34612345678").unwrap();
        let issued = signer(Some("https://api.example.com"))
            .sign(&keys, &phone)
            .unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(keys.kids()[0].as_str()));
        let set: JwkSet = serde_json::from_str(keys.jwks()).unwrap();
        let jwk = set.find(&keys.kids()[0]).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&["otp-service"]);
        validation.set_audience(&["https://api.example.com"]);
        let claims = jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.aud.as_deref(), Some("https://api.example.com"));
        validation.set_audience(&["https://other.example.com"]);
        assert!(
            jsonwebtoken::decode::<Claims>(
                &issued.token,
                &DecodingKey::from_jwk(jwk).unwrap(),
                &validation
            )
            .is_err()
        );
    }
}
