//! The edge: both API Gateway event formats, and every malformed request
//! answered with its documented status and error code.

use base64::Engine;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn both_functions_accept_rest_api_events() {
    let app = TestApp::spawn().await;

    let requested = otp::http::request_otp(
        &app.services,
        event("request-otp-rest-api.json", |e| {
            e["body"] = json!(json!({ "phoneNumber": PHONE }).to_string());
        }),
    )
    .await;
    assert_eq!(requested.status(), 200);
    let code = app.last_code(PHONE).await;
    let verified = otp::http::verify_otp(
        &app.services,
        event("verify-otp-rest-api.json", |e| {
            e["body"] = json!(json!({"phoneNumber": PHONE, "otp": code}).to_string());
        }),
    )
    .await;
    assert_eq!(verified.status(), 200);
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    let app = TestApp::spawn().await;
    let body = r#"{"phoneNumber":"+14155552671"}"#;
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);

    let response = otp::http::request_otp(
        &app.services,
        event("request-otp-http-api.json", |e| {
            e["body"] = json!(encoded);
            e["isBase64Encoded"] = json!(true);
        }),
    )
    .await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn methods_other_than_post_get_405() {
    let app = TestApp::spawn().await;
    for method in ["GET", "PUT", "DELETE", "OPTIONS"] {
        let set_method =
            |e: &mut serde_json::Value| e["requestContext"]["http"]["method"] = json!(method);
        let requested = otp::http::request_otp(
            &app.services,
            event("request-otp-http-api.json", set_method),
        )
        .await;
        let verified =
            otp::http::verify_otp(&app.services, event("verify-otp-http-api.json", set_method))
                .await;
        for response in [requested, verified] {
            assert_eq!(response.status(), 405, "{method}");
            assert_eq!(response.headers()["allow"], "POST");
            let body: serde_json::Value = match response.body() {
                lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
                other => panic!("{other:?}"),
            };
            assert_eq!(body["error"], "method_not_allowed");
        }
    }
    assert_eq!(app.sms_count().await, 0);
}

#[tokio::test]
async fn malformed_request_bodies_get_invalid_request() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"phoneNumber":"+14155552671","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    for body in [
        "",
        "not json",
        r#"{"phoneNumber":"+14155552671""#,
        "[]",
        "null",
        r#"{}"#,
        r#"{"phone":"+14155552671"}"#,
        r#"{"phoneNumber":14155552671}"#,
        r#"{"phoneNumber":null}"#,
        big.as_str(),
    ] {
        let response = app.request_raw(body).await;
        assert_eq!(response.status, 400, "{body:.60}");
        assert_eq!(response.error(), "invalid_request", "{body:.60}");
        assert!(!response.body["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn an_otp_that_is_not_a_json_string_gets_invalid_request() {
    let app = TestApp::spawn().await;
    for body in [
        r#"{"phoneNumber":"+14155552671","otp":123456}"#,
        r#"{"phoneNumber":"+14155552671"}"#,
        r#"{"otp":"123456"}"#,
    ] {
        let response = app.verify_raw(body).await;
        assert_eq!(
            (response.status, response.error()),
            (400, "invalid_request"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn extra_fields_are_ignored() {
    let app = TestApp::spawn().await;

    let response = app
        .request_raw(r#"{"phoneNumber":"+14155552671","channel":"sms","otp":"1"}"#)
        .await;

    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn invalid_phone_numbers_get_invalid_phone_number() {
    let app = TestApp::spawn().await;
    for phone in [
        "14155552671",
        "",
        "+",
        "+1415555267a",
        "+1.415.555.2671",
        "+１４１５５５５２６７１",
        "+10005550100",
        "+1234567890123456789",
        "+14155552671\u{0}",
    ] {
        let response = app.request(phone).await;
        assert_eq!(response.status, 400, "{phone:?}");
        assert_eq!(response.error(), "invalid_phone_number", "{phone:?}");
        let response = app.verify(phone, "123456").await;
        assert_eq!(response.error(), "invalid_phone_number", "{phone:?}");
    }
    assert_eq!(app.sms_count().await, 0);
}

#[tokio::test]
async fn malformed_codes_get_invalid_code_format_without_costing_an_attempt() {
    let app = TestApp::builder()
        .env("OTP_MAX_ATTEMPTS", "1")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    for otp in [
        "١٢٣٤٥٦",
        "+12345",
        " 123456 ",
        "123 456",
        "1234567",
        "12345",
        "",
        "12345a",
    ] {
        let response = app.verify(PHONE, otp).await;
        assert_eq!(response.status, 400, "{otp:?}");
        assert_eq!(response.error(), "invalid_code_format", "{otp:?}");
        assert_eq!(response.body["message"], "otp must be exactly 6 digits.");
    }

    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}
