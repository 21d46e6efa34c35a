//! What a backend and an operator do with tokens and keys: make a key as
//! `scripts/new-key.sh` does, write the secret, fetch the JWK Set, and
//! check a token with it alone.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet};
use otp::token::Claims;
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::support::*;

/// A fresh P-256 key as the PKCS#8 PEM a `token_keys` entry holds (what
/// `scripts/new-key.sh` prints).
pub fn p256_pem() -> String {
    use aws_lc_rs::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
    };
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap();
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref()))
}

/// The test Plivo credentials and `signing_key`, with `extra`'s fields
/// added (or, when null, removed).
pub fn secret_with(extra: Value) -> String {
    let mut doc: Value = serde_json::from_str(&secret_json(AUTH_ID, AUTH_TOKEN)).unwrap();
    for (key, value) in extra.as_object().expect("an object of fields") {
        if value.is_null() {
            doc.as_object_mut().unwrap().remove(key);
        } else {
            doc[key] = value.clone();
        }
    }
    doc.to_string()
}

/// What a backend does: find the key by the token's `kid` in the JWK Set,
/// and check ES256, the issuer and the required claims.
pub fn backend_verifies(token: &str, jwks: &Value) -> Result<Claims, ErrorKind> {
    backend_verifies_for(token, jwks, None)
}

/// The same, for a backend that also checks it is the token's audience.
pub fn backend_verifies_for(
    token: &str,
    jwks: &Value,
    audience: Option<&str>,
) -> Result<Claims, ErrorKind> {
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.into_kind())?
        .kid
        .ok_or(ErrorKind::InvalidToken)?;
    let jwk = set.find(&kid).ok_or(ErrorKind::InvalidToken)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&["otp-service"]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    if let Some(audience) = audience {
        validation.set_audience(&[audience]);
    }
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .map(|data| data.claims)
        .map_err(|e| e.into_kind())
}

pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// An app whose secret holds `token_keys` (kid, PEM) and `code_keys`.
pub async fn app_with(keys: &[(&str, &str)], code_keys: &[&str], env: &[(&str, &str)]) -> TestApp {
    let secret = create_secret(&secret_json_with_keys(keys, code_keys)).await;
    let mut builder = TestApp::builder().env("OTP_SECRET_ID", &secret);
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

pub fn secret_json_with_keys(keys: &[(&str, &str)], code_keys: &[&str]) -> String {
    let token_keys: Vec<Value> = keys
        .iter()
        .map(|(kid, pem)| json!({"kid": kid, "private_key": pem}))
        .collect();
    let code_keys = if code_keys.is_empty() {
        Value::Null
    } else {
        json!(code_keys)
    };
    secret_with(json!({"token_keys": token_keys, "code_keys": code_keys}))
}

/// Secrets Manager's answer to GetSecretValue, for a stand-in that counts.
pub fn get_secret_value(secret: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(json!({
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:otp-AbCdEf",
            "Name": "otp",
            "SecretString": secret,
            "VersionId": "00000000-0000-0000-0000-000000000001",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": 1_795_539_243.0
        }))
}

impl TestApp {
    /// `GET /.well-known/jwks.json` (or another `method`) as verify-otp serves it.
    pub fn jwks_with(&self, method: &str) -> TestResponse {
        let event = event("verify-otp-http-api.json", |e| {
            e["routeKey"] = json!(format!("{method} /.well-known/jwks.json"));
            e["rawPath"] = json!("/.well-known/jwks.json");
            e["requestContext"]["http"]["method"] = json!(method);
            e["requestContext"]["http"]["path"] = json!("/.well-known/jwks.json");
            e["body"] = Value::Null;
        });
        assert!(otp::http::is_jwks(&event));
        TestResponse::from(otp::http::jwks(&self.services, &event))
    }

    pub fn jwks(&self) -> Value {
        let response = self.jwks_with("GET");
        assert_eq!(response.status, 200);
        response.body
    }

    /// The published key ids, in order (the signing key first).
    pub fn kids(&self) -> Vec<String> {
        self.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A token for `phone`: asks for a code, reads it from the SMS, verifies it.
    pub async fn token_for(&self, phone: &str) -> String {
        assert_eq!(self.request(phone).await.status, 200);
        let code = self.last_code(phone).await;
        let response = self.verify(phone, &code).await;
        assert_eq!(response.status, 200, "{:?}", response.body);
        response.body["verificationToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}
