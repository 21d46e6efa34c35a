//! The verification token: an HS256 JWT saying "this phone number was
//! verified", which the client's backend checks with the shared signing key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::{config::TokenConfig, domain::PhoneNumber};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
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
#[error("cannot sign the verification token")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

pub struct TokenSigner {
    issuer: String,
    ttl: Duration,
}

impl TokenSigner {
    pub fn new(config: &TokenConfig) -> Self {
        Self {
            issuer: config.issuer.clone(),
            ttl: config.ttl,
        }
    }

    pub fn sign(&self, key: &EncodingKey, phone: &PhoneNumber) -> Result<IssuedToken, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: phone.as_e164().to_owned(),
            phone_number: phone.as_e164().to_owned(),
            phone_number_verified: true,
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn a_signed_token_verifies_with_the_key_and_carries_the_claims() {
        let key = b"0123456789abcdef0123456789abcdef";
        let signer = TokenSigner::new(&TokenConfig {
            issuer: "otp-service".into(),
            ttl: Duration::from_secs(600),
        });
        let phone = PhoneNumber::parse("+14155552671").unwrap();
        let issued = signer.sign(&EncodingKey::from_secret(key), &phone).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["otp-service"]);
        let claims = jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_secret(key),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.sub, "+14155552671");
        assert_eq!(claims.phone_number, "+14155552671");
        assert!(claims.phone_number_verified);
        assert_eq!(claims.exp - claims.iat, 600);
        let other = DecodingKey::from_secret(b"another key, another key, another");
        assert!(jsonwebtoken::decode::<Claims>(&issued.token, &other, &validation).is_err());
    }
}
