//! The catalog as request-otp uses it: every built-in text within one SMS
//! segment, lookup by tag and by country, voices, and overrides.

use super::*;
use crate::domain::CodeLength;

/// The room every built-in SMS must leave (see `builtin`'s module docs).
const BRAND: &str = "Acme Store";
const DOMAIN: &str = "app.example.com";

fn messages(overrides: Option<&str>) -> Result<Messages, ConfigError> {
    messages_for(BRAND, Some(DOMAIN), overrides)
}

fn messages_for(
    brand: &str,
    domain: Option<&str>,
    overrides: Option<&str>,
) -> Result<Messages, ConfigError> {
    let english = MessageTemplate::new(
        "Your {brand} verification code is {code}. It expires in {minutes} minutes.".into(),
        brand.into(),
        domain.map(String::from),
        None,
    )?;
    let voice = VoiceTemplate::new(
        "Your {brand} verification code is {code}. Once again, your code is {code}.".into(),
        brand.into(),
    )?;
    Messages::new(english, voice, "en-US".into(), overrides)
}

fn code(digits: usize) -> OtpCode {
    let text: String = "9876543210".chars().take(digits).collect();
    OtpCode::parse(&text, CodeLength::new(digits).unwrap()).unwrap()
}

#[test]
fn at_least_fifteen_languages_ship_with_an_sms_text() {
    let messages = messages(None).unwrap();
    let locales = messages.locales();
    assert!(locales.len() >= 15, "{locales:?}");
    assert_eq!(
        locales.len(),
        BUILTIN.len() + 1,
        "the built-ins and English"
    );
}

#[test]
fn every_built_in_sms_fits_one_segment_with_a_ten_digit_code_and_the_webotp_line() {
    let messages = messages(None).unwrap();
    for locale in messages.locales() {
        for digits in [6, 10] {
            let text = messages.sms(&locale, &code(digits), 600);
            let s = segments(&text);
            assert_eq!(s.count, 1, "{locale:?} {s:?}: {text:?}");
            assert!(text.ends_with(&format!("\n\n@{DOMAIN} #{}", code(digits).expose())));
            assert!(text.contains(BRAND), "{locale:?}: {text:?}");
            assert!(
                !text.contains('{'),
                "{locale:?}: a placeholder left: {text:?}"
            );
        }
    }
}

#[test]
fn texts_that_gsm7_can_carry_are_sent_as_gsm7() {
    let messages = messages(None).unwrap();
    for id in [
        "en", "fr", "de", "it", "nl", "sv", "da", "nb", "fi", "id", "pl", "ro", "tr",
    ] {
        let locale = messages.known(id).unwrap();
        let text = messages.sms(&locale, &code(10), 300);
        assert_eq!(segments(&text).encoding, Encoding::Gsm7, "{id}: {text:?}");
    }
}

#[test]
fn a_spanish_number_gets_spanish_and_the_locale_field_overrides_it() {
    let messages = messages_for("Acme", None, None).unwrap();
    let spanish = messages.resolve(None, Some("ES"));
    assert_eq!(spanish.as_str(), "es");
    assert_eq!(
        messages.sms(&spanish, &code(6), 300),
        "Tu código de Acme es 987654."
    );
    let german = messages.resolve(Some("de-AT"), Some("ES"));
    assert!(
        messages
            .sms(&german, &code(6), 300)
            .starts_with("Ihr Bestätigungscode für Acme")
    );
}

#[test]
fn an_unknown_or_malformed_locale_falls_back_to_the_numbers_country_then_english() {
    let messages = messages(None).unwrap();
    for requested in ["xx", "tlh-Latn", "", "not a tag", "e"] {
        assert_eq!(messages.resolve(Some(requested), Some("FR")).as_str(), "fr");
        assert_eq!(messages.resolve(Some(requested), Some("US")).as_str(), "en");
        assert_eq!(messages.resolve(Some(requested), None).as_str(), "en");
    }
}

#[test]
fn close_tags_find_the_locale_that_reads_right() {
    let messages = messages(None).unwrap();
    for (requested, expected) in [
        ("es-MX", "es"),
        ("es_419", "es"),
        ("pt", "pt-br"),
        ("pt-AO", "pt-pt"),
        ("PT-br", "pt-br"),
        ("zh", "zh-hans"),
        ("zh-TW", "zh-hant"),
        ("zh-Hant-HK", "zh-hant"),
        ("no", "nb"),
        ("iw", "he"),
    ] {
        assert_eq!(
            messages.resolve(Some(requested), None).as_str(),
            expected,
            "{requested}"
        );
    }
    for (country, expected) in [
        ("BR", "pt-br"),
        ("AO", "pt-pt"),
        ("MX", "es"),
        ("TW", "zh-hant"),
        ("CN", "zh-hans"),
        ("JP", "ja"),
        ("IN", "en"),
    ] {
        assert_eq!(
            messages.for_country(Some(country)).as_str(),
            expected,
            "{country}"
        );
    }
}

#[test]
fn calls_speak_the_language_where_plivo_has_it_and_english_otherwise() {
    let messages = messages_for("Acme", None, None).unwrap();
    let (language, text) = messages.voice(&messages.known("ja").unwrap(), &code(6));
    assert_eq!(language, "ja-JP");
    assert!(text.contains("9, 8, 7, 6, 5, 4"), "{text}");
    let (language, text) = messages.voice(&messages.known("fi").unwrap(), &code(6));
    assert_eq!(language, "en-US");
    assert!(
        text.starts_with("Your Acme verification code is 9, 8"),
        "{text}"
    );
    assert_eq!(
        messages
            .voice(&messages.known("zh-hant").unwrap(), &code(6))
            .0,
        "cmn-CN"
    );
}

#[test]
fn otp_message_templates_replace_and_add_locales() {
    let overrides = r#"{
        "es": "Código {brand}: {code}",
        "es-MX": "Tu código de {brand}: {code}",
        "ca": {"sms": "El teu codi de {brand} és {code}", "voice": "El teu codi és {code}", "voice_language": "ca-ES"}
    }"#;
    let messages = messages_for("Acme", None, Some(overrides)).unwrap();
    let es = messages.resolve(None, Some("ES"));
    assert_eq!(messages.sms(&es, &code(6), 300), "Código Acme: 987654");
    let mx = messages.resolve(None, Some("MX"));
    assert_eq!(mx.as_str(), "es-mx");
    assert_eq!(
        messages.sms(&mx, &code(6), 300),
        "Tu código de Acme: 987654"
    );
    let ca = messages.resolve(Some("ca-ES"), Some("ES"));
    assert_eq!(messages.voice(&ca, &code(6)).0, "ca-ES");
    // A built-in locale keeps its voice when only its SMS is replaced.
    assert_eq!(messages.voice(&es, &code(6)).0, "es-ES");
}

#[test]
fn a_bad_otp_message_templates_is_refused_with_the_variables_name() {
    for bad in [
        "not json",
        "[\"es\"]",
        r#"{"es": "no code here"}"#,
        r#"{"es": 42}"#,
        r#"{"español": "{code}"}"#,
        r#"{"es": {"sms": "{code}", "colour": "red"}}"#,
        r#"{"ca": {"voice": "{code}", "voice_language": "ca-ES"}}"#,
        r#"{"ca": {"sms": "{code}", "voice": "{code}"}}"#,
        r#"{"ca": {"sms": "{code}", "voice": "{code}", "voice_language": "ca ES"}}"#,
    ] {
        let err = messages(Some(bad)).unwrap_err().to_string();
        assert!(
            err.starts_with("OTP_MESSAGE_TEMPLATES is invalid"),
            "{bad}: {err}"
        );
    }
}
