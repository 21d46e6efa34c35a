//! Sequential Redis round trips, counted on the wire. MONITOR counts
//! commands, but commands sent side by side (`tokio::try_join!` on one
//! multiplexed connection) cost one wait, not two. This TCP proxy sits
//! between a function and Redis and reads RESP both ways: a command sent
//! while none of its connection's earlier commands awaits a reply starts a
//! new round trip; one sent while another is outstanding rides along. A
//! round trip that starts after the function posted its response (deferred
//! work, which the caller does not wait for) is counted apart.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Instant,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    Error, expect_status,
    latency::{ROUND_TRIP_WINDOW, WARM_UP},
    runtime::Instance,
};

/// What the proxy has seen, over every connection.
#[derive(Default)]
pub struct Rounds {
    /// When each command, and each round trip, started.
    commands: Mutex<Vec<Instant>>,
    starts: Mutex<Vec<Instant>>,
}

/// Per call, for `bin` connected to Redis through the counting proxy (a
/// process of its own, so the timed runs never pay for the extra hop).
pub struct Wire {
    pub commands: f64,
    /// Sequential round trips between the event and the response.
    pub rounds: f64,
    /// Round trips started after the response was posted.
    pub after_response: f64,
}

pub async fn wire_run(
    bin: &str,
    name: &str,
    env: &[(String, String)],
    proxy: (&Rounds, SocketAddr),
    events: impl Fn(usize) -> Result<String, Error>,
    expect: u64,
) -> Result<Wire, Error> {
    let mut env = env.to_vec();
    // The later value of a variable wins.
    env.push(("REDIS_URL".into(), format!("redis://{}", proxy.1)));
    let mut instance = Instance::spawn(bin, name, &env).await?;
    for n in 0..WARM_UP {
        expect_status(&instance.invoke(events(n)?).await?, expect, "wire warm-up")?;
    }
    // Each call's share runs from its event to the next call's event: one
    // call more marks the end of the last one's.
    let mut calls = Vec::new();
    for n in WARM_UP..=WARM_UP + ROUND_TRIP_WINDOW {
        let outcome = instance.invoke(events(n)?).await?;
        expect_status(&outcome, expect, "wire window")?;
        calls.push((outcome.handed, outcome.finished));
    }
    instance.child.kill().await?;
    let (first, end) = (calls[0].0, calls[ROUND_TRIP_WINDOW].0);
    let in_calls = |at: &Instant| (first..end).contains(at);
    let commands = proxy
        .0
        .commands
        .lock()
        .unwrap()
        .iter()
        .filter(|c| in_calls(c))
        .count();
    let starts: Vec<Instant> = proxy
        .0
        .starts
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(in_calls)
        .collect();
    let before = starts
        .iter()
        .filter(|s| {
            calls
                .iter()
                .any(|(handed, finished)| (handed..=finished).contains(s))
        })
        .count();
    let per_call = |n: usize| n as f64 / ROUND_TRIP_WINDOW as f64;
    Ok(Wire {
        commands: per_call(commands),
        rounds: per_call(before),
        after_response: per_call(starts.len() - before),
    })
}

/// Starts the proxy in front of Redis on `redis_port`.
pub async fn start(redis_port: u16) -> Result<(Arc<Rounds>, SocketAddr), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let rounds = Arc::new(Rounds::default());
    let counted = Arc::clone(&rounds);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", redis_port)).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let rounds = Arc::clone(&counted);
            tokio::spawn(relay(client, server, rounds));
        }
    });
    Ok((rounds, addr))
}

async fn relay(client: TcpStream, server: TcpStream, rounds: Arc<Rounds>) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let outstanding = Arc::new(AtomicI64::new(0));
    let waiting = Arc::clone(&outstanding);
    let requests = async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while let Ok(n) = from_client.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            // Counted before they are passed on, so no reply can come first.
            while let Some(len) = value_len(&buf) {
                buf.drain(..len);
                let now = Instant::now();
                rounds.commands.lock().unwrap().push(now);
                if waiting.fetch_add(1, Ordering::SeqCst) == 0 {
                    rounds.starts.lock().unwrap().push(now);
                }
            }
            if to_server.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
    };
    let replies = async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while let Ok(n) = from_server.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(len) = value_len(&buf) {
                // RESP3 pushes are not replies to a command.
                if buf[0] != b'>' {
                    outstanding.fetch_sub(1, Ordering::SeqCst);
                }
                buf.drain(..len);
            }
            if to_client.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(requests, replies);
}

/// The length of the first complete RESP2/RESP3 value in `buf`, if it is
/// all there.
fn value_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after_header = line_end + 2;
    match *buf.first()? {
        // Simple strings, errors, integers, null, doubles, booleans, big numbers.
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after_header),
        // Bulk strings, bulk errors, verbatim strings: length, data, CRLF.
        b'$' | b'!' | b'=' => {
            let len: i64 = header.parse().ok()?;
            if len < 0 {
                return Some(after_header);
            }
            let end = after_header + len as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        // Aggregates: arrays, sets, pushes; maps and attributes hold pairs.
        kind @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let count: i64 = header.parse().ok()?;
            let items = if matches!(kind, b'%' | b'|') {
                count * 2
            } else {
                count
            };
            let mut at = after_header;
            for _ in 0..items.max(0) {
                at += value_len(&buf[at..])?;
            }
            Some(at)
        }
        // An inline command (`PING\r\n`), as redis-cli may send.
        _ => Some(after_header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_measured_only_when_complete() {
        let command = b"*2\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n";
        assert_eq!(value_len(command), Some(command.len()));
        assert_eq!(value_len(&command[..command.len() - 1]), None);
        let reply = b"*3\r\n$7\r\nallowed\r\n:0\r\n:1\r\n+OK\r\n";
        assert_eq!(value_len(reply), Some(reply.len() - 5));
        assert_eq!(value_len(b"$-1\r\n"), Some(5));
        assert_eq!(value_len(b"%1\r\n+a\r\n:1\r\n"), Some(12));
    }
}
