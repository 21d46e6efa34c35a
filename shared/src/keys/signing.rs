//! Token signing keys. ES256 keys come from the secret's `token_keys` (PKCS#8
//! PEM, each with its `kid`) and, for stacks CloudFormation created, from a
//! P-256 key derived from `signing_key`, because CloudFormation can generate
//! a random string but not a PEM key. The first key signs; all are published
//! so that tokens signed before a rotation still verify. HS256 signs with
//! `signing_key` itself and publishes nothing.

use std::fmt;

use aws_lc_rs::{rand::SystemRandom, signature::EcdsaKeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};

use super::es256::Es256Key;

/// `TOKEN_ALGORITHM`: what the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenAlgorithm {
    /// Unset: ES256 when the secret holds ES256 keys, else HS256, so a
    /// secret from before ES256 keeps working exactly as it did.
    #[default]
    Auto,
    Es256,
    Hs256,
}

/// Where the key derived from `signing_key` sits among `token_keys`:
/// `first` signs with it, `last` only publishes it (during a rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedKeyPosition {
    First,
    Last,
}

/// One `token_keys` entry as the secret stores it.
#[derive(Deserialize)]
pub struct TokenKeyEntry {
    pub kid: String,
    pub private_key: String,
}

/// The key that signs new tokens.
pub enum SigningKey {
    Hs256(EncodingKey),
    /// Parsed once per secret load. jsonwebtoken's `encode` parses and
    /// checks a PKCS#8 EC key on every call, which cost verify-otp about
    /// 0.2 ms per token (a third of its warm latency), so ES256 tokens are
    /// put together here instead (`Es256Signer::jws`).
    Es256(Es256Signer),
}

/// An ES256 key ready to sign JWS compact serializations.
pub struct Es256Signer {
    kid: String,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("cannot serialize the token")]
    Json(#[from] serde_json::Error),
    #[error("ECDSA signing failed")]
    Sign,
}

impl Es256Signer {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `header.claims.signature` (RFC 7515 compact form), each part
    /// base64url without padding; the signature is r || s, 64 bytes, as
    /// RFC 7518 section 3.4 has it for ES256.
    pub fn jws(
        &self,
        header: &impl Serialize,
        claims: &impl Serialize,
    ) -> Result<String, JwsError> {
        let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
        let signature = self
            .pair
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| JwsError::Sign)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }
}

/// The signing key and the public JWK Set, serialized once per secret load
/// so the JWKS route serves it from memory.
pub struct TokenKeys {
    signing: SigningKey,
    jwks: String,
    kids: Vec<String>,
}

/// One public key as a JWK (RFC 7517/7518), in the contract's field order.
#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    x: &'a str,
    y: &'a str,
    kid: &'a str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

impl TokenKeys {
    /// Builds the keys from the secret's fields. Errors name the field and
    /// the entry (its index and `kid`, which are public), never key bytes.
    pub fn build(
        algorithm: TokenAlgorithm,
        signing_key: Option<&str>,
        entries: &[TokenKeyEntry],
        derived: Option<DerivedKeyPosition>,
    ) -> Result<Self, String> {
        let mut keys = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| Es256Key::from_entry(i, entry))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(position) = derived {
            let seed = signing_key.ok_or("derived_token_key needs signing_key")?;
            let key = Es256Key::derive(seed.as_bytes())?;
            match position {
                DerivedKeyPosition::First => keys.insert(0, key),
                DerivedKeyPosition::Last => keys.push(key),
            }
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.kid == key.kid) {
                return Err(format!("token_keys: kid {:?} is used twice", key.kid));
            }
        }
        let use_es256 = match algorithm {
            TokenAlgorithm::Hs256 => false,
            TokenAlgorithm::Auto => !keys.is_empty(),
            TokenAlgorithm::Es256 if keys.is_empty() => {
                return Err(
                    "TOKEN_ALGORITHM is ES256 but the secret has neither token_keys nor derived_token_key"
                        .into(),
                );
            }
            TokenAlgorithm::Es256 => true,
        };
        if !use_es256 {
            let secret = signing_key.ok_or("signing_key is required for HS256 tokens")?;
            return Ok(Self {
                signing: SigningKey::Hs256(EncodingKey::from_secret(secret.as_bytes())),
                jwks: r#"{"keys":[]}"#.to_owned(),
                kids: Vec::new(),
            });
        }
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| Jwk {
                kty: "EC",
                crv: "P-256",
                x: &k.x,
                y: &k.y,
                kid: &k.kid,
                alg: "ES256",
                use_: "sig",
            }).collect::<Vec<_>>()
        })
        .to_string();
        let kids = keys.iter().map(|k| k.kid.clone()).collect();
        let first = keys.swap_remove(0);
        Ok(Self {
            signing: SigningKey::Es256(Es256Signer {
                kid: first.kid,
                pair: first.pair,
                rng: SystemRandom::new(),
            }),
            jwks,
            kids,
        })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    /// The public keys as a JWK Set (`{"keys":[]}` for HS256).
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The published key ids, signing key first (they are public).
    pub fn kids(&self) -> &[String] {
        &self.kids
    }
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kids", &self.kids)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, jwk::JwkSet};

    use super::*;

    const SEED: &str = "a-signing-key-of-at-least-32-bytes-0123456789";
    /// Made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
    const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmXKGNn6+9C3dIeGg
Bw0m7ISRMJpvaDgqnpg2MAQ7E9uhRANCAAQnr4lvyABId96AYteTZ9E91vdM2aaA
7KPw4941IlqZiJVVMQBle9K9Njkk7m8lYPmB/h70kJVUMthwqPEvU4IR
-----END PRIVATE KEY-----";
    /// The same with `ec_paramgen_curve:P-384`: not an ES256 key.
    const P384_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDC7iCRrpoUCRWfZVIfR
0cqG6OCDGUqgjXX+i5vHot5AUJjlZ03cjpTkZ//1yqF18IuhZANiAAT0sjTs3qfH
NcHe4K2VBkkjbDZ0vQwenCXGcu1176U7prxWZvNFgPJyFCPTQBslDronsxAj092S
tByHFuK/+LGNf4r5oPaHngfqA6MCD+AUsWrx2WRFLawUQSa9S4TVPPM=
-----END PRIVATE KEY-----";

    fn entry(kid: &str, pem: &str) -> TokenKeyEntry {
        TokenKeyEntry {
            kid: kid.into(),
            private_key: pem.into(),
        }
    }

    fn sign(keys: &TokenKeys) -> String {
        let SigningKey::Es256(signer) = keys.signing() else {
            panic!("expected ES256");
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(signer.kid().to_owned());
        signer
            .jws(&header, &serde_json::json!({"sub": "x"}))
            .unwrap()
    }

    fn verifies_with_jwks(token: &str, jwks: &str) -> bool {
        let set: JwkSet = serde_json::from_str(jwks).unwrap();
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let Some(jwk) = set.find(&kid) else {
            return false;
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .is_ok()
    }

    #[test]
    fn a_pem_key_signs_tokens_that_its_published_jwk_verifies() {
        let keys = TokenKeys::build(TokenAlgorithm::Auto, None, &[entry("k1", PEM)], None).unwrap();
        assert_eq!(keys.kids(), ["k1"]);
        assert!(verifies_with_jwks(&sign(&keys), keys.jwks()));
        let jwk: serde_json::Value = serde_json::from_str(keys.jwks()).unwrap();
        let fields: Vec<&str> = jwk["keys"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert!(!keys.jwks().contains(PEM.lines().nth(1).unwrap()));
        assert!(!keys.jwks().contains("\"d\""), "no private part");
    }

    #[test]
    fn the_derived_key_is_the_same_for_the_same_seed_and_named_by_its_thumbprint() {
        let derive = || {
            TokenKeys::build(
                TokenAlgorithm::Auto,
                Some(SEED),
                &[],
                Some(DerivedKeyPosition::First),
            )
            .unwrap()
        };
        let (a, b) = (derive(), derive());
        assert_eq!(a.jwks(), b.jwks());
        assert_eq!(a.kids()[0].len(), 43, "base64url of a SHA-256");
        assert!(verifies_with_jwks(&sign(&a), b.jwks()));
        let other = TokenKeys::build(
            TokenAlgorithm::Auto,
            Some("another-signing-key-of-at-least-32-bytes!!"),
            &[],
            Some(DerivedKeyPosition::First),
        )
        .unwrap();
        assert_ne!(a.kids(), other.kids());
        // RFC 7638's own rule, recomputed from the published JWK.
        let set: JwkSet = serde_json::from_str(a.jwks()).unwrap();
        let thumb = set.keys[0]
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap();
        assert_eq!(thumb, a.kids()[0]);
    }

    #[test]
    fn the_first_key_signs_and_every_key_is_published() {
        let keys = TokenKeys::build(
            TokenAlgorithm::Auto,
            Some(SEED),
            &[entry("new", PEM)],
            Some(DerivedKeyPosition::Last),
        )
        .unwrap();
        assert_eq!(keys.kids().len(), 2);
        assert_eq!(keys.kids()[0], "new");
        let token = sign(&keys);
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
            Some("new")
        );
        let first = TokenKeys::build(
            TokenAlgorithm::Auto,
            Some(SEED),
            &[entry("new", PEM)],
            Some(DerivedKeyPosition::First),
        )
        .unwrap();
        assert_eq!(first.kids()[1], "new");
        assert_ne!(first.kids()[0], "new");
    }

    #[test]
    fn without_es256_keys_or_when_asked_tokens_are_hs256_and_nothing_is_published() {
        for (algorithm, entries) in [
            (TokenAlgorithm::Auto, vec![]),
            (TokenAlgorithm::Hs256, vec![entry("k1", PEM)]),
        ] {
            let keys = TokenKeys::build(algorithm, Some(SEED), &entries, None).unwrap();
            assert!(matches!(keys.signing(), SigningKey::Hs256(_)));
            assert_eq!(keys.jwks(), r#"{"keys":[]}"#);
        }
    }

    #[test]
    fn bad_key_entries_are_refused_without_quoting_the_key() {
        let sec1 = PEM.replace("PRIVATE KEY", "EC PRIVATE KEY");
        let cases = [
            (TokenAlgorithm::Es256, vec![], None, "neither token_keys"),
            (TokenAlgorithm::Auto, vec![entry("", PEM)], None, "kid"),
            (TokenAlgorithm::Auto, vec![entry("a\"b", PEM)], None, "kid"),
            (TokenAlgorithm::Auto, vec![entry("k", "nope")], None, "PEM"),
            (
                TokenAlgorithm::Auto,
                vec![entry("k", &sec1)],
                None,
                "PKCS#8",
            ),
            (
                TokenAlgorithm::Auto,
                vec![entry("k", P384_PEM)],
                None,
                "P-256",
            ),
            (
                TokenAlgorithm::Auto,
                vec![entry("k", PEM), entry("k", PEM)],
                None,
                "used twice",
            ),
            (
                TokenAlgorithm::Auto,
                vec![],
                Some(DerivedKeyPosition::First),
                "needs signing_key",
            ),
        ];
        for (algorithm, entries, derived, expected) in cases {
            let err = TokenKeys::build(algorithm, None, &entries, derived).unwrap_err();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("MIG"), "{err}");
        }
        let hs = TokenKeys::build(TokenAlgorithm::Hs256, None, &[], None).unwrap_err();
        assert!(hs.contains("signing_key is required"), "{hs}");
    }
}
