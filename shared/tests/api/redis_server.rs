//! A redis-server of a test's own, which the test can stop, restart,
//! freeze (SIGSTOP) and put behind a proxy that cuts connections.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A standalone redis-server of this test's own on a fixed port.
pub struct RedisServer {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub fn reserve() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(unique("otp-fault-redis"));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            port,
            dir,
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH (scripts/test.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {} did not start", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("-CONT");
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn app_on(redis: &RedisServer) -> TestApp {
    TestApp::builder()
        .env("REDIS_URL", &redis.url())
        .env("REDIS_CLUSTER", "false")
        .env("REDIS_TLS_CA_FILE", "")
        .env("REDIS_TIMEOUT_MS", "300")
        .spawn()
        .await
}

/// A byte pattern to cut after, and how many more times.
type Armed = Arc<Mutex<Option<(Vec<u8>, u32)>>>;

/// A TCP proxy in front of a Redis server that, once armed with a byte
/// pattern, forwards the next request containing it and then cuts that
/// connection: the command runs, and its reply is lost.
pub struct CuttingProxy {
    pub port: u16,
    armed: Armed,
}

impl CuttingProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed: Armed = Arc::default();
        let shared = Arc::clone(&armed);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                tokio::spawn(relay(client, server, Arc::clone(&shared)));
            }
        });
        Self { port, armed }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
    }

    /// The next `times` requests that contain `pattern` run, and their
    /// replies are lost (the client's own resends included).
    pub fn cut_after(&self, pattern: &str, times: u32) {
        *self.armed.lock().unwrap() = Some((pattern.as_bytes().to_vec(), times));
    }
}

async fn relay(client: tokio::net::TcpStream, server: tokio::net::TcpStream, armed: Armed) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cutting = std::sync::atomic::AtomicBool::new(false);
    let upstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buffer[..n];
            let cut = {
                let mut armed = armed.lock().unwrap();
                let hit = armed
                    .as_ref()
                    .is_some_and(|(p, _)| chunk.windows(p.len()).any(|w| w == p.as_slice()));
                if hit {
                    match armed.as_mut() {
                        Some((_, times)) if *times > 1 => *times -= 1,
                        _ => *armed = None,
                    }
                }
                hit
            };
            if cut {
                cutting.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
            if cut {
                // Let the command run, then drop both sides unanswered.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cutting.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = upstream => {},
        () = downstream => {},
    }
}
