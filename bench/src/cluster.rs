//! The failover drill's hands on the local TLS cluster that
//! `scripts/lib.sh` starts: kill a primary, see its replica promoted, start
//! the old primary again and see it rejoin as a replica.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Error, redis_stats::Redis};

pub struct Cluster {
    dir: PathBuf,
    redis: Redis,
}

/// What the drill saw, with times from the kill.
#[derive(Debug, Clone, Copy)]
pub struct Drill {
    pub killed: Instant,
    pub promoted: Instant,
    pub restarted: Instant,
    pub rejoined: Option<Instant>,
}

impl Cluster {
    pub fn new(dir: &str, redis: Redis) -> Self {
        Self {
            dir: PathBuf::from(dir),
            redis,
        }
    }

    async fn nodes(&self) -> Result<Vec<Vec<String>>, Error> {
        for port in self.ports()? {
            let Ok(mut connection) = self.redis.connect(port).await else {
                continue;
            };
            let text: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut connection)
                .await?;
            return Ok(text
                .lines()
                .map(|l| l.split_whitespace().map(str::to_owned).collect())
                .collect());
        }
        Err("no cluster node answers".into())
    }

    fn ports(&self) -> Result<Vec<u16>, Error> {
        Ok(std::fs::read_to_string(self.dir.join("ports"))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// A serving primary and its replica, as ports.
    async fn pair(&self) -> Result<(u16, u16), Error> {
        let nodes = self.nodes().await?;
        let port = |n: &Vec<String>| -> Option<u16> {
            n.get(1)?
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        };
        for primary in nodes
            .iter()
            .filter(|n| n[2].contains("master") && n.len() > 8)
        {
            if let Some(replica) = nodes.iter().find(|n| n.get(3) == Some(&primary[0])) {
                return Ok((
                    port(primary).ok_or("bad node line")?,
                    port(replica).ok_or("bad node line")?,
                ));
            }
        }
        Err("no primary with a replica".into())
    }

    async fn role(&self, port: u16) -> Option<String> {
        let mut connection = self.redis.connect(port).await.ok()?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut connection).await.ok()?;
        match role.first()? {
            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    async fn wait_for_role(&self, port: u16, role: &str, limit: Duration) -> Option<Instant> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.role(port).await.as_deref() == Some(role) {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// SIGKILLs a primary, waits for its replica to take over, keeps the
    /// old one down for `down` more, then starts it again and waits (at
    /// most 20 s) for it to rejoin as a replica.
    // The restarted node is not waited for: it outlives the run, as the
    // cluster does.
    #[allow(clippy::zombie_processes)]
    pub async fn drill(&self, down: Duration) -> Result<Drill, Error> {
        let (primary, replica) = self.pair().await?;
        let pid = std::fs::read_to_string(self.dir.join(format!("redis-{primary}.pid")))?;
        let killed = Instant::now();
        let status = Command::new("kill").args(["-9", pid.trim()]).status()?;
        if !status.success() {
            return Err(format!("kill -9 {pid} failed").into());
        }
        let promoted = self
            .wait_for_role(replica, "master", Duration::from_secs(15))
            .await
            .ok_or("the replica was not promoted within 15 s")?;
        tokio::time::sleep(down).await;
        let restarted = Instant::now();
        // lib.sh stops it on exit through its pid file.
        Command::new(self.dir.join("node.sh"))
            .arg(primary.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let rejoined = self
            .wait_for_role(primary, "slave", Duration::from_secs(20))
            .await;
        Ok(Drill {
            killed,
            promoted,
            restarted,
            rejoined,
        })
    }
}
