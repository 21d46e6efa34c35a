//! Plivo's side of the wire, as the tests play it: mocks of the Message and
//! Call APIs that check Plivo's exact request format (path, Basic auth,
//! content type, exact body keys), and signed callbacks as Plivo sends them.

use otp::plivo::signature::{self, Signed, Version};
use serde_json::{Value, json};
use wiremock::{
    Match, Mock, MockServer, ResponseTemplate,
    matchers::{basic_auth, header, method, path},
};

use crate::support::*;

/// `https://{domain}[/{stage}]{route}?send={32 hex}[&locale={id}]`: our
/// callback URL (the locale when the client chose one).
pub fn is_callback_url(route: &'static str) -> impl Fn(&str) -> bool {
    move |url: &str| {
        let Some((base, query)) = url.split_once("?send=") else {
            return false;
        };
        let send = match query.split_once("&locale=") {
            Some((send, locale)) => {
                let id_like = !locale.is_empty()
                    && locale
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !id_like {
                    return false;
                }
                send
            }
            None => query,
        };
        url.starts_with("https://")
            && base.ends_with(route)
            && send.len() == 32
            && send.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// Matches a request body that is exactly Plivo's `{"src","dst","text"}`,
/// with `url` and `method` (`POST`) for delivery receipts when the service
/// knows its public URL: then `url` is our status route with a send id.
pub struct PlivoMessageBody;

impl Match for PlivoMessageBody {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if let Some(text) = body.get("text").and_then(Value::as_str) {
            // Every code that went out, for the leak audit to look for.
            for run in text
                .split(|c: char| !c.is_ascii_digit())
                .filter(|r| (6..=10).contains(&r.len()))
            {
                audit_append("codes.txt", run);
            }
        }
        let receipts = match keys.as_slice() {
            ["dst", "src", "text"] => true,
            ["dst", "method", "src", "text", "url"] => {
                body["method"] == "POST"
                    && body["url"]
                        .as_str()
                        .is_some_and(is_callback_url("/api/otp/status"))
            }
            _ => false,
        };
        receipts
            && body["src"] == SENDER
            && body["dst"].as_str().is_some_and(|d| d.starts_with('+'))
            && body["text"].is_string()
    }
}

/// A mock of Plivo's Message API for `auth_id`, checking path, Basic auth,
/// content type and body shape; anything else falls through to a 404.
pub fn plivo_message(auth_id: &str, auth_token: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{auth_id}/Message/")))
        .and(basic_auth(auth_id, auth_token))
        .and(header("content-type", "application/json"))
        .and(PlivoMessageBody)
}

/// Plivo answers every message for the test credentials with `response`.
pub async fn plivo_answers(server: &MockServer, response: ResponseTemplate) {
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(response)
        .mount(server)
        .await;
}

/// Plivo answers the next message with `response`; mocks mounted after this
/// one answer the rest.
pub async fn plivo_answers_once(server: &MockServer, response: ResponseTemplate) {
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(response)
        .up_to_n_times(1)
        .mount(server)
        .await;
}

pub fn plivo_accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "api_id": uuid::Uuid::new_v4().to_string(),
        "message": "message(s) queued",
        "message_uuid": [uuid::Uuid::new_v4().to_string()],
    }))
}

/// Matches a body that is exactly Plivo's Call API request:
/// `from`, `to`, `answer_url` + `answer_method`, `hangup_url` + `hangup_method`.
pub struct PlivoCallBody;

impl Match for PlivoCallBody {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys == [
            "answer_method",
            "answer_url",
            "from",
            "hangup_method",
            "hangup_url",
            "to",
        ] && body["from"] == SENDER
            && body["to"].as_str().is_some_and(|d| d.starts_with('+'))
            && body["answer_method"] == "POST"
            && body["hangup_method"] == "POST"
            && body["answer_url"]
                .as_str()
                .is_some_and(is_callback_url("/api/otp/voice/answer"))
            && body["hangup_url"]
                .as_str()
                .is_some_and(is_callback_url("/api/otp/voice/hangup"))
    }
}

/// A mock of Plivo's Call API for `auth_id`.
pub fn plivo_call(auth_id: &str, auth_token: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{auth_id}/Call/")))
        .and(basic_auth(auth_id, auth_token))
        .and(header("content-type", "application/json"))
        .and(PlivoCallBody)
}

/// Plivo's answer to a call it will place.
pub fn plivo_call_fired() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "api_id": uuid::Uuid::new_v4().to_string(),
        "message": "call fired",
        "request_uuid": uuid::Uuid::new_v4().to_string(),
    }))
}

/// Plivo's callback form fields and signature headers for `url`, signed
/// with V3 under `token` and a fresh nonce.
pub fn signed_callback<V: AsRef<str>>(
    url: &str,
    fields: &[(&str, V)],
    token: &str,
) -> (String, Value) {
    let params: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_ref().to_owned()))
        .collect();
    let nonce = format!("{}", rand_nonce());
    let value = signature::sign(
        Version::V3,
        token,
        Signed {
            url,
            params: &params,
        },
        &nonce,
    );
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_ref())))
        .finish();
    let headers = json!({
        "content-type": "application/x-www-form-urlencoded",
        "x-plivo-signature-v3": value,
        "x-plivo-signature-v3-nonce": nonce,
    });
    (body, headers)
}

fn rand_nonce() -> u128 {
    u128::from_str_radix(&uuid::Uuid::new_v4().simple().to_string()[..24], 16).unwrap_or(1)
}

/// What a callback route answered.
pub struct CallbackResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl TestApp {
    /// Every JSON body Plivo's `resource` API (`Message` or `Call`) was sent.
    pub async fn plivo_requests(&self, resource: &str) -> Vec<Value> {
        let suffix = format!("/{resource}/");
        self.plivo
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method == wiremock::http::Method::POST && r.url.path().ends_with(&suffix))
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }

    /// Posts Plivo's form `body` with `headers` to the callback `url`
    /// (one of ours, as handed to Plivo) through plivo-webhook's edge.
    pub async fn callback(&self, url: &str, body: &str, headers: Value) -> CallbackResponse {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let path_and_query = &rest[rest.find('/').unwrap_or(rest.len())..];
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let event = event("request-otp-http-api.json", |e| {
            e["rawPath"] = json!(path);
            e["rawQueryString"] = json!(query);
            e["requestContext"]["http"]["path"] = json!(path);
            e["routeKey"] = json!(format!("POST {path}"));
            e["body"] = json!(body);
            e["isBase64Encoded"] = json!(false);
            let map = e["headers"].as_object_mut().unwrap();
            map.remove("content-type");
            for (k, v) in headers.as_object().unwrap() {
                map.insert(k.clone(), v.clone());
            }
        });
        let response = otp::http::plivo_webhook(&self.services, event).await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = match response.body() {
            lambda_http::Body::Text(text) => text.clone(),
            lambda_http::Body::Empty => String::new(),
            other => panic!("unexpected body {other:?}"),
        };
        // What a call's answer URL gives Plivo is how a code is meant to
        // travel (as an SMS's text is); every other answer is audited.
        if !content_type.contains("xml") {
            audit_append("responses.jsonl", &json!({ "callback": body }).to_string());
        }
        CallbackResponse {
            status,
            content_type,
            body,
        }
    }

    /// Plivo fetching a call's answer URL, signed as Plivo signs it.
    pub async fn answer_call(&self, answer_url: &str, to: &str) -> CallbackResponse {
        let to = to.trim_start_matches('+');
        let (body, headers) = signed_callback(
            answer_url,
            &[
                ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
                ("From", SENDER.trim_start_matches('+')),
                ("To", to),
                ("CallStatus", "in-progress"),
                ("Direction", "outbound"),
                ("Event", "StartApp"),
            ],
            AUTH_TOKEN,
        );
        let response = self.callback(answer_url, &body, headers).await;
        let length = self.services.config.policy.code_length.get();
        if let Some(code) = spoken_code(&response.body, length) {
            // Every code a call spoke, for the leak audit to look for.
            audit_append("codes.txt", &code);
        }
        response
    }

    /// Plivo posting a message status (delivery receipt) to `status_url`.
    pub async fn message_status(
        &self,
        status_url: &str,
        to: &str,
        status: &str,
    ) -> CallbackResponse {
        let (body, headers) = signed_callback(status_url, &status_fields(to, status), AUTH_TOKEN);
        self.callback(status_url, &body, headers).await
    }
}

/// Plivo's message status callback fields for `to` (E.164 with or without '+').
pub fn status_fields(to: &str, status: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "MessageUUID",
            "db3ce55a-7f1d-11e1-8ea7-1231380bc196".to_owned(),
        ),
        ("From", SENDER.trim_start_matches('+').to_owned()),
        ("To", to.trim_start_matches('+').to_owned()),
        ("Status", status.to_owned()),
        (
            "ErrorCode",
            if status == "undelivered" { "30005" } else { "" }.to_owned(),
        ),
        ("Units", "1".to_owned()),
    ]
}

/// The digits a call's XML speaks, joined: the code it reads out.
pub fn spoken_code(xml: &str, length: usize) -> Option<String> {
    let digits: String = xml.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= length).then(|| digits[..length].to_owned())
}
