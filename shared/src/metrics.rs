//! Business metrics as CloudWatch Embedded Metric Format: one JSON line on
//! stdout per invocation, which CloudWatch turns into metrics with no API
//! call and no added latency. Each metric is published per `Country` and
//! in aggregate, so alarms can watch the total and dashboards the split.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "OtpService";

/// What happened during one invocation, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A valid request-otp call reached the rules.
    OtpRequested,
    /// Plivo accepted the SMS.
    OtpSent,
    /// Plivo refused the SMS or kept failing.
    SmsFailed,
    /// A code was verified.
    OtpVerified,
    /// A wrong, expired or unknown code was submitted.
    OtpRejected,
    /// A cooldown, quota or lockout refused the call.
    RateLimited,
    /// Plivo accepted a call that will speak a code.
    VoiceCallPlaced,
    /// Plivo refused the call or kept failing.
    VoiceCallFailed,
    /// A call ended after being answered.
    VoiceCallCompleted,
    /// A call ended unanswered (busy, no answer, failed, rejected).
    VoiceCallNotAnswered,
    /// Plivo reported an SMS delivered to the handset.
    SmsDelivered,
    /// Plivo reported an SMS undelivered, failed or rejected.
    SmsUndelivered,
    /// An undelivered SMS was followed by a call (`VOICE_FALLBACK=auto`).
    VoiceFallbackPlaced,
    /// A callback without a valid Plivo signature was refused.
    WebhookSignatureRejected,
    /// A destination's sends stopped converting: its breaker opened.
    PumpingBreakerTripped,
    /// Plivo's Lookup did not answer (timeout, 5xx): the send went ahead.
    LookupFailed,
    /// A call needed a CAPTCHA and carried none.
    CaptchaRequired,
    /// The CAPTCHA provider rejected the token a call carried.
    CaptchaRejected,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Self::OtpRequested => "OtpRequested",
            Self::OtpSent => "OtpSent",
            Self::SmsFailed => "SmsFailed",
            Self::OtpVerified => "OtpVerified",
            Self::OtpRejected => "OtpRejected",
            Self::RateLimited => "RateLimited",
            Self::VoiceCallPlaced => "VoiceCallPlaced",
            Self::VoiceCallFailed => "VoiceCallFailed",
            Self::VoiceCallCompleted => "VoiceCallCompleted",
            Self::VoiceCallNotAnswered => "VoiceCallNotAnswered",
            Self::SmsDelivered => "SmsDelivered",
            Self::SmsUndelivered => "SmsUndelivered",
            Self::VoiceFallbackPlaced => "VoiceFallbackPlaced",
            Self::WebhookSignatureRejected => "WebhookSignatureRejected",
            Self::PumpingBreakerTripped => "PumpingBreakerTripped",
            Self::LookupFailed => "LookupFailed",
            Self::CaptchaRequired => "CaptchaRequired",
            Self::CaptchaRejected => "CaptchaRejected",
        }
    }
}

/// Renders one EMF document counting each of `metrics` once.
pub fn document(country: Option<&str>, metrics: &[Metric], timestamp_ms: u64) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name(), "Unit": "Count"}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Country"], []],
                "Metrics": definitions,
            }],
        }),
    );
    root.insert("Country".into(), json!(country.unwrap_or("unknown")));
    for metric in metrics {
        root.insert(metric.name().into(), json!(1));
    }
    Value::Object(root)
}

/// Writes the invocation's metrics to stdout, where Lambda's log capture
/// picks them up. Nothing is written when there is nothing to count.
pub fn emit(country: Option<&str>, metrics: &[Metric]) {
    if metrics.is_empty() {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    crate::telemetry::write_line(format!("{}\n", document(country, metrics, now)).as_bytes());
}

/// A dependency whose failure is counted, so that an outage answered with
/// 503s (the functions themselves never error) still pages someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Redis,
    Plivo,
    Secrets,
}

impl Dependency {
    fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Plivo => "plivo",
            Self::Secrets => "secrets",
        }
    }
}

/// Renders one EMF document counting a `DependencyFailed` for `dependency`,
/// per dependency and in total.
pub fn dependency_document(dependency: Dependency, timestamp_ms: u64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Dependency"], []],
                "Metrics": [{"Name": "DependencyFailed", "Unit": "Count"}],
            }],
        },
        "Dependency": dependency.name(),
        "DependencyFailed": 1,
    })
}

pub fn dependency_failed(dependency: Dependency) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    crate::telemetry::write_line(format!("{}\n", dependency_document(dependency, now)).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_failure_is_counted_per_dependency_and_in_total() {
        let doc = dependency_document(Dependency::Redis, 1);
        assert_eq!(doc["Dependency"], "redis");
        assert_eq!(doc["DependencyFailed"], 1);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Dependency"], []])
        );
    }

    #[test]
    fn a_document_declares_each_metric_by_country_and_in_total() {
        let doc = document(
            Some("US"),
            &[Metric::OtpRequested, Metric::OtpSent],
            1_795_539_243_000,
        );
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_795_539_243_000u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "OtpService",
                        "Dimensions": [["Country"], []],
                        "Metrics": [
                            {"Name": "OtpRequested", "Unit": "Count"},
                            {"Name": "OtpSent", "Unit": "Count"},
                        ],
                    }],
                },
                "Country": "US",
                "OtpRequested": 1,
                "OtpSent": 1,
            })
        );
    }

    #[test]
    fn a_breaker_trip_is_published_per_country_and_in_total() {
        let doc = document(Some("GB"), &[Metric::PumpingBreakerTripped], 0);
        assert_eq!(doc["Country"], "GB");
        assert_eq!(doc["PumpingBreakerTripped"], 1);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Country"], []])
        );
    }

    #[test]
    fn a_number_without_a_single_region_counts_as_unknown() {
        let doc = document(None, &[Metric::OtpRejected], 0);
        assert_eq!(doc["Country"], "unknown");
    }
}
