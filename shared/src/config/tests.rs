//! The configuration's own tests: defaults, and every bad value named.

use std::collections::HashMap;

use super::*;

/// A configuration from the required variables plus `vars`.
pub(crate) fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut env: HashMap<String, String> = [
        ("OTP_SECRET_ID", "otp/dev"),
        ("PLIVO_SENDER", "+14155550100"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(|name| env.get(name).cloned())
}

#[test]
fn defaults_match_the_documented_rules() {
    let config = config(&[]).unwrap();
    let policy = &config.policy;
    assert_eq!(policy.code_length.get(), 6);
    assert_eq!(policy.code_ttl, Duration::from_secs(300));
    assert_eq!(policy.max_attempts, 5);
    assert_eq!(policy.lockout, Duration::from_secs(900));
    assert_eq!(policy.resend_cooldown, Duration::from_secs(30));
    assert_eq!(policy.max_sends_per_hour, 5);
    assert!(policy.allowed_countries.is_empty());
    assert_eq!(config.token.ttl, Duration::from_secs(600));
    assert_eq!(config.token.issuer, "otp-service");
    assert_eq!(config.token.audience, None);
    assert_eq!(config.token.algorithm, TokenAlgorithm::Auto);
    assert_eq!(config.secret_refresh, Duration::from_secs(300));
    assert_eq!(config.plivo.api_url, "https://api.plivo.com");
    assert!(!config.redis.cluster);
}

#[test]
fn a_missing_required_variable_is_named() {
    let env: HashMap<&str, &str> = HashMap::new();
    let err = Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }), "{err}");
}

#[test]
fn out_of_range_values_are_refused_with_the_variable_name() {
    for (var, value) in [
        ("OTP_LENGTH", "5"),
        ("OTP_LENGTH", "11"),
        ("OTP_TTL_SECONDS", "601"),
        ("OTP_MAX_ATTEMPTS", "0"),
        ("OTP_MAX_SENDS_PER_HOUR", "many"),
        ("REDIS_CLUSTER", "maybe"),
        ("REDIS_URL", "http://cache:6379"),
        ("ALLOWED_COUNTRIES", "US,USA"),
        ("PLIVO_API_URL", "api.plivo.com"),
        ("SECRET_REFRESH_SECONDS", "0"),
        ("SECRET_REFRESH_SECONDS", "3601"),
        ("TOKEN_ALGORITHM", "RS256"),
        ("OTP_MESSAGE_TEMPLATES", "{\"es\": \"sin código\"}"),
    ] {
        let err = config(&[(var, value)]).unwrap_err();
        assert!(err.to_string().starts_with(var), "{var}={value}: {err}");
    }
}

#[test]
fn test_numbers_map_e164_numbers_to_fixed_codes() {
    let config = config(&[(
        "TEST_PHONE_NUMBERS",
        "+1 415 555 2671:123456, +447400123456:654321",
    )])
    .unwrap();
    let numbers = &config.policy.test_numbers;
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers["+14155552671"].expose(), "123456");
    assert_eq!(numbers["+447400123456"].expose(), "654321");
}

#[test]
fn a_test_number_code_shorter_than_otp_length_refuses_to_start() {
    let err = config(&[
        ("OTP_LENGTH", "8"),
        ("TEST_PHONE_NUMBERS", "+14155552671:123456"),
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("TEST_PHONE_NUMBERS"), "{err}");
    assert!(err.to_string().contains("exactly 8 digits"), "{err}");
    assert!(
        !err.to_string().contains("123456"),
        "the code stays out of logs: {err}"
    );
    assert!(config(&[("TEST_PHONE_NUMBERS", "14155552671:123456")]).is_err());
    assert!(config(&[("TEST_PHONE_NUMBERS", "+14155552671")]).is_err());
}

#[test]
fn per_ip_limits_default_to_twenty_sends_and_sixty_verifies_an_hour() {
    let config = config(&[]).unwrap();
    assert_eq!(config.policy.ip_max_sends_per_hour, 20);
    assert_eq!(config.policy.ip_max_verifies_per_hour, 60);
}

#[test]
fn voice_settings_default_to_both_channels_the_sms_countries_and_no_fallback() {
    let config = config(&[("ALLOWED_COUNTRIES", "US,CA")]).unwrap();
    let policy = &config.policy;
    assert_eq!(
        policy.channels,
        [Channel::Sms, Channel::Voice].into_iter().collect()
    );
    assert_eq!(policy.voice_allowed_countries, policy.allowed_countries);
    assert_eq!(config.messages.fallback_voice_language(), "en-US");
    assert!(!config.voice.fallback);
    assert_eq!(config.plivo.voice_sender, "+14155550100");
    assert_eq!(config.public_base_url, None);
    let config = config_with(&[
        ("VOICE_ALLOWED_COUNTRIES", "us"),
        ("OTP_CHANNELS", "sms"),
        ("VOICE_FALLBACK", "AUTO"),
        ("PUBLIC_BASE_URL", "https://auth.example.com/"),
    ]);
    assert_eq!(
        config.policy.voice_allowed_countries,
        ["US".to_owned()].into()
    );
    assert_eq!(config.policy.channels, [Channel::Sms].into());
    assert!(config.voice.fallback);
    assert_eq!(
        config.public_base_url.as_deref(),
        Some("https://auth.example.com")
    );
}

fn config_with(vars: &[(&str, &str)]) -> Config {
    config(vars).unwrap()
}

#[test]
fn bad_voice_settings_are_refused_with_the_variable_name() {
    for (var, value) in [
        ("OTP_CHANNELS", "sms,fax"),
        ("OTP_CHANNELS", ","),
        ("VOICE_FALLBACK", "sometimes"),
        ("VOICE_LANGUAGE", "en US"),
        ("VOICE_MESSAGE_TEMPLATE", "no code here"),
        ("VOICE_ALLOWED_COUNTRIES", "USA"),
        ("PUBLIC_BASE_URL", "auth.example.com"),
        ("PUBLIC_BASE_URL", "https://auth.example.com/?x=1"),
        ("ALLOWED_NUMBER_TYPES", "mobile,satellite"),
        ("TRUSTED_PHONE_NUMBERS", "+1415"),
    ] {
        let err = config(&[(var, value)]).unwrap_err();
        assert!(err.to_string().starts_with(var), "{var}={value}: {err}");
    }
}

#[test]
fn token_settings_read_the_algorithm_case_insensitively_and_an_optional_audience() {
    let config = config_with(&[
        ("TOKEN_ALGORITHM", "hs256"),
        ("TOKEN_AUDIENCE", "https://api.example.com"),
        ("SECRET_REFRESH_SECONDS", "60"),
    ]);
    assert_eq!(config.token.algorithm, TokenAlgorithm::Hs256);
    assert_eq!(
        config.token.audience.as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(config.secret_refresh, Duration::from_secs(60));
    let config = config_with(&[("TOKEN_ALGORITHM", "ES256")]);
    assert_eq!(config.token.algorithm, TokenAlgorithm::Es256);
}

#[test]
fn allowed_countries_are_a_case_insensitive_comma_list() {
    let config = config(&[("ALLOWED_COUNTRIES", " us, gb ,")]).unwrap();
    let expected: BTreeSet<String> = ["GB", "US"].map(String::from).into();
    assert_eq!(config.policy.allowed_countries, expected);
}
