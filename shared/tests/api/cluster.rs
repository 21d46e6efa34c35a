//! The nodes of the TLS cluster that `scripts/lib.sh` starts with replicas
//! (`start_redis_cluster_tls`): who is primary for what, and the means to
//! kill a node and start it again. Found through `TEST_REDIS_CLUSTER_DIR`.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use tokio::time::Instant;

/// One node, as `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// The primary this node replicates, for a replica.
    pub replica_of: Option<String>,
    /// Slot ranges served, for a primary.
    pub slots: Vec<(u16, u16)>,
}

pub struct Cluster {
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Cluster {
    /// The cluster with replicas, when the environment names one; a name
    /// that leads to no such cluster is a broken setup, not a skip.
    pub fn from_env() -> Option<Self> {
        let dir = PathBuf::from(std::env::var_os("TEST_REDIS_CLUSTER_DIR")?);
        let ports = std::fs::read_to_string(dir.join("ports"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect::<Vec<u16>>();
        assert!(
            dir.join("node.sh").exists() && ports.len() >= 6,
            "TEST_REDIS_CLUSTER_DIR={} holds no cluster with replicas (node.sh, ports)",
            dir.display()
        );
        Some(Self { dir, ports })
    }

    async fn connect(&self, port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(self.dir.join("ca.crt"))?),
        };
        let client = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}"), certs)?;
        tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))?
    }

    /// Runs `cmd` on the node at `port` alone (no redirection).
    pub async fn on<T: redis::FromRedisValue>(
        &self,
        port: u16,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        let mut connection = self.connect(port).await?;
        tokio::time::timeout(Duration::from_secs(2), cmd.query_async(&mut connection))
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "query timed out")))?
    }

    /// The topology as the first node that answers sees it.
    pub async fn nodes(&self) -> Vec<Node> {
        for &port in &self.ports {
            if let Ok(text) = self
                .on::<String>(port, redis::cmd("CLUSTER").arg("NODES"))
                .await
            {
                return text.lines().filter_map(parse_node).collect();
            }
        }
        panic!("no cluster node answers CLUSTER NODES");
    }

    /// The primary serving `key` now, and its replica.
    pub async fn primary_and_replica_of(&self, key: &str) -> (Node, Node) {
        let slot: u16 = self
            .on(self.ports[0], redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .expect("CLUSTER KEYSLOT");
        let nodes = self.nodes().await;
        let primary = nodes
            .iter()
            .find(|n| n.primary && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .expect("a primary serves every slot")
            .clone();
        let replica = nodes
            .iter()
            .find(|n| n.replica_of.as_deref() == Some(primary.id.as_str()))
            .expect("every primary has a replica")
            .clone();
        (primary, replica)
    }

    /// SIGKILL: the node dies with whatever it had not yet replicated.
    pub fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(format!("redis-{port}.pid")))
            .expect("the node's pid file");
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -9 {pid}");
    }

    /// Starts the node again with its own configuration; `scripts/lib.sh`
    /// stops it on exit through its pid file.
    // Not waited for: the node outlives the test, as the cluster does.
    #[allow(clippy::zombie_processes)]
    pub fn restart(&self, port: u16) {
        Command::new(self.dir.join("node.sh"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node.sh");
    }

    /// `master` or `slave`, or `None` while the node does not answer.
    pub async fn role(&self, port: u16) -> Option<String> {
        let role: Vec<redis::Value> = self.on(port, &redis::cmd("ROLE")).await.ok()?;
        match role.first()? {
            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            redis::Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Polls `port` every 20 ms until it reports `role` (and, for a
    /// replica, a live link to its primary); `None` after `limit`.
    pub async fn wait_for_role(&self, port: u16, role: &str, limit: Duration) -> Option<Instant> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.role(port).await.as_deref() == Some(role)
                && (role == "master" || self.replica_link_up(port).await)
            {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    async fn replica_link_up(&self, port: u16) -> bool {
        self.on::<String>(port, redis::cmd("INFO").arg("replication"))
            .await
            .is_ok_and(|info| info.contains("master_link_status:up"))
    }
}

/// `<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slots>...`
fn parse_node(line: &str) -> Option<Node> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = fields
        .get(1)?
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = fields.get(2)?;
    let primary = flags.contains("master") && !flags.contains("fail");
    let slots = fields
        .iter()
        .skip(8)
        .filter_map(|range| {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    Some(Node {
        id: fields[0].to_owned(),
        port,
        primary,
        replica_of: (fields.get(3)? != &"-").then(|| fields[3].to_owned()),
        slots,
    })
}
