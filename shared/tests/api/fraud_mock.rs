//! The other side of the wire for the adaptive defences, as the tests play
//! it: a CAPTCHA provider's siteverify (checking its exact form: `secret`,
//! `response`, `remoteip` and nothing else) and Plivo's Lookup API
//! (checking path, query, Basic auth and method), each on a server of its
//! own; and apps configured to use them.

use serde_json::json;
use wiremock::{
    Match, Mock, MockServer, ResponseTemplate,
    matchers::{basic_auth, header, method, path},
};

use crate::support::*;

pub const CAPTCHA_SECRET: &str = "captcha-test-secret-0001";
/// Cloudflare's published always-passes site key, as a client would get it.
pub const SITE_KEY: &str = "1x00000000000000000000AA";
/// Cloudflare's published dummy token, as the test secret keys accept it.
pub const GOOD_TOKEN: &str = "XXXX.DUMMY.TOKEN.XXXX";
pub const BAD_TOKEN: &str = "not-a-solved-captcha";
/// The source address of the sample events.
pub const SOURCE_IP: &str = "203.0.113.7";
pub const SITEVERIFY: &str = "/turnstile/v0/siteverify";

/// Matches siteverify's form exactly: `secret` (ours), `response` (the
/// token) and `remoteip` (the caller), urlencoded, and nothing else.
pub struct SiteverifyForm {
    token: String,
}

impl Match for SiteverifyForm {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let mut fields: Vec<(String, String)> = form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        fields.sort();
        fields
            == [
                ("remoteip".to_owned(), SOURCE_IP.to_owned()),
                ("response".to_owned(), self.token.clone()),
                ("secret".to_owned(), CAPTCHA_SECRET.to_owned()),
            ]
    }
}

/// siteverify, for one token.
pub fn siteverify(token: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(SITEVERIFY))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(SiteverifyForm {
            token: token.to_owned(),
        })
}

/// siteverify's JSON answer.
pub fn verdict(success: bool) -> ResponseTemplate {
    let body = if success {
        json!({"success": true, "error-codes": [], "challenge_ts": "2026-11-25T16:47:23Z",
               "hostname": "app.example.com", "action": "otp", "cdata": ""})
    } else {
        json!({"success": false, "error-codes": ["invalid-input-response"]})
    };
    ResponseTemplate::new(200).set_body_json(body)
}

/// A provider that knows `GOOD_TOKEN` and rejects `BAD_TOKEN`.
pub async fn captcha_provider() -> MockServer {
    let server = MockServer::start().await;
    siteverify(GOOD_TOKEN)
        .respond_with(verdict(true))
        .mount(&server)
        .await;
    siteverify(BAD_TOKEN)
        .respond_with(verdict(false))
        .mount(&server)
        .await;
    server
}

/// An app whose secret holds `captcha_secret`, set up for `provider`
/// with its siteverify at `server`.
pub async fn with_captcha(builder: Builder, provider: &str, server: &MockServer) -> Builder {
    let secret = json!({
        "plivo_auth_id": AUTH_ID,
        "plivo_auth_token": AUTH_TOKEN,
        "signing_key": SIGNING_KEY,
        "captcha_secret": CAPTCHA_SECRET,
    })
    .to_string();
    builder
        .env("OTP_SECRET_ID", &create_secret(&secret).await)
        .env("CAPTCHA_PROVIDER", provider)
        .env("CAPTCHA_SITE_KEY", SITE_KEY)
        .env(
            "CAPTCHA_VERIFY_URL",
            &format!("{}{SITEVERIFY}", server.uri()),
        )
}

/// The siteverify calls `server` received.
pub async fn siteverify_calls(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == SITEVERIFY)
        .count()
}

/// Matches a query that is exactly `type=carrier`.
pub struct CarrierQuery;

impl Match for CarrierQuery {
    fn matches(&self, request: &wiremock::Request) -> bool {
        request.url.query() == Some("type=carrier")
    }
}

/// Plivo's Lookup for `number`, with the account's Basic auth.
pub fn lookup(number: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(format!("/v1/Number/{number}")))
        .and(CarrierQuery)
        .and(basic_auth(AUTH_ID, AUTH_TOKEN))
}

/// Plivo's answer for a number whose carrier calls it `kind`, in the
/// shape Plivo documents.
pub fn carrier(number: &str, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "api_id": uuid::Uuid::new_v4().to_string(),
        "phone_number": number,
        "country": {"name": "United States", "iso2": "US", "iso3": "USA"},
        "format": {"e164": number, "national": "(415) 555-2671",
                   "international": "+1 415-555-2671", "rfc3966": "tel:+1-415-555-2671"},
        "carrier": {"mobile_country_code": "310", "mobile_network_code": "160",
                    "name": "Example Carrier", "type": kind, "ported": "no"},
        "resource_uri": format!("/v1/Number/{number}?type=carrier"),
    }))
}

/// An app that screens the line types in `blocked`, with its Lookup API at
/// `server`.
pub fn with_lookup(builder: Builder, blocked: &str, server: &MockServer) -> Builder {
    builder
        .env("LOOKUP_BLOCKED_LINE_TYPES", blocked)
        .env("PLIVO_LOOKUP_URL", &server.uri())
}

/// The lookups `server` received.
pub async fn lookup_calls(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().starts_with("/v1/Number/"))
        .count()
}

impl TestApp {
    /// request-otp for `phone` carrying a CAPTCHA token.
    pub async fn request_with_token(&self, phone: &str, token: &str) -> TestResponse {
        self.request_raw(&json!({"phoneNumber": phone, "captchaToken": token}).to_string())
            .await
    }

    /// verify-otp for `phone` carrying a CAPTCHA token.
    pub async fn verify_with_token(&self, phone: &str, otp: &str, token: &str) -> TestResponse {
        self.verify_raw(
            &json!({"phoneNumber": phone, "otp": otp, "captchaToken": token}).to_string(),
        )
        .await
    }

    /// The sends and verifications the breaker holds for `destination`
    /// (`US:415555`) in its window, summed over its buckets; checked
    /// against the running totals the script decides by.
    pub async fn breaker_counts(&self, destination: &str) -> (i64, i64) {
        let fields: Vec<String> = self
            .redis
            .query(redis::cmd("HGETALL").arg(format!("{}:dest:{{{destination}}}", self.prefix)))
            .await;
        let (mut buckets, mut totals) = ((0, 0), (0, 0));
        for pair in fields.chunks(2) {
            let n: i64 = pair[1].parse().unwrap_or(0);
            match pair[0].as_str() {
                "ts" => totals.0 = n,
                "tv" => totals.1 = n,
                name if name.starts_with('s') => buckets.0 += n,
                name if name.starts_with('v') => buckets.1 += n,
                _ => {}
            }
        }
        assert_eq!(buckets, totals, "the totals match the buckets: {fields:?}");
        buckets
    }

    /// The wrong guesses at live codes `phone` made in the last day.
    pub async fn daily_failures(&self, phone: &str) -> i64 {
        self.redis
            .query(redis::cmd("ZCARD").arg(self.key(phone, "daily")))
            .await
    }
}

/// The 403 body of a CAPTCHA step-up names the provider and the site key.
pub fn assert_captcha(response: &TestResponse, error: &str, provider: &str) {
    assert_eq!(response.status, 403, "{}", response.body);
    assert_eq!(response.error(), error, "{}", response.body);
    assert_eq!(
        response.body["captcha"],
        json!({"provider": provider, "siteKey": SITE_KEY}),
        "{}",
        response.body
    );
    assert!(
        response.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}
