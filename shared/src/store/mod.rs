//! The Redis store. Every decision is one Lua script run atomically on the
//! server (EVALSHA, with the script loaded on first use per node), so rules
//! hold across concurrent Lambda instances without read-then-write races.
//!
//! Keys of one phone share a hash tag, `{prefix}:{+14155552671}:code`, so
//! each script touches a single slot and runs on Redis Cluster and
//! ElastiCache Serverless unchanged.

use std::time::Duration;

use redis::{
    Client, FromRedisValue, RedisError, Script, ScriptInvocation,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use sha2::Digest;

use crate::{
    config::RedisConfig,
    domain::{ClientIp, CodeDigest, IdempotencyKey, PhoneNumber},
};

/// Identifies one send, so a failed send undoes only itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendId(String);

impl SendId {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// What became of a send that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFate {
    /// Refused or never connected: no SMS went out.
    NotSent,
    /// Ended unclearly (timeout, 5xx): an SMS may have gone out.
    MaybeSent,
}

/// The limits a send is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub code_ttl: Duration,
    pub cooldown: Duration,
    pub max_sends: u32,
    pub window: Duration,
}

/// The limits a guess is checked against.
#[derive(Debug, Clone, Copy)]
pub struct GuessLimits {
    pub max_attempts: u32,
    pub lockout: Duration,
    pub failure_window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// The code is stored; the SMS may go out.
    Stored(SendId),
    Locked {
        retry_after: Duration,
    },
    TooSoon {
        retry_after: Duration,
    },
    QuotaExhausted {
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuessDecision {
    Approved,
    Rejected {
        attempts_left: u32,
    },
    /// Locked before this guess, or by it.
    Locked {
        retry_after: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis is unavailable")]
    Unavailable(#[from] RedisError),
    /// The script reached Redis after the caller's timeout and did nothing.
    #[error("redis ran the script too late and it changed nothing")]
    Late,
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
}

/// Which per-IP budget a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpAction {
    Send,
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpDecision {
    Allowed,
    Limited { retry_after: Duration },
}

/// What an Idempotency-Key already stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: go ahead, then settle it.
    Fresh,
    /// Used with another request body.
    Conflict,
    /// The first request with this key is still running.
    Pending,
    /// The first request finished: answer what it answered.
    Replay(RecordedResponse),
}

/// A response kept for replay under an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
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
                // The crate's defaults retry for minutes; a Lambda answers in seconds.
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
        let reply = match &self.connection {
            Connection::Single(manager) => invocation.invoke_async(&mut manager.clone()).await?,
            Connection::Cluster(_) => invocation.invoke_async(&mut self.cluster().await?).await?,
        };
        Ok(reply)
    }

    /// The epoch millisecond after which a decision script must not act:
    /// when we stop waiting for its reply. (Lambda's and Redis's clocks are
    /// both NTP-synchronised; a few milliseconds of skew only moves the edge.)
    fn not_after(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        millis(now + self.timeout)
    }

    fn key(&self, phone: &PhoneNumber, name: &str) -> String {
        format!("{}:{{{}}}:{}", self.prefix, phone.as_e164(), name)
    }

    /// Checks lock, cooldown and quota, then records the send and stores the
    /// code's digest, replacing any earlier code.
    pub async fn begin_send(
        &self,
        phone: &PhoneNumber,
        digest: &CodeDigest,
        limits: SendLimits,
    ) -> Result<SendDecision, StoreError> {
        let id = SendId::new();
        let mut invocation = self.request.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .key(self.key(phone, "lock"))
            .key(self.key(phone, "sends"))
            .arg(digest.as_str())
            .arg(&id.0)
            .arg(millis(limits.code_ttl))
            .arg(millis(limits.cooldown))
            .arg(limits.max_sends)
            .arg(millis(limits.window))
            .arg(self.not_after());
        let (outcome, wait_ms): (String, i64) = self.run(invocation).await?;
        let retry_after = Duration::from_millis(wait_ms.max(0) as u64);
        match outcome.as_str() {
            "stored" => Ok(SendDecision::Stored(id)),
            "locked" => Ok(SendDecision::Locked { retry_after }),
            "cooldown" => Ok(SendDecision::TooSoon { retry_after }),
            "quota" => Ok(SendDecision::QuotaExhausted { retry_after }),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Removes the code stored by `send` if it is still the current one; a
    /// send that surely never reached Plivo also stops counting.
    pub async fn cancel_send(
        &self,
        phone: &PhoneNumber,
        send: &SendId,
        fate: SendFate,
    ) -> Result<(), StoreError> {
        let mut invocation = self.release.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .key(self.key(phone, "sends"))
            .arg(&send.0)
            .arg(if fate == SendFate::NotSent { "1" } else { "0" });
        self.run::<i64>(invocation).await.map(drop)
    }

    /// Compares a guess with the stored digest; a wrong guess is counted and
    /// the last allowed one locks the phone and deletes its code.
    pub async fn check_guess(
        &self,
        phone: &PhoneNumber,
        digest: &CodeDigest,
        limits: GuessLimits,
    ) -> Result<GuessDecision, StoreError> {
        let mut invocation = self.verify.prepare_invoke();
        invocation
            .key(self.key(phone, "code"))
            .key(self.key(phone, "fails"))
            .key(self.key(phone, "lock"))
            .key(self.key(phone, "last"))
            .arg(digest.as_str())
            .arg(limits.max_attempts)
            .arg(millis(limits.lockout))
            .arg(millis(limits.failure_window))
            // Lets a resent call (the cluster client retries after a dropped
            // connection) get its first answer instead of a second decision.
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(self.not_after());
        let (outcome, n): (String, i64) = self.run(invocation).await?;
        match outcome.as_str() {
            "approved" => Ok(GuessDecision::Approved),
            "rejected" => Ok(GuessDecision::Rejected {
                attempts_left: n.max(0) as u32,
            }),
            "locked" => Ok(GuessDecision::Locked {
                retry_after: Duration::from_millis(n.max(0) as u64),
            }),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }
}

impl Store {
    /// Counts a call from `ip` and says whether it is within `limit` for the
    /// current hour. IP keys carry their own hash tag: one more round trip.
    pub async fn count_ip(
        &self,
        ip: &ClientIp,
        action: IpAction,
        limit: u32,
        window: Duration,
    ) -> Result<IpDecision, StoreError> {
        let name = match action {
            IpAction::Send => "sends",
            IpAction::Verify => "verifies",
        };
        let mut invocation = self.ip.prepare_invoke();
        invocation
            .key(format!("{}:ip:{{{}}}:{name}", self.prefix, ip.as_str()))
            .arg(limit)
            .arg(millis(window))
            .arg(self.not_after());
        let (outcome, wait_ms): (String, i64) = self.run(invocation).await?;
        match outcome.as_str() {
            "allowed" => Ok(IpDecision::Allowed),
            "limited" => Ok(IpDecision::Limited {
                retry_after: Duration::from_millis(wait_ms.max(0) as u64),
            }),
            "expired" => Err(StoreError::Late),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    fn idempotency_key(&self, key: &IdempotencyKey) -> String {
        // Hashed: the key is client input of up to 255 bytes.
        let digest = sha2::Sha256::digest(key.as_str().as_bytes());
        format!("{}:idem:{{{}}}", self.prefix, hex::encode(digest))
    }

    /// Claims `key` for a request, or says what became of it. A claim that
    /// is never settled lapses after `pending_ttl`.
    pub async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        pending_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut invocation = self.claim.prepare_invoke();
        invocation
            .key(self.idempotency_key(key))
            .arg(fingerprint)
            .arg(millis(pending_ttl))
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(self.not_after());
        let reply: Vec<Option<String>> = self.run(invocation).await?;
        let field = |i: usize| reply.get(i).cloned().flatten().unwrap_or_default();
        match field(0).as_str() {
            "fresh" => Ok(Claim::Fresh),
            "conflict" => Ok(Claim::Conflict),
            "pending" => Ok(Claim::Pending),
            "expired" => Err(StoreError::Late),
            "replay" => Ok(Claim::Replay(RecordedResponse {
                status: field(1)
                    .parse()
                    .map_err(|_| StoreError::UnexpectedReply("idempotency status".into()))?,
                body: field(2),
                retry_after: field(3).parse().ok(),
            })),
            other => Err(StoreError::UnexpectedReply(other.to_owned())),
        }
    }

    /// Records `response` for replay during `replay_ttl`, or with `None`
    /// frees the key so that a retry runs the request again.
    pub async fn settle(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        response: Option<&RecordedResponse>,
        replay_ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut invocation = self.settle.prepare_invoke();
        invocation.key(self.idempotency_key(key)).arg(fingerprint);
        match response {
            Some(r) => invocation
                .arg(r.status)
                .arg(&r.body)
                .arg(r.retry_after.map(|s| s.to_string()).unwrap_or_default()),
            None => invocation.arg("").arg("").arg(""),
        };
        invocation.arg(millis(replay_ttl));
        match self.run::<i64>(invocation).await? {
            1 => Ok(()),
            _ => Err(StoreError::UnexpectedReply(
                "the idempotency record was gone or held another request".into(),
            )),
        }
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
