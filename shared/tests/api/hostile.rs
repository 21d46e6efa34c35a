//! Hostile input, table-driven: each malformed or abusive request gets its
//! documented status and exact body, never a 500, and never an SMS.

use base64::Engine;
use serde_json::{Value, json};

use crate::support::*;

fn bad_body(fields: &str) -> Value {
    json!({"error": "invalid_request", "message": format!("Request body must be a JSON object with {fields}.")})
}

fn request_shape() -> Value {
    bad_body("a string field \"phoneNumber\"")
}

fn verify_shape() -> Value {
    bad_body("string fields \"phoneNumber\" and \"otp\"")
}

fn bad_phone() -> Value {
    json!({"error": "invalid_phone_number", "message": "phoneNumber must be an international number in E.164 format: a + then the country code and the number."})
}

fn bad_code() -> Value {
    json!({"error": "invalid_code_format", "message": "otp must be exactly 6 digits."})
}

fn not_allowed() -> Value {
    json!({"error": "destination_not_allowed", "message": "SMS cannot be sent to this phone number."})
}

/// The success body, for an app whose resend cooldown is 0.
fn unsupported_media_type() -> Value {
    json!({"error": "unsupported_media_type", "message": "Send the body as JSON with Content-Type: application/json."})
}

fn duplicate_keys() -> Value {
    json!({"error": "invalid_request", "message": "Request body must not repeat a field."})
}

/// A valid body sent with `content_type`.
fn typed(content_type: &'static str, status: u16, expected: Value) -> Case {
    Case {
        name: content_type,
        body: Body::Text(phone(PHONE)),
        content_type: Some(content_type),
        status,
        expected,
    }
}

fn pending() -> Value {
    json!({"status": "pending", "message": "OTP has been sent successfully.", "expiresInSeconds": 300, "retryAfterSeconds": 0, "channel": "sms"})
}

/// How a case's event differs from the sample event.
enum Body {
    Text(String),
    Base64(Vec<u8>),
    Absent,
}

struct Case {
    name: &'static str,
    body: Body,
    content_type: Option<&'static str>,
    status: u16,
    expected: Value,
}

fn text(name: &'static str, body: impl Into<String>, status: u16, expected: Value) -> Case {
    Case {
        name,
        body: Body::Text(body.into()),
        content_type: Some("application/json"),
        status,
        expected,
    }
}

fn phone(number: &str) -> String {
    json!({ "phoneNumber": number }).to_string()
}

async fn run(app: &TestApp, file: &str, case: Case) {
    let Case {
        name,
        body,
        content_type,
        status,
        expected,
    } = case;
    let response = app
        .call_event(file, |e| {
            match body {
                Body::Text(text) => e["body"] = json!(text),
                Body::Base64(bytes) => {
                    e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                    e["isBase64Encoded"] = json!(true);
                }
                Body::Absent => e["body"] = Value::Null,
            }
            match content_type {
                Some(ct) => e["headers"]["content-type"] = json!(ct),
                None => {
                    e["headers"].as_object_mut().unwrap().remove("content-type");
                }
            }
        })
        .await;
    assert_eq!(
        (response.status, &response.body),
        (status, &expected),
        "case: {name}"
    );
}

#[tokio::test]
async fn hostile_request_otp_inputs_get_their_documented_answers() {
    let app = TestApp::builder()
        .env("ALLOWED_COUNTRIES", "US,GB")
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .env("OTP_MAX_SENDS_PER_HOUR", "100")
        .spawn()
        .await;
    let huge = format!(
        r#"{{"phoneNumber":"+14155552671","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let too_large = json!({"error": "invalid_request", "message": "Request body is too large."});
    let cases = vec![
        text(
            "malformed JSON",
            "{\"phoneNumber\": +1415",
            400,
            request_shape(),
        ),
        text(
            "truncated JSON",
            "{\"phoneNumber\": \"+14155552671\"",
            400,
            request_shape(),
        ),
        text("not JSON", "phoneNumber=+14155552671", 400, request_shape()),
        text("JSON array", "[\"+14155552671\"]", 400, request_shape()),
        text(
            "JSON array of one object",
            "[{\"phoneNumber\": \"+14155552671\"}]",
            400,
            request_shape(),
        ),
        text("JSON string", "\"+14155552671\"", 400, request_shape()),
        text("JSON null", "null", 400, request_shape()),
        text("empty object", "{}", 400, request_shape()),
        text(
            "number instead of string",
            "{\"phoneNumber\": 14155552671}",
            400,
            request_shape(),
        ),
        text(
            "object instead of string",
            "{\"phoneNumber\": {\"e164\": \"+14155552671\"}}",
            400,
            request_shape(),
        ),
        text(
            "array instead of string",
            "{\"phoneNumber\": [\"+14155552671\"]}",
            400,
            request_shape(),
        ),
        text(
            "boolean instead of string",
            "{\"phoneNumber\": true}",
            400,
            request_shape(),
        ),
        text(
            "null phone",
            "{\"phoneNumber\": null}",
            400,
            request_shape(),
        ),
        text(
            "wrong field name",
            "{\"phone_number\": \"+14155552671\"}",
            400,
            request_shape(),
        ),
        text("1 MiB body", huge, 400, too_large),
        text("empty body", "", 400, request_shape()),
        Case {
            name: "no body at all",
            body: Body::Absent,
            content_type: Some("application/json"),
            status: 400,
            expected: request_shape(),
        },
        Case {
            name: "base64 binary garbage",
            body: Body::Base64(vec![0xff, 0xfe, 0x00, 0x9c]),
            content_type: Some("application/json"),
            status: 400,
            expected: request_shape(),
        },
        text("empty string", phone(""), 400, bad_phone()),
        text("only a plus", phone("+"), 400, bad_phone()),
        text("no plus", phone("14155552671"), 400, bad_phone()),
        text("double plus", phone("++14155552671"), 400, bad_phone()),
        text(
            "00 prefix instead of plus",
            phone("0014155552671"),
            400,
            bad_phone(),
        ),
        text("letters", phone("+1415CALLNOW"), 400, bad_phone()),
        text("letter O for zero", phone("+14155552O71"), 400, bad_phone()),
        text("letter l for one", phone("+l4155552671"), 400, bad_phone()),
        text(
            "full-width digits",
            phone("+１４１５５５５２６７１"),
            400,
            bad_phone(),
        ),
        text(
            "Arabic-Indic digits",
            phone("+١٤١٥٥٥٥٢٦٧١"),
            400,
            bad_phone(),
        ),
        text("Devanagari digits", phone("+१४१५५५५२६७१"), 400, bad_phone()),
        text("null byte", phone("+14155552671\u{0}"), 400, bad_phone()),
        text(
            "embedded null byte",
            phone("+1415\u{0}5552671"),
            400,
            bad_phone(),
        ),
        text("dots", phone("+1.415.555.2671"), 400, bad_phone()),
        text("extension", phone("+14155552671;ext=5"), 400, bad_phone()),
        text(
            "very long number",
            phone(&format!("+1{}", "5".repeat(1000))),
            400,
            bad_phone(),
        ),
        text(
            "sixteen digits",
            phone("+1415555267123456"),
            400,
            bad_phone(),
        ),
        text("too short", phone("+141555"), 400, bad_phone()),
        text("impossible number", phone("+10005550100"), 400, bad_phone()),
        text(
            "unassigned country code",
            phone("+8001234567"),
            400,
            bad_phone(),
        ),
        text(
            "premium-rate US 900",
            phone("+19005550123"),
            403,
            not_allowed(),
        ),
        text(
            "shared-cost UK 0843",
            phone("+448431234567"),
            403,
            not_allowed(),
        ),
        text(
            "premium-rate UK 09",
            phone("+449098790000"),
            403,
            not_allowed(),
        ),
        text(
            "country not allowed",
            phone("+491701234567"),
            403,
            not_allowed(),
        ),
        text(
            "extra fields are ignored",
            "{\"phoneNumber\": \"+14155552671\", \"isAdmin\": true, \"otp\": \"000000\"}",
            200,
            pending(),
        ),
        text(
            "spaces, dashes and parentheses",
            phone("+1 (415) 555-2671"),
            200,
            pending(),
        ),
        Case {
            name: "missing Content-Type",
            body: Body::Text(phone(PHONE)),
            content_type: None,
            status: 200,
            expected: pending(),
        },
        // The three content types a browser sends cross-site with no CORS
        // preflight: a page could spend its visitors' per-IP budgets.
        typed("text/plain", 415, unsupported_media_type()),
        typed("text/plain; charset=latin1", 415, unsupported_media_type()),
        typed(
            "application/x-www-form-urlencoded",
            415,
            unsupported_media_type(),
        ),
        typed(
            "multipart/form-data; boundary=x",
            415,
            unsupported_media_type(),
        ),
        typed("application/xml", 415, unsupported_media_type()),
        typed("application/json; charset=utf-8", 200, pending()),
        typed("Application/JSON", 200, pending()),
        typed("application/vnd.api+json", 200, pending()),
        text(
            "duplicate phoneNumber keys",
            r#"{"phoneNumber": "+14155550701", "phoneNumber": "+14155550702"}"#,
            400,
            duplicate_keys(),
        ),
        text(
            "duplicate keys in a nested object",
            r#"{"phoneNumber": "+14155550701", "x": {"a": 1, "a": 2}}"#,
            400,
            duplicate_keys(),
        ),
        text(
            "satellite (Iridium)",
            phone("+8816212345678"),
            403,
            not_allowed(),
        ),
        text(
            "satellite (Inmarsat)",
            phone("+870773111632"),
            403,
            not_allowed(),
        ),
        text(
            "international network",
            phone("+883510012345"),
            403,
            not_allowed(),
        ),
        text(
            "international freephone",
            phone("+80012345678"),
            403,
            not_allowed(),
        ),
        text(
            "UK personal number",
            phone("+447012345678"),
            403,
            not_allowed(),
        ),
        text("UK pager", phone("+447640123456"), 403, not_allowed()),
        text("UK VoIP", phone("+445612345678"), 403, not_allowed()),
        text(
            "UK corporate (UAN)",
            phone("+445512345678"),
            403,
            not_allowed(),
        ),
        text("UK mobile", phone("+447400123456"), 200, pending()),
        Case {
            name: "base64 JSON body",
            body: Body::Base64(phone(PHONE).into_bytes()),
            content_type: Some("application/json"),
            status: 200,
            expected: pending(),
        },
    ];
    let sendable = cases.iter().filter(|c| c.status == 200).count();
    for case in cases {
        run(&app, "request-otp-http-api.json", case).await;
    }
    assert_eq!(
        app.sms_count().await,
        sendable,
        "only the valid cases sent an SMS"
    );
}

#[tokio::test]
async fn hostile_verify_otp_inputs_get_their_documented_answers() {
    let app = TestApp::builder()
        .env("OTP_MAX_ATTEMPTS", "100")
        .spawn()
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    let verify = |otp: Value| json!({"phoneNumber": PHONE, "otp": otp}).to_string();
    let invalid_code = json!({"error": "invalid_code", "message": "Invalid or expired OTP."});
    let cases = vec![
        text("malformed JSON", "{\"otp\": ", 400, verify_shape()),
        text("missing otp", phone(PHONE), 400, verify_shape()),
        text(
            "missing phone",
            "{\"otp\": \"123456\"}",
            400,
            verify_shape(),
        ),
        text("numeric otp", verify(json!(123456)), 400, verify_shape()),
        text("null otp", verify(Value::Null), 400, verify_shape()),
        text("array otp", verify(json!(["123456"])), 400, verify_shape()),
        text(
            "bad phone",
            json!({"phoneNumber": "4155552671", "otp": "123456"}).to_string(),
            400,
            bad_phone(),
        ),
        text("empty otp", verify(json!("")), 400, bad_code()),
        text("five digits", verify(json!("12345")), 400, bad_code()),
        text("seven digits", verify(json!("1234567")), 400, bad_code()),
        text(
            "Arabic-Indic digits",
            verify(json!("١٢٣٤٥٦")),
            400,
            bad_code(),
        ),
        text(
            "full-width digits",
            verify(json!("１２３４５６")),
            400,
            bad_code(),
        ),
        text(
            "letter O for zero",
            verify(json!("12345O")),
            400,
            bad_code(),
        ),
        text("sign", verify(json!("+12345")), 400, bad_code()),
        text(
            "surrounding spaces",
            verify(json!(" 123456 ")),
            400,
            bad_code(),
        ),
        text("inner space", verify(json!("123 456")), 400, bad_code()),
        text("null byte", verify(json!("12345\u{0}")), 400, bad_code()),
        text("wrong code", verify(json!(wrong(&code))), 400, invalid_code),
    ];
    for case in cases {
        run(&app, "verify-otp-http-api.json", case).await;
    }
    // None of the malformed inputs spent the code: it still works.
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}
