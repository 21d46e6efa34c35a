//! Messages in the person's language, through the edge: the number's
//! country chooses, the request's `locale` overrides, a call speaks the
//! chosen language through its signed answer URL, and the autofill lines
//! stay as their formats require.

use serde_json::json;

use crate::support::*;

const SPAIN: &str = "+34612345678";
const JAPAN: &str = "+819012345678";

async fn request_in(app: &TestApp, phone: &str, locale: serde_json::Value) -> TestResponse {
    app.request_raw(&json!({"phoneNumber": phone, "locale": locale}).to_string())
        .await
}

async fn last_text(app: &TestApp, phone: &str) -> String {
    let texts = app.sms_texts().await;
    let (_, text) = texts
        .iter()
        .rev()
        .find(|(dst, _)| dst == phone)
        .expect("an SMS was sent");
    text.clone()
}

#[tokio::test]
async fn a_spanish_number_gets_its_code_in_spanish() {
    let app = TestApp::spawn().await;

    assert_eq!(app.request(SPAIN).await.status, 200);

    let text = last_text(&app, SPAIN).await;
    let code = app.last_code(SPAIN).await;
    assert_eq!(text, format!("Tu código de Acme es {code}."));
    assert_eq!(app.verify(SPAIN, &code).await.status, 200);
}

#[tokio::test]
async fn the_locale_field_overrides_the_numbers_country() {
    let app = TestApp::spawn().await;

    assert_eq!(request_in(&app, SPAIN, json!("de-AT")).await.status, 200);
    assert_eq!(request_in(&app, PHONE, json!("es-MX")).await.status, 200);
    assert_eq!(request_in(&app, JAPAN, json!("zh_TW")).await.status, 200);

    assert!(
        last_text(&app, SPAIN)
            .await
            .starts_with("Ihr Bestätigungscode für Acme lautet ")
    );
    assert!(
        last_text(&app, PHONE)
            .await
            .starts_with("Tu código de Acme es ")
    );
    assert!(last_text(&app, JAPAN).await.starts_with("您的Acme驗證碼是"));
}

#[tokio::test]
async fn an_unknown_locale_falls_back_and_a_locale_that_is_not_a_string_is_refused() {
    let app = TestApp::spawn().await;

    assert_eq!(request_in(&app, SPAIN, json!("xx-YY")).await.status, 200);
    assert_eq!(request_in(&app, PHONE, json!(null)).await.status, 200);
    let refused = request_in(&app, JAPAN, json!(42)).await;

    assert!(
        last_text(&app, SPAIN)
            .await
            .starts_with("Tu código de Acme")
    );
    assert!(
        last_text(&app, PHONE)
            .await
            .starts_with("Your Acme verification code is ")
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error(), "invalid_request");
    assert!(
        refused.body["message"].as_str().unwrap().contains("locale"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn the_webotp_and_android_lines_stay_last_whatever_the_language() {
    let app = TestApp::builder()
        .env("WEBOTP_DOMAIN", "login.example.com")
        .env("ANDROID_APP_HASH", "FA+9qCX9VSu")
        .spawn()
        .await;

    assert_eq!(request_in(&app, SPAIN, json!("ja")).await.status, 200);

    let text = last_text(&app, SPAIN).await;
    let code = app.last_code(SPAIN).await;
    assert_eq!(
        text,
        format!("Acmeの認証コード：{code}（5分間有効）\n\nFA+9qCX9VSu\n@login.example.com #{code}")
    );
}

#[tokio::test]
async fn a_call_speaks_the_chosen_language_through_its_answer_url() {
    let app = TestApp::spawn().await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;
    let call = |phone: &'static str, locale: Option<&'static str>| {
        let mut body = json!({"phoneNumber": phone, "channel": "voice"});
        if let Some(locale) = locale {
            body["locale"] = json!(locale);
        }
        let app = &app;
        async move { app.request_raw(&body.to_string()).await }
    };

    assert_eq!(call(PHONE, Some("ja")).await.status, 200);
    let japanese_url = last_answer_url(&app).await;
    assert_eq!(call(SPAIN, None).await.status, 200);
    let spanish_url = last_answer_url(&app).await;

    assert!(japanese_url.ends_with("&locale=ja"), "{japanese_url}");
    let answer = app.answer_call(&japanese_url, PHONE).await;
    assert!(
        answer
            .body
            .starts_with("<Response><Speak language=\"ja-JP\">Acmeの認証コードは、"),
        "{}",
        answer.body
    );
    // The number's own language needs no mention in the URL.
    assert!(!spanish_url.contains("locale="), "{spanish_url}");
    let answer = app.answer_call(&spanish_url, SPAIN).await;
    assert!(
        answer.body.starts_with(
            "<Response><Speak language=\"es-ES\">Tu código de verificación de Acme es "
        ),
        "{}",
        answer.body
    );
    let code = spoken_code(&answer.body, 6).expect("the call speaks the code");
    assert_eq!(app.verify(SPAIN, &code).await.status, 200);
}

#[tokio::test]
async fn the_fallback_call_after_an_undelivered_sms_speaks_the_smss_language() {
    let app = TestApp::builder()
        .env("VOICE_FALLBACK", "auto")
        .spawn()
        .await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;
    assert_eq!(request_in(&app, PHONE, json!("ko")).await.status, 200);
    let messages = app.plivo_requests("Message").await;
    let status_url = messages.last().unwrap()["url"].as_str().unwrap().to_owned();
    assert!(status_url.ends_with("&locale=ko"), "{status_url}");

    let receipt = app.message_status(&status_url, PHONE, "undelivered").await;

    assert_eq!(receipt.status, 204);
    let answer = app.answer_call(&last_answer_url(&app).await, PHONE).await;
    assert!(
        answer
            .body
            .starts_with("<Response><Speak language=\"ko-KR\">Acme 인증번호는 "),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_call_in_a_language_plivo_cannot_speak_is_in_english() {
    let app = TestApp::spawn().await;
    plivo_call(AUTH_ID, AUTH_TOKEN)
        .respond_with(plivo_call_fired())
        .mount(&app.plivo)
        .await;

    let body = json!({"phoneNumber": "+358401234567", "channel": "voice"});
    assert_eq!(app.request_raw(&body.to_string()).await.status, 200);

    let answer = app
        .answer_call(&last_answer_url(&app).await, "+358401234567")
        .await;
    assert!(
        answer
            .body
            .starts_with("<Response><Speak language=\"en-US\">Your Acme verification code is "),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn otp_message_templates_replaces_and_adds_texts() {
    let app = TestApp::builder()
        .env(
            "OTP_MESSAGE_TEMPLATES",
            r#"{"es": "{brand}: tu código es {code}", "ca": "El teu codi de {brand} és {code}"}"#,
        )
        .spawn()
        .await;

    assert_eq!(app.request(SPAIN).await.status, 200);
    assert_eq!(request_in(&app, PHONE, json!("ca-ES")).await.status, 200);

    let code = app.last_code(SPAIN).await;
    assert_eq!(
        last_text(&app, SPAIN).await,
        format!("Acme: tu código es {code}")
    );
    assert!(
        last_text(&app, PHONE)
            .await
            .starts_with("El teu codi de Acme és ")
    );
}

#[tokio::test]
async fn a_bad_otp_message_templates_stops_the_cold_start_naming_the_variable() {
    let env = |name: &str| match name {
        "OTP_SECRET_ID" => Some("otp/dev".to_owned()),
        "PLIVO_SENDER" => Some(SENDER.to_owned()),
        "REDIS_URL" => Some(redis_url()),
        "OTP_MESSAGE_TEMPLATES" => Some(r#"{"es": "sin el código"}"#.to_owned()),
        _ => None,
    };

    let err = otp::config::Config::from_lookup(env).unwrap_err();

    let line = otp::error_chain(&otp::services::InitError::from(err));
    assert!(
        line.starts_with("configuration error: OTP_MESSAGE_TEMPLATES is invalid"),
        "{line}"
    );
}

async fn last_answer_url(app: &TestApp) -> String {
    let calls = app.plivo_requests("Call").await;
    let call = calls.last().expect("a call was placed");
    call["answer_url"].as_str().unwrap().to_owned()
}
