//! The Plivo client against a local server speaking Plivo's Message API.

use std::time::Duration;

use otp::{
    config::PlivoConfig,
    domain::PhoneNumber,
    plivo::{PlivoClient, PlivoError},
    secrets::PlivoCredentials,
};
use serde_json::json;
use tokio::time::Instant;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, method, path},
};

use crate::support::*;

fn client(server: &MockServer, attempt_timeout_ms: u64, max_attempts: u32) -> PlivoClient {
    PlivoClient::new(&PlivoConfig {
        api_url: server.uri(),
        sender: SENDER.into(),
        voice_sender: SENDER.into(),
        attempt_timeout: Duration::from_millis(attempt_timeout_ms),
        max_attempts,
    })
    .unwrap()
}

fn credentials() -> PlivoCredentials {
    PlivoCredentials {
        auth_id: AUTH_ID.into(),
        auth_token: AUTH_TOKEN.into(),
        main_auth_token: None,
    }
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[tokio::test]
async fn send_posts_src_dst_and_text_with_basic_auth_to_the_message_endpoint() {
    let server = MockServer::start().await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .and(body_json(
            json!({"src": SENDER, "dst": PHONE, "text": "hello"}),
        ))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "api_id": "db342550-e462-11e5-9a6f-22000ac5c6f8",
            "message": "message(s) queued",
            "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"],
        })))
        .expect(1)
        .mount(&server)
        .await;

    let uuid = client(&server, 1_000, 3)
        .send_sms(&credentials(), &phone(), "hello", None, soon())
        .await
        .unwrap();

    assert_eq!(uuid, "db3ce55a-7f1d-11e1-8ea7-1231380bc196");
}

#[tokio::test]
async fn send_retries_a_500_and_then_succeeds_once() {
    let server = MockServer::start().await;
    plivo_answers_once(
        &server,
        ResponseTemplate::new(500).set_body_json(json!({"api_id": "x", "error": "internal"})),
    )
    .await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_accepted())
        .expect(1)
        .mount(&server)
        .await;

    let result = client(&server, 1_000, 3)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn send_retries_429_and_gives_up_after_max_attempts() {
    let server = MockServer::start().await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(ResponseTemplate::new(429).set_body_string("Too Many Requests"))
        .expect(3)
        .mount(&server)
        .await;

    let result = client(&server, 1_000, 3)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    match result {
        Err(PlivoError::Unavailable {
            attempts: 3,
            last,
            maybe_sent: false,
        }) => assert!(last.contains("429"), "{last}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn send_does_not_retry_other_4xx() {
    let server = MockServer::start().await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "api_id": "abc",
            "error": "dst is not a valid phone number: 14155552671",
        })))
        .expect(1)
        .mount(&server)
        .await;

    let result = client(&server, 1_000, 3)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    match result {
        Err(PlivoError::Rejected {
            status: 400,
            detail,
        }) => {
            assert_eq!(
                detail,
                "dst is not a valid phone number: <number> (api_id abc)"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn send_reports_401_without_retrying() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{AUTH_ID}/Message/")))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string("Could not verify your access level for that URL."),
        )
        .expect(1)
        .mount(&server)
        .await;

    let result = client(&server, 1_000, 3)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    assert!(
        matches!(result, Err(PlivoError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn send_retries_attempts_that_time_out() {
    let server = MockServer::start().await;
    plivo_answers_once(&server, plivo_accepted().set_delay(Duration::from_secs(5))).await;
    plivo_answers(&server, plivo_accepted()).await;

    let result = client(&server, 300, 3)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn send_never_runs_past_the_deadline() {
    let server = MockServer::start().await;
    plivo_answers(&server, plivo_accepted().set_delay(Duration::from_secs(5))).await;
    let deadline = Instant::now() + Duration::from_millis(600);

    let result = client(&server, 3_000, 5)
        .send_sms(&credentials(), &phone(), "hi", None, deadline)
        .await;

    assert!(
        matches!(
            result,
            Err(PlivoError::Unavailable {
                attempts: 1,
                maybe_sent: true,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        Instant::now() < deadline + Duration::from_millis(200),
        "overran the deadline"
    );
}

#[tokio::test]
async fn send_retries_connection_errors() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = PlivoClient::new(&PlivoConfig {
        api_url: format!("http://127.0.0.1:{port}"),
        sender: SENDER.into(),
        voice_sender: SENDER.into(),
        attempt_timeout: Duration::from_millis(500),
        max_attempts: 2,
    })
    .unwrap();

    let result = client
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    match result {
        Err(PlivoError::Unavailable {
            attempts: 2,
            last,
            maybe_sent: false,
        }) => {
            assert!(last.contains("connection"), "{last}");
            assert!(
                !last.contains(AUTH_ID),
                "the Auth ID must not reach logs: {last}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn send_gives_up_when_plivo_asks_for_a_longer_pause_than_it_can_wait() {
    let server = MockServer::start().await;
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .expect(1)
        .mount(&server)
        .await;

    let result = client(&server, 1_000, 3)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    assert!(
        matches!(
            result,
            Err(PlivoError::Unavailable {
                attempts: 1,
                maybe_sent: false,
                ..
            })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn timeouts_are_reported_without_the_auth_id() {
    let server = MockServer::start().await;
    plivo_answers(&server, plivo_accepted().set_delay(Duration::from_secs(5))).await;

    let result = client(&server, 200, 1)
        .send_sms(&credentials(), &phone(), "hi", None, soon())
        .await;

    match result {
        Err(PlivoError::Unavailable {
            last,
            maybe_sent: true,
            ..
        }) => {
            assert!(last.contains("timeout"), "{last}");
            assert!(!last.contains(AUTH_ID), "{last}");
        }
        other => panic!("{other:?}"),
    }
}
