//! The built `request-otp` binary with broken configuration: it stops at
//! cold start with one log line naming the variable, before touching
//! Secrets Manager, Redis or Plivo.

use std::process::Command;

fn cold_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_request-otp"));
    command
        .env_clear()
        .env("OTP_SECRET_ID", "otp/dev")
        .env("PLIVO_SENDER", "+14155550100")
        .env("REDIS_URL", "redis://127.0.0.1:1");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run the request-otp binary");
    let log = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), log)
}

#[test]
fn a_bad_otp_message_templates_stops_the_cold_start_with_the_variables_name() {
    for bad in [
        r#"{"es": "sin código"}"#,
        "not json",
        r#"{"español": "{code}"}"#,
    ] {
        let (status, log) = cold_start(&[("OTP_MESSAGE_TEMPLATES", bad)]);

        assert_eq!(status, Some(1), "{log}");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {log}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON log line");
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["message"], "cold start failed");
        let error = line["error"].as_str().unwrap();
        assert!(
            error.starts_with("configuration error: OTP_MESSAGE_TEMPLATES is invalid"),
            "{error}"
        );
    }
}
