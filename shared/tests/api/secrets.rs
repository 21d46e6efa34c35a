//! The secret through the real AWS SDK against the local Secrets Manager
//! emulator: loading, refusing bad documents, and refreshing on a Plivo 401.

use std::time::Duration;

use otp::{
    config::Config,
    secrets::{SecretRules, SecretStore},
    services::{InitError, Role, Services},
};
use wiremock::ResponseTemplate;

use crate::support::*;

#[tokio::test]
async fn the_secret_is_read_through_the_sdk() {
    let name = create_secret(&secret_json(AUTH_ID, AUTH_TOKEN)).await;
    let client = aws_sdk_secretsmanager::Client::new(&aws_config().await);

    let store = SecretStore::load(
        client,
        name,
        SecretRules::default(),
        Duration::from_secs(300),
    )
    .await
    .unwrap();

    assert_eq!(store.current().plivo.auth_id, AUTH_ID);
    assert_eq!(store.current().plivo.auth_token, AUTH_TOKEN);
}

fn config_for(secret_id: &str) -> Config {
    Config::from_lookup(|name| match name {
        "OTP_SECRET_ID" => Some(secret_id.to_owned()),
        "PLIVO_SENDER" => Some(SENDER.to_owned()),
        "REDIS_URL" => Some(redis_url()),
        "REDIS_CLUSTER" => Some(cluster_mode().to_string()),
        "REDIS_TLS_CA_FILE" => std::env::var("TEST_REDIS_CA_FILE").ok(),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn a_missing_secret_fails_the_cold_start_naming_it() {
    let name = unique("otp-missing");

    let err = Services::init(config_for(&name), aws_config(), Role::RequestOtp)
        .await
        .err()
        .unwrap();

    assert!(matches!(err, InitError::Secrets(_)), "{err:?}");
    let chain = otp::error_chain(&err);
    assert!(chain.contains(&name), "{chain}");
    assert!(chain.contains("ResourceNotFound"), "{chain}");
}

#[tokio::test]
async fn an_unreachable_secrets_manager_fails_the_cold_start_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let aws = async move {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .load()
            .await
    };

    let err = Services::init(config_for("otp/dev"), aws, Role::VerifyOtp)
        .await
        .err()
        .unwrap();

    let chain = otp::error_chain(&err);
    assert!(
        chain.starts_with("cannot load the secret: could not read secret otp/dev"),
        "{chain}"
    );
}

#[tokio::test]
async fn a_malformed_secret_fails_the_cold_start_without_quoting_it() {
    let name = create_secret(
        r#"{"plivo_auth_id":"MA1","plivo_auth_token":"tok","signing_key":"too-short"}"#,
    )
    .await;

    let err = Services::init(config_for(&name), aws_config(), Role::RequestOtp)
        .await
        .err()
        .unwrap();

    let chain = otp::error_chain(&err);
    assert!(
        chain.contains("signing_key must be at least 32 bytes"),
        "{chain}"
    );
    assert!(!chain.contains("too-short"), "{chain}");
}

#[tokio::test]
async fn a_plivo_401_refetches_the_secret_once_and_sends_with_the_new_credentials() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(
            ResponseTemplate::new(401).set_body_string("Could not verify your access level"),
        )
        .expect(1)
        .mount(&app.plivo)
        .await;
    plivo_message(AUTH_ID, "rotated-token")
        .respond_with(plivo_accepted())
        .expect(1)
        .mount(&app.plivo)
        .await;
    put_secret(&app.secret_id, &secret_json(AUTH_ID, "rotated-token")).await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 200);
    let code = app.last_code(PHONE).await;
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn a_plivo_401_that_persists_after_the_refetch_gives_502_and_leaves_no_code() {
    let app = TestApp::builder().without_plivo_mock().spawn().await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&app.plivo)
        .await;

    let response = app.request(PHONE).await;

    assert_eq!(response.status, 502);
    assert_eq!(response.error(), "sms_delivery_failed");
    assert_eq!(app.pttl(PHONE, "code").await, -2);
}
