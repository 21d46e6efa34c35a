//! Logging set up for CloudWatch: one JSON object per line with a `level`
//! field and, inside an invocation, the Lambda request id (the runtime's
//! span carries it). `AWS_LAMBDA_LOG_FORMAT=Text` gives plain lines;
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, choose what is shown.

use tracing_subscriber::{EnvFilter, fmt, fmt::MakeWriter};

pub fn init() {
    init_with_writer(std::io::stdout);
}

/// As `init`, writing somewhere else (tests capture the lines to audit them).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_ascii_lowercase();
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer);
    // A second init (tests) keeps the first subscriber.
    let _ = if text {
        builder.without_time().try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}
