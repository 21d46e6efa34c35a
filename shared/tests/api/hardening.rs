//! The holes an attack found, closed: costly number types, IPv6 blocks that
//! multiplied budgets, answers that told strangers too much, and phone
//! numbers in Redis key names. (Locks, guesses and re-submitted codes are
//! in `verify.rs`; content types and duplicate keys in `hostile.rs`.)

use serde_json::json;

use crate::support::*;

fn from(ip: &'static str, phone: &str) -> impl FnOnce(&mut serde_json::Value) {
    let body = json!({ "phoneNumber": phone }).to_string();
    move |e| {
        e["body"] = json!(body);
        e["requestContext"]["http"]["sourceIp"] = json!(ip);
    }
}

#[tokio::test]
async fn the_64s_of_one_ipv6_48_share_a_second_budget() {
    let app = TestApp::builder()
        .env("IP_MAX_SENDS_PER_HOUR", "100")
        .env("IPV6_48_MAX_SENDS_PER_HOUR", "3")
        .spawn()
        .await;
    let phones = [
        "+14155550801",
        "+14155550802",
        "+14155550803",
        "+14155550804",
    ];
    let blocks = [
        "2001:db8:7:1::1",
        "2001:db8:7:2::1",
        "2001:db8:7:3::1",
        "2001:db8:7:4::1",
    ];
    let mut statuses = Vec::new();
    for (ip, phone) in blocks.into_iter().zip(phones) {
        statuses.push(
            app.request_event("request-otp-http-api.json", from(ip, phone))
                .await
                .status,
        );
    }

    assert_eq!(statuses, [200, 200, 200, 429]);
    let other_site = app
        .request_event(
            "request-otp-http-api.json",
            from("2001:db8:8:1::1", "+14155550805"),
        )
        .await;
    assert_eq!(other_site.status, 200);
}

#[tokio::test]
async fn the_per_ip_answer_speaks_of_the_network_not_of_the_phone_number() {
    let app = TestApp::builder()
        .env("IP_MAX_VERIFIES_PER_HOUR", "1")
        .env("IP_MAX_SENDS_PER_HOUR", "1")
        .spawn()
        .await;
    app.verify(PHONE, "123456").await;
    let verify = app.verify(PHONE, "123456").await;
    app.request(PHONE).await;
    let request = app.request("+14155550806").await;

    for response in [&verify, &request] {
        assert_eq!(response.status, 429);
        let message = response.body["message"].as_str().unwrap();
        assert!(message.contains("your network"), "{message}");
        assert!(!message.contains("phone number"), "{message}");
    }
}

#[tokio::test]
async fn cooldown_and_quota_answer_alike_with_a_wait_in_whole_minutes() {
    let cooldown = TestApp::spawn().await;
    cooldown.request(PHONE).await;
    let in_cooldown = cooldown.request(PHONE).await;
    let quota = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .env("OTP_MAX_SENDS_PER_HOUR", "1")
        .spawn()
        .await;
    quota.request(PHONE).await;
    let over_quota = quota.request(PHONE).await;

    for response in [&in_cooldown, &over_quota] {
        assert_eq!(response.status, 429);
        assert_eq!(response.error(), "too_many_requests");
        let message = response.body["message"].as_str().unwrap();
        assert!(
            message.starts_with("No new code can be sent to this phone number yet."),
            "{message}"
        );
        assert_eq!(response.retry_after() % 60, 0);
    }
    assert_eq!(
        in_cooldown.retry_after(),
        60,
        "not the seconds since the last send"
    );
    assert_eq!(over_quota.retry_after(), 3_600);
}

#[tokio::test]
async fn costly_number_types_are_refused_unless_listed() {
    let strict = TestApp::spawn().await;
    let voip = strict.request("+445612345678").await;
    assert_eq!(
        (voip.status, voip.error()),
        (403, "destination_not_allowed")
    );

    let listed = TestApp::builder()
        .env("ALLOWED_NUMBER_TYPES", "mobile,fixed_line_or_mobile,voip")
        .spawn()
        .await;
    assert_eq!(listed.request("+445612345678").await.status, 200);
    assert_eq!(listed.sms_count().await, 1);
}

#[tokio::test]
async fn test_and_trusted_numbers_are_exempt_from_the_type_rules() {
    let app = TestApp::builder()
        .env("TEST_PHONE_NUMBERS", "+15005550006:123456")
        .env("TRUSTED_PHONE_NUMBERS", "+447012345678, +8816212345678")
        .spawn()
        .await;

    assert_eq!(
        app.request("+15005550006").await.status,
        200,
        "a test number"
    );
    assert_eq!(
        app.request("+447012345678").await.status,
        200,
        "a trusted personal number"
    );
    assert_eq!(
        app.request("+8816212345678").await.status,
        200,
        "a trusted satellite number"
    );
    let untrusted = app.request("+447012345679").await;
    assert_eq!(untrusted.status, 403);
    assert_eq!(app.sms_count().await, 2);
}

#[tokio::test]
async fn calls_may_reach_fixed_lines_where_sms_may_not() {
    let app = TestApp::spawn().await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;
    let london_landline = "+442071234567";

    let by_sms = app.request(london_landline).await;
    let by_voice = app
        .request_raw(&json!({"phoneNumber": london_landline, "channel": "voice"}).to_string())
        .await;

    assert_eq!(
        (by_sms.status, by_sms.error()),
        (403, "destination_not_allowed")
    );
    assert_eq!(by_voice.status, 200, "{}", by_voice.body);
    assert_eq!(app.plivo_requests("Call").await.len(), 1);
}

#[tokio::test]
async fn redis_key_names_and_values_never_hold_a_phone_number() {
    let app = TestApp::builder()
        .env("OTP_RESEND_COOLDOWN_SECONDS", "0")
        .spawn()
        .await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;
    app.request(PHONE).await;
    let code = app.last_code(PHONE).await;
    app.verify(PHONE, &wrong(&code)).await;
    app.verify(PHONE, &code).await;
    app.request_with_key(PHONE, "audit-key").await;
    app.request_raw(&json!({"phoneNumber": PHONE, "channel": "voice"}).to_string())
        .await;

    let keys: Vec<String> = app
        .redis
        .query(redis::cmd("KEYS").arg(format!("{}:*", app.prefix)))
        .await;
    assert!(keys.len() >= 6, "{keys:?}");
    let national = &PHONE[2..];
    for key in &keys {
        assert!(!key.contains(national), "{key}");
        assert!(
            key.contains(tag(PHONE).as_str())
                || key.contains(":ip:")
                || key.contains(":nonce:")
                // The pumping breaker's counters, named by a range of
                // 10,000 numbers or more (`US:415555`), no one's number.
                || key.ends_with(":dest:{US:415555}"),
            "{key}"
        );
    }
    let dump = app.redis_dump(PHONE).await.join("\n");
    assert!(!dump.contains(national), "{dump}");
}
