//! What Redis itself says about a run: commands, CPU and bytes from `INFO`
//! (summed over the primaries of a cluster), the CPU of one simple command
//! for comparison, and `MEMORY USAGE` of the keys under a prefix.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Error;

/// A Redis server or cluster, reached node by node.
#[derive(Clone)]
pub struct Redis {
    tls: bool,
    seed_port: u16,
    ca: Option<Vec<u8>>,
}

/// Counters of one moment, summed over the primaries.
#[derive(Debug, Default, Clone, Copy)]
pub struct Snapshot {
    pub script_calls: u64,
    /// `INFO commandstats` usec of EVALSHA/EVAL: the scripts' execution.
    pub script_usec: u64,
    pub simple_calls: u64,
    pub simple_usec: u64,
    /// Main-thread CPU (user + system): execution, parsing and I/O.
    pub cpu_usec: u64,
    /// Bytes from and to clients (replication excluded).
    pub net_in: u64,
    pub net_out: u64,
}

impl Snapshot {
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        Snapshot {
            script_calls: self.script_calls - before.script_calls,
            script_usec: self.script_usec - before.script_usec,
            simple_calls: self.simple_calls - before.simple_calls,
            simple_usec: self.simple_usec - before.simple_usec,
            cpu_usec: self.cpu_usec - before.cpu_usec,
            net_in: self.net_in - before.net_in,
            net_out: self.net_out - before.net_out,
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "script_calls": self.script_calls, "script_usec": self.script_usec,
            "simple_calls": self.simple_calls, "simple_usec": self.simple_usec,
            "cpu_usec": self.cpu_usec, "net_in": self.net_in, "net_out": self.net_out,
        })
    }
}

/// `name:value` from an INFO section.
fn field(info: &str, name: &str) -> Option<f64> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// (calls, usec) of one `cmdstat_<name>` line.
fn cmdstat(info: &str, name: &str) -> (u64, u64) {
    let Some(line) = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
    else {
        return (0, 0);
    };
    let get = |key: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("calls"), get("usec"))
}

impl Redis {
    /// `url` is `redis://host:port` or `rediss://host:port`; `ca` the PEM
    /// of a private CA for TLS.
    pub fn new(url: &str, ca: Option<&str>) -> Result<Self, Error> {
        let tls = url.starts_with("rediss://");
        let seed_port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or("the Redis URL needs a port")?;
        let ca = ca.map(std::fs::read).transpose()?;
        Ok(Self { tls, seed_port, ca })
    }

    pub async fn connect(&self, port: u16) -> Result<MultiplexedConnection, Error> {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let url = format!("{scheme}://127.0.0.1:{port}");
        let client = match &self.ca {
            Some(ca) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        let connection = tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| format!("no connection to Redis on {port}"))??;
        Ok(connection)
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        port: u16,
        cmd: &redis::Cmd,
    ) -> Result<T, Error> {
        Ok(cmd.query_async(&mut self.connect(port).await?).await?)
    }

    /// The ports of the primaries: the server itself when it is no cluster.
    pub async fn primaries(&self) -> Result<Vec<u16>, Error> {
        let info: String = self
            .query(self.seed_port, redis::cmd("INFO").arg("cluster"))
            .await?;
        if field(&info, "cluster_enabled") != Some(1.0) {
            return Ok(vec![self.seed_port]);
        }
        let nodes: String = self
            .query(self.seed_port, redis::cmd("CLUSTER").arg("NODES"))
            .await?;
        Ok(nodes
            .lines()
            .filter(|l| {
                let flags = l.split_whitespace().nth(2).unwrap_or("");
                flags.contains("master") && !flags.contains("fail")
            })
            .filter_map(|l| {
                let address = l.split_whitespace().nth(1)?;
                address.split('@').next()?.rsplit(':').next()?.parse().ok()
            })
            .collect())
    }

    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        let mut total = Snapshot::default();
        for port in self.primaries().await? {
            let info: String = self
                .query(
                    port,
                    redis::cmd("INFO")
                        .arg("commandstats")
                        .arg("stats")
                        .arg("cpu"),
                )
                .await?;
            for script in ["evalsha", "eval", "evalsha_ro", "eval_ro"] {
                let (calls, usec) = cmdstat(&info, script);
                total.script_calls += calls;
                total.script_usec += usec;
            }
            for simple in ["get", "set"] {
                let (calls, usec) = cmdstat(&info, simple);
                total.simple_calls += calls;
                total.simple_usec += usec;
            }
            let cpu = field(&info, "used_cpu_user_main_thread").unwrap_or(0.0)
                + field(&info, "used_cpu_sys_main_thread").unwrap_or(0.0);
            total.cpu_usec += (cpu * 1e6) as u64;
            let bytes = |name: &str| field(&info, name).unwrap_or(0.0) as u64;
            total.net_in += bytes("total_net_input_bytes") - bytes("total_net_repl_input_bytes");
            total.net_out += bytes("total_net_output_bytes") - bytes("total_net_repl_output_bytes");
        }
        Ok(total)
    }

    /// What a simple command costs this server, the unit ElastiCache bills
    /// at 1 ECPU: `clients` connections each doing SET then GET of a 16-byte
    /// value, one at a time, for `duration`. Keys live under `prefix` and
    /// are deleted afterwards. The counters it moved are returned.
    pub async fn simple_commands(
        &self,
        prefix: &str,
        clients: usize,
        duration: Duration,
    ) -> Result<(Snapshot, u64), Error> {
        let primaries = self.primaries().await?;
        let before = self.snapshot().await?;
        let mut tasks = JoinSet::new();
        for client in 0..clients {
            let port = primaries[client % primaries.len()];
            let redis = self.clone();
            let prefix = prefix.to_owned();
            tasks.spawn(async move {
                let mut connection = redis.connect(port).await?;
                // A key this primary serves: try names until one is not MOVED.
                let mut key = String::new();
                for attempt in 0..10_000 {
                    key = format!("{prefix}:simple:{client}:{attempt}");
                    let set: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(&key)
                        .arg("0123456789abcdef")
                        .query_async(&mut connection)
                        .await;
                    if set.is_ok() {
                        break;
                    }
                }
                let end = Instant::now() + duration;
                let mut pairs = 0u64;
                while Instant::now() < end {
                    let () = redis::cmd("SET")
                        .arg(&key)
                        .arg("0123456789abcdef")
                        .query_async(&mut connection)
                        .await?;
                    let _: String = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut connection)
                        .await?;
                    pairs += 1;
                }
                let _: i64 = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await?;
                Ok::<_, Error>(pairs)
            });
        }
        let mut commands = 0;
        while let Some(done) = tasks.join_next().await {
            commands += 2 * done??;
        }
        Ok((self.snapshot().await?.since(&before), commands))
    }

    /// The keys matching `pattern` on each primary (SCAN: no blocking KEYS).
    async fn scan(&self, pattern: &str) -> Result<Vec<(u16, String)>, Error> {
        let mut out = Vec::new();
        for port in self.primaries().await? {
            let mut connection = self.connect(port).await?;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await?;
                out.extend(keys.into_iter().map(|k| (port, k)));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }

    /// `MEMORY USAGE` of every key matching `pattern`, over the primaries.
    pub async fn memory(&self, pattern: &str) -> Result<Vec<(String, u64)>, Error> {
        let mut out = Vec::new();
        for (port, key) in self.scan(pattern).await? {
            let bytes: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut self.connect(port).await?)
                .await?;
            out.push((key, bytes.unwrap_or(0)));
        }
        out.sort();
        Ok(out)
    }

    /// Deletes every key matching `pattern`.
    pub async fn delete(&self, pattern: &str) -> Result<(), Error> {
        for (port, key) in self.scan(pattern).await? {
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut self.connect(port).await?)
                .await?;
        }
        Ok(())
    }
}
