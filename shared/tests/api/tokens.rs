//! Verification tokens as a backend sees them: ES256 checked with nothing
//! but the published JWK Set (also for a secret as CloudFormation makes
//! it), no minting with the public keys, HS256 kept for those who want it,
//! and test numbers kept in the secret. Rotation is in `rotation`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use otp::token::Claims;
use serde_json::{Value, json};

use crate::{backend::*, support::*};

#[tokio::test]
async fn a_token_verifies_with_only_the_published_jwk_set() {
    let pem = p256_pem();
    let app = app_with(&[("2026-11", &pem)], &[], &[]).await;

    let token = app.token_for(PHONE).await;

    let response = app.jwks_with("GET");
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["cache-control"], "public, max-age=300");
    let key = &response.body["keys"][0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        )
    );
    assert!(key.get("d").is_none(), "no private part is published");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("2026-11"));
    let claims = backend_verifies(&token, &response.body).unwrap();
    assert_eq!(claims.sub, PHONE);
    assert_eq!(claims.phone_number, PHONE);
    assert!(claims.phone_number_verified);
    assert_eq!(claims.aud, None);
}

#[tokio::test]
async fn a_secret_as_cloudformation_creates_it_gives_es256_tokens_with_no_manual_step() {
    // The template's SecretStringTemplate plus the generated signing_key.
    let secret = create_secret(&secret_with(json!({"derived_token_key": "first"}))).await;
    let app = TestApp::builder()
        .env("OTP_SECRET_ID", &secret)
        .env("TOKEN_AUDIENCE", "https://api.example.com")
        .spawn()
        .await;

    let token = app.token_for(PHONE).await;

    let jwks = app.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let claims = backend_verifies_for(&token, &jwks, Some("https://api.example.com")).unwrap();
    assert_eq!(claims.aud.as_deref(), Some("https://api.example.com"));
    assert_eq!(
        backend_verifies_for(&token, &jwks, Some("https://other.example.com")).unwrap_err(),
        ErrorKind::InvalidAudience
    );
    // Another instance (or function) derives the same key from the same secret.
    let other = TestApp::builder()
        .env("OTP_SECRET_ID", &secret)
        .spawn()
        .await;
    assert_eq!(other.jwks(), jwks);
}

#[tokio::test]
async fn a_backend_holding_only_the_public_keys_cannot_mint_a_token() {
    let app = app_with(&[("k1", &p256_pem())], &[], &[]).await;
    let jwks = app.jwks();
    let genuine = app.token_for(PHONE).await;
    let claims: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(&genuine)
        .unwrap()
        .claims;
    let mut forged = claims.clone();
    forged["sub"] = json!("+15005550006");
    forged["phone_number"] = json!("+15005550006");
    let key = &jwks["keys"][0];
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("k1".into());

    // Algorithm confusion: HMAC "signed" with the public key's material.
    for public in [
        key.to_string(),
        jwks.to_string(),
        format!("{}{}", key["x"], key["y"]),
    ] {
        let token = jsonwebtoken::encode(
            &hs_header,
            &forged,
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            backend_verifies(&token, &jwks).unwrap_err(),
            ErrorKind::InvalidAlgorithm
        );
    }
    // No signature at all.
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64(&forged.to_string())
    );
    assert!(backend_verifies(&none, &jwks).is_err());
    // A key of one's own under the published kid.
    let mut es_header = Header::new(Algorithm::ES256);
    es_header.kid = Some("k1".into());
    let own = EncodingKey::from_ec_der(&pem::parse(p256_pem()).unwrap().into_contents());
    let token = jsonwebtoken::encode(&es_header, &forged, &own).unwrap();
    assert_eq!(
        backend_verifies(&token, &jwks).unwrap_err(),
        ErrorKind::InvalidSignature
    );
    // The genuine token, with its claims changed, no longer verifies.
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged.to_string()), parts[2]);
    assert!(backend_verifies(&tampered, &jwks).is_err());
    assert!(backend_verifies(&genuine, &jwks).is_ok());
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn hs256_mode_signs_with_signing_key_and_publishes_no_keys() {
    // Asked for, with ES256 keys present; and a secret from before ES256.
    let with_keys = app_with(&[("k1", &p256_pem())], &[], &[("TOKEN_ALGORITHM", "HS256")]).await;
    let legacy = TestApp::spawn().await;
    for app in [with_keys, legacy] {
        let token = app.token_for(PHONE).await;

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!((header.alg, header.kid), (Algorithm::HS256, None));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["otp-service"]);
        let claims = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_secret(SIGNING_KEY.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.sub, PHONE);
        assert_eq!(app.jwks(), json!({"keys": []}));
    }
}

#[tokio::test]
async fn token_algorithm_es256_without_es256_keys_stops_the_cold_start() {
    let secret = create_secret(&secret_json(AUTH_ID, AUTH_TOKEN)).await;
    let config = otp::config::Config::from_lookup(|name| match name {
        "OTP_SECRET_ID" => Some(secret.clone()),
        "PLIVO_SENDER" => Some(SENDER.to_owned()),
        "REDIS_URL" => Some(redis_url()),
        "REDIS_CLUSTER" => Some(cluster_mode().to_string()),
        "REDIS_TLS_CA_FILE" => std::env::var("TEST_REDIS_CA_FILE").ok(),
        "TOKEN_ALGORITHM" => Some("ES256".into()),
        _ => None,
    })
    .unwrap();

    let err = otp::services::Services::init(config, aws_config(), otp::services::Role::VerifyOtp)
        .await
        .err()
        .unwrap();

    let chain = otp::error_chain(&err);
    assert!(chain.contains("TOKEN_ALGORITHM is ES256"), "{chain}");
}

#[tokio::test]
async fn the_jwks_route_allows_get_only() {
    let app = TestApp::spawn().await;

    let response = app.jwks_with("POST");

    assert_eq!(response.status, 405);
    assert_eq!(response.error(), "method_not_allowed");
    assert_eq!(response.headers["allow"], "GET");
}

#[tokio::test]
async fn test_numbers_in_the_secret_get_their_fixed_code_as_the_environments_do() {
    let secret = create_secret(&secret_with(
        json!({"test_numbers": {"+15005550006": "424242"}}),
    ))
    .await;
    let app = TestApp::builder()
        .env("OTP_SECRET_ID", &secret)
        .env("TEST_PHONE_NUMBERS", "+15005550007:135790")
        .spawn()
        .await;

    for (phone, code) in [("+15005550006", "424242"), ("+15005550007", "135790")] {
        assert_eq!(app.request(phone).await.status, 200);
        assert_eq!(app.verify(phone, code).await.status, 200, "{phone}");
    }
    assert_eq!(app.sms_count().await, 0, "test numbers get no SMS");
}

/// `scripts/new-key.sh` with `args`: its one line of JSON.
fn new_key(args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/new-key.sh");
    let output = std::process::Command::new(script)
        .args(args)
        .output()
        .expect("run scripts/new-key.sh");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("one JSON value")
}

#[tokio::test]
async fn the_key_generator_prints_entries_the_service_signs_and_hashes_with() {
    let token_key = new_key(&["gen-1"]);
    let code_key = new_key(&["--code"]);
    assert_eq!(token_key["kid"], "gen-1");
    let secret = create_secret(&secret_with(json!({
        "token_keys": [token_key],
        "code_keys": [code_key],
    })))
    .await;
    let app = TestApp::builder()
        .env("OTP_SECRET_ID", &secret)
        .spawn()
        .await;

    let token = app.token_for(PHONE).await;

    assert_eq!(kid_of(&token), "gen-1");
    assert!(backend_verifies(&token, &app.jwks()).is_ok());
}
