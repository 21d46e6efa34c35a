//! The Redis store. Every decision is one Lua script run atomically on the
//! server (EVALSHA, with the script loaded on first use per node), so rules
//! hold across concurrent Lambda instances without read-then-write races.
//!
//! Keys of one phone share a hash tag, `{prefix}:{<phone tag>}:code`, where
//! the tag is a keyed hash of the number (no number is ever in Redis), so
//! each script touches a single slot and runs on Redis Cluster and
//! ElastiCache Serverless unchanged. What is not about one phone has its
//! own tags: per-IP budgets (`{prefix}:ip:{<address>}:sends`) and the
//! pumping breaker's destinations (`{prefix}:dest:{US:415555}`, a range of
//! numbers, never one number), one key per script.

use std::time::Duration;

use redis::{
    Client, FromRedisValue, RedisError, Script, ScriptInvocation,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use crate::{config::RedisConfig, domain::PhoneTag};

mod breaker;
mod callbacks;
mod codes;
pub mod deadline;
mod lines;
mod requests;

pub use breaker::{BreakerDecision, BreakerLimits, BreakerTicket};
pub use callbacks::{LiveCode, Receipt};
pub use codes::{GuessDecision, GuessLimits, SendDecision, SendFate, SendLimits};
pub use requests::{Claim, IpAction, IpDecision, RecordedResponse};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is unavailable")]
    Unavailable(#[from] RedisError),
    /// The script reached Redis after the caller's timeout and did nothing.
    #[error("redis ran the script too late and it changed nothing")]
    Late,
    /// The invocation's deadline came before Redis answered.
    #[error("redis did not answer before the invocation's deadline")]
    Deadline,
    #[error("redis script gave an unexpected reply: {0}")]
    UnexpectedReply(String),
    #[error("cannot read REDIS_TLS_CA_FILE {path}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

enum Connection {
    /// Reconnects by itself after Redis comes back, without a cold start.
    Single(ConnectionManager),
    /// Connected on first use, so a cluster that is down at cold start does
    /// not fail the init; a failed connect is retried by the next call.
    Cluster(Box<LazyCluster>),
}

struct LazyCluster {
    client: redis::cluster::ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

pub struct Store {
    connection: Connection,
    prefix: String,
    timeout: Duration,
    request: Script,
    verify: Script,
    release: Script,
    ip: Script,
    claim: Script,
    settle: Script,
    receipt: Script,
    breaker: Script,
}

impl Store {
    /// Builds the client without touching the network: see `warm_up`.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        let certificates = match &config.tls_ca_file {
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(public_roots_and(path)?),
            }),
            None => None,
        };
        let connection = if config.cluster {
            let mut builder = ClusterClientBuilder::new(vec![config.url.as_str()])
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                // The whole call, retries included, ends when the scripts'
                // not-after passes: a script is never sent again once we
                // stopped waiting for it (it could only answer `expired`).
                .overall_response_timeout(Some(config.timeout))
                // The crate's defaults retry for minutes; a Lambda answers in
                // seconds. One quick retry is what a failover needs: the
                // first try meets the dead primary's closed connection or a
                // MOVED, the retry reaches the promoted replica (the test
                // `failover.rs` measures the recovery).
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100);
            if let Some(certs) = certificates {
                builder = builder.certs(certs);
            }
            Connection::Cluster(Box::new(LazyCluster {
                client: builder.build()?,
                connection: OnceCell::new(),
            }))
        } else {
            let client = match certificates {
                Some(certs) => Client::build_with_tls(config.url.as_str(), certs)?,
                None => Client::open(config.url.as_str())?,
            };
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(100));
            Connection::Single(ConnectionManager::new_lazy_with_config(
                client,
                manager_config,
            )?)
        };
        Ok(Self {
            connection,
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            request: Script::new(concat!(
                include_str!("prelude.lua"),
                include_str!("request.lua")
            )),
            verify: Script::new(concat!(
                include_str!("prelude.lua"),
                include_str!("verify.lua")
            )),
            release: Script::new(include_str!("release.lua")),
            ip: Script::new(concat!(include_str!("prelude.lua"), include_str!("ip.lua"))),
            claim: Script::new(concat!(
                include_str!("prelude.lua"),
                include_str!("claim.lua")
            )),
            settle: Script::new(include_str!("settle.lua")),
            receipt: Script::new(concat!(
                include_str!("prelude.lua"),
                include_str!("receipt.lua")
            )),
            breaker: Script::new(concat!(
                include_str!("prelude.lua"),
                include_str!("breaker.lua")
            )),
        })
    }

    /// Connects and loads the scripts ahead of the first request. A failure
    /// is only reported: requests will answer 503 until Redis is back.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        let scripts = [
            &self.request,
            &self.verify,
            &self.release,
            &self.ip,
            &self.claim,
            &self.settle,
            &self.receipt,
            &self.breaker,
        ];
        for script in scripts {
            match &self.connection {
                Connection::Single(manager) => script.load_async(&mut manager.clone()).await?,
                Connection::Cluster(_) => script.load_async(&mut self.cluster().await?).await?,
            };
        }
        Ok(())
    }

    async fn cluster(&self) -> Result<ClusterConnection, StoreError> {
        match &self.connection {
            Connection::Cluster(lazy) => Ok(lazy
                .connection
                .get_or_try_init(|| lazy.client.get_async_connection())
                .await?
                .clone()),
            Connection::Single(_) => unreachable!("only called in cluster mode"),
        }
    }

    async fn run<T: FromRedisValue>(
        &self,
        invocation: ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        deadline::bounded(async {
            let reply = match &self.connection {
                Connection::Single(manager) => {
                    invocation.invoke_async(&mut manager.clone()).await?
                }
                Connection::Cluster(_) => {
                    invocation.invoke_async(&mut self.cluster().await?).await?
                }
            };
            Ok(reply)
        })
        .await
    }

    /// The epoch millisecond after which a decision script must not act:
    /// when we stop waiting for its reply, at the Redis timeout or the
    /// invocation's deadline, whichever is first. (Lambda's and Redis's
    /// clocks are both NTP-synchronised; a few milliseconds of skew only
    /// moves the edge.)
    fn not_after(&self) -> u64 {
        let by_timeout = deadline::epoch_ms_of(tokio::time::Instant::now() + self.timeout);
        match deadline::current() {
            Some(end) => by_timeout.min(deadline::epoch_ms_of(end)),
            None => by_timeout,
        }
    }

    fn key(&self, phone: &PhoneTag, name: &str) -> String {
        format!("{}:{{{}}}:{}", self.prefix, phone.as_str(), name)
    }

    /// One plain command, for reads and single-key writes that need no script.
    async fn command<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        deadline::bounded(async {
            let reply = match &self.connection {
                Connection::Single(manager) => cmd.query_async(&mut manager.clone()).await?,
                Connection::Cluster(_) => cmd.query_async(&mut self.cluster().await?).await?,
            };
            Ok(reply)
        })
        .await
    }
}

/// The redis crate trusts either the system roots or the PEM it is given,
/// not both; a private CA must not cost the public ones (ElastiCache's
/// certificates chain to Amazon's public roots), so they are given together.
fn public_roots_and(ca_file: &str) -> Result<Vec<u8>, StoreError> {
    let mut bundle = std::fs::read(ca_file).map_err(|source| StoreError::CaFile {
        path: ca_file.to_owned(),
        source,
    })?;
    for root in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        bundle.push(b'\n');
        bundle.extend(pem::encode(&pem::Pem::new("CERTIFICATE", root.as_ref())).into_bytes());
    }
    Ok(bundle)
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}
