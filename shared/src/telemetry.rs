//! Logging set up for CloudWatch: one JSON object per line with a `level`
//! field and, inside an invocation, the Lambda request id (the runtime's
//! span carries it). `AWS_LAMBDA_LOG_FORMAT=Text` gives plain lines;
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, choose what is shown.
//!
//! While an invocation runs its lines (logs and EMF metrics alike) are held
//! and written together once its response is posted: each line written on
//! the way was a syscall and a wake-up of Lambda's log reader before the
//! caller had its answer, about 25 µs of a 0.6 ms warm request. A panic
//! writes what is held before its own message.

use std::{
    io::{self, Write},
    sync::{Mutex, MutexGuard, PoisonError},
};

use tracing_subscriber::{EnvFilter, fmt, fmt::MakeWriter};

pub fn init() {
    init_with_writer(|| Lines);
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // `try_lock`: the panic may have struck while the lines were locked.
        if let Ok(mut held) = HELD.try_lock() {
            held.release_all(&mut io::stdout().lock());
        }
        report(info);
    }));
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

/// Writes `line` (ending in a newline) to standard output, or holds it
/// while an invocation runs.
pub fn write_line(line: &[u8]) {
    held().write(line, &mut io::stdout().lock());
}

/// Holds the lines written until the guard is dropped (an invocation's
/// response is posted), then writes what is held in one go. With several
/// invocations at once, the lines go out as each ends.
pub fn hold_lines() -> HeldLines {
    held().depth += 1;
    HeldLines(())
}

#[must_use = "the lines are held only while the guard lives"]
pub struct HeldLines(());

impl Drop for HeldLines {
    fn drop(&mut self) {
        let mut held = held();
        held.depth = held.depth.saturating_sub(1);
        held.release_all(&mut io::stdout().lock());
    }
}

/// Above this much held, lines go out at once: a chatty invocation never
/// grows the buffer without bound.
const HOLD_LIMIT: usize = 64 * 1024;

static HELD: Mutex<Held> = Mutex::new(Held::new());

fn held() -> MutexGuard<'static, Held> {
    // A line is still worth writing after another thread panicked.
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Held {
    depth: usize,
    lines: Vec<u8>,
}

impl Held {
    const fn new() -> Self {
        Self {
            depth: 0,
            lines: Vec::new(),
        }
    }

    fn write(&mut self, line: &[u8], out: &mut impl Write) {
        if self.depth == 0 {
            // Nothing to do if standard output is gone.
            let _ = out.write_all(line);
            return;
        }
        self.lines.extend_from_slice(line);
        if self.lines.len() >= HOLD_LIMIT {
            self.release_all(out);
        }
    }

    fn release_all(&mut self, out: &mut impl Write) {
        if !self.lines.is_empty() {
            let _ = out.write_all(&self.lines);
            let _ = out.flush();
            self.lines.clear();
        }
    }
}

/// The writer the subscriber formats each event into: the fmt layer hands
/// it one whole line per event.
struct Lines;

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_outside_an_invocation_are_written_at_once() {
        let (mut held, mut out) = (Held::new(), Vec::new());
        held.write(b"cold start\n", &mut out);
        assert_eq!(out, b"cold start\n");
    }

    #[test]
    fn an_invocations_lines_are_held_until_it_ends_then_written_in_order() {
        let (mut held, mut out) = (Held::new(), Vec::new());
        held.depth = 1;
        held.write(b"accepted by plivo\n", &mut out);
        held.write(b"{\"OtpRequested\":1}\n", &mut out);
        assert!(out.is_empty(), "nothing before the response is posted");

        held.depth = 0;
        held.release_all(&mut out);

        assert_eq!(out, b"accepted by plivo\n{\"OtpRequested\":1}\n");
        assert!(held.lines.is_empty());
    }

    #[test]
    fn held_lines_go_out_once_they_reach_the_limit() {
        let (mut held, mut out) = (Held::new(), Vec::new());
        held.depth = 1;
        let line = vec![b'x'; HOLD_LIMIT / 2];
        held.write(&line, &mut out);
        assert!(out.is_empty());
        held.write(&line, &mut out);
        assert_eq!(out.len(), HOLD_LIMIT);
    }
}
