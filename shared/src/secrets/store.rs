//! The current secret of one Lambda instance, and how it stays current.
//!
//! It is read at cold start, then again every `SECRET_REFRESH_SECONDS`, so a
//! rotation reaches warm instances of every function. The refresh never
//! holds up an answer: an invocation only checks whether one is due and, if
//! so, spawns it beside itself; once the invocation's response is posted
//! (the caller has it), the runtime gives the refresh a moment to finish
//! (`settle`) before asking for the next event, as Lambda may freeze the
//! instance from then on. A refresh that fails keeps the last good secret,
//! logs, and is tried again a little later.

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use aws_sdk_secretsmanager::Client;
use tokio::{task::JoinHandle, time::Instant};

use super::{SecretRules, Secrets, SecretsError};

/// A refresh that has not finished by then is given up (and logged).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed refresh, the next try comes this soon (or at the usual
/// interval if that is shorter), not on every invocation.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Cheap to clone: the clones share one current secret.
#[derive(Clone)]
pub struct SecretStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    secret_id: String,
    rules: SecretRules,
    every: Duration,
    current: RwLock<Arc<Secrets>>,
    next_due: Mutex<Instant>,
    refreshing: AtomicBool,
    /// The running refresh, for `settle` to wait on.
    in_flight: Mutex<Option<JoinHandle<()>>>,
}

impl SecretStore {
    /// Reads the secret; it is read again every `every` from then on.
    pub async fn load(
        client: Client,
        secret_id: String,
        rules: SecretRules,
        every: Duration,
    ) -> Result<Self, SecretsError> {
        let secrets = fetch(&client, &secret_id, rules).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                secret_id,
                rules,
                every,
                current: RwLock::new(Arc::new(secrets)),
                next_due: Mutex::new(Instant::now() + every),
                refreshing: AtomicBool::new(false),
                in_flight: Mutex::new(None),
            }),
        })
    }

    pub fn current(&self) -> Arc<Secrets> {
        // A poisoned lock still holds a complete Arc: the writer only swaps it.
        Arc::clone(&self.inner.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the secret again now and makes it current (after a Plivo 401).
    pub async fn refresh(&self) -> Result<Arc<Secrets>, SecretsError> {
        let fresh = self.inner.fetch_and_swap().await?;
        self.inner.set_due(self.inner.every);
        Ok(fresh)
    }

    /// Called as an invocation starts: when a refresh is due and none is
    /// running, starts one as a task of its own and returns at once.
    pub fn refresh_if_due(&self) {
        if !self.inner.claim_due_refresh() {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            let outcome = tokio::time::timeout(REFRESH_TIMEOUT, inner.fetch_and_swap()).await;
            match outcome.unwrap_or(Err(SecretsError::TimedOut)) {
                Ok(fresh) => tracing::info!(
                    token_kids = ?fresh.token_keys.kids(),
                    code_keys = fresh.code_keys.len(),
                    "secret refreshed"
                ),
                Err(err) => {
                    inner.set_due(inner.every.min(RETRY_AFTER_FAILURE));
                    tracing::error!(
                        error = %crate::error_chain(&err),
                        "secret refresh failed: keeping the last good secret"
                    );
                }
            }
            inner.refreshing.store(false, Ordering::Release);
        });
        *self.inner.lock_in_flight() = Some(task);
    }

    /// Waits, at most `limit`, for a refresh started during this invocation.
    /// For the runtime to call once the response is posted and before it
    /// asks for the next event: the caller already has its answer, and the
    /// refresh ends before Lambda can freeze the instance in the middle of
    /// it (where, thawed minutes later, its connection would be dead).
    pub async fn settle(&self, limit: Duration) {
        let task = self.inner.lock_in_flight().take();
        let Some(mut task) = task else {
            return;
        };
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            // Still running: it goes on beside the next invocation.
            *self.inner.lock_in_flight() = Some(task);
        }
    }
}

impl Inner {
    /// True when this caller is to run the refresh: it is due, and no other
    /// is running. Moves the due time on, so the next invocations do not
    /// start another one.
    fn claim_due_refresh(&self) -> bool {
        let now = Instant::now();
        let mut due = self.next_due.lock().unwrap_or_else(|e| e.into_inner());
        if now < *due || self.refreshing.swap(true, Ordering::AcqRel) {
            return false;
        }
        *due = now + self.every;
        true
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_due(&self, after: Duration) {
        *self.next_due.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + after;
    }

    async fn fetch_and_swap(&self) -> Result<Arc<Secrets>, SecretsError> {
        let fresh = Arc::new(fetch(&self.client, &self.secret_id, self.rules).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

async fn fetch(
    client: &Client,
    secret_id: &str,
    rules: SecretRules,
) -> Result<Secrets, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SecretsError::Fetch {
            secret_id: secret_id.to_owned(),
            source: Box::new(e),
        })?;
    let json = output
        .secret_string()
        .ok_or_else(|| SecretsError::NotAString {
            secret_id: secret_id.to_owned(),
        })?;
    Secrets::parse(secret_id, json, rules)
}
