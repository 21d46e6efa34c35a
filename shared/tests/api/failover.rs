//! A primary of the TLS cluster dies while flows run from several tasks:
//! users (request, read the SMS, verify, submit again) and attackers (wrong
//! guesses until the lock). The replica takes over, the old primary comes
//! back as a replica, and one `Services` (one warm instance, no new cold
//! start) serves it all.
//!
//! Needs the cluster with replicas that `scripts/lib.sh` starts
//! (`TEST_REDIS_CLUSTER_DIR`); skipped with a note otherwise. It kills a
//! node other tests use, so `scripts/test.sh` runs it alone, after the rest
//! of the cluster suite.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{task::JoinSet, time::Instant};
use wiremock::{Respond, ResponseTemplate};

use crate::{cluster::Cluster, support::*};

const MAX_ATTEMPTS: usize = 5;
/// Steady flows before the kill, and after the old primary is back.
const STEADY: Duration = Duration::from_millis(1_500);
/// How long after the promotion the old primary stays down.
const DOWN_AFTER_PROMOTION: Duration = Duration::from_secs(6);
const RECOVERY_BUDGET: Duration = Duration::from_secs(5);

/// Keeps the code of the latest SMS to each number, as Plivo accepts it.
#[derive(Clone, Default)]
struct CodeBook(Arc<Mutex<HashMap<String, String>>>);

impl Respond for CodeBook {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        if let (Some(dst), Some(text)) = (body["dst"].as_str(), body["text"].as_str()) {
            let code = code_in(text, 6);
            self.0.lock().unwrap().insert(dst.to_owned(), code);
        }
        plivo_accepted()
    }
}

/// Every answer, when it came, and what was wrong with it.
#[derive(Default)]
struct Record {
    answers: Mutex<Vec<(Instant, u16)>>,
    unexpected: Mutex<Vec<String>>,
    approvals: AtomicUsize,
    double_approvals: AtomicUsize,
    lost_codes: AtomicUsize,
    guesses_through: Mutex<Vec<usize>>,
}

struct Drill {
    app: TestApp,
    codes: CodeBook,
    record: Record,
    stop: AtomicBool,
    next_phone: AtomicUsize,
}

impl Drill {
    fn phone(&self) -> String {
        format!(
            "+447400{:06}",
            self.next_phone.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn unexpected(&self, what: String) {
        self.record.unexpected.lock().unwrap().push(what);
    }

    /// Calls until the answer is not a 503 (bounded: 20 s), checking each
    /// 503 is the documented one; says whether a 503 came first.
    async fn answered<F, Fut>(&self, call: F) -> (TestResponse, bool)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = TestResponse>,
    {
        let mut saw_503 = false;
        for _ in 0..200 {
            let response = call().await;
            self.record
                .answers
                .lock()
                .unwrap()
                .push((Instant::now(), response.status));
            if response.status != 503 {
                return (response, saw_503);
            }
            saw_503 = true;
            if response.error() != "service_unavailable"
                || !response.headers.contains_key("retry-after")
            {
                self.unexpected(format!("a 503 without Retry-After: {:?}", response.body));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("still 503 after 20 s");
    }

    async fn requested(&self, phone: &str) -> Option<String> {
        let (response, _) = self.answered(|| self.app.request(phone)).await;
        if response.status != 200 {
            self.unexpected(format!("request: {} {:?}", response.status, response.body));
            return None;
        }
        self.codes.0.lock().unwrap().get(phone).cloned()
    }

    /// Request, verify, then the same code again: it must not pass twice.
    async fn user_flow(&self) {
        let phone = self.phone();
        let Some(code) = self.requested(&phone).await else {
            return;
        };
        let (first, after_503) = self.answered(|| self.app.verify(&phone, &code)).await;
        match (first.status, first.error()) {
            (200, _) => {
                self.record.approvals.fetch_add(1, Ordering::Relaxed);
            }
            // A 503 whose script had run: the code is spent, no second token.
            (400, "code_already_used") if after_503 => return,
            // The code the 200 promised is not in Redis: a lost write.
            (400, "invalid_code") => {
                self.record.lost_codes.fetch_add(1, Ordering::Relaxed);
                return;
            }
            (status, error) => return self.unexpected(format!("verify: {status} {error}")),
        }
        let (again, _) = self.answered(|| self.app.verify(&phone, &code)).await;
        match (again.status, again.error()) {
            (200, _) => {
                self.record.double_approvals.fetch_add(1, Ordering::Relaxed);
            }
            (400, "code_already_used" | "invalid_code") => {}
            (status, error) => self.unexpected(format!("verify again: {status} {error}")),
        }
    }

    /// Wrong guesses until the lock and a few more: how many were judged
    /// (answered 400 with attempts left, or locked by that very guess).
    async fn attacker_flow(&self) {
        let phone = self.phone();
        let Some(code) = self.requested(&phone).await else {
            return;
        };
        let guess = wrong(&code);
        let (mut through, mut locked) = (0, false);
        for _ in 0..MAX_ATTEMPTS + 3 {
            let (response, _) = self.answered(|| self.app.verify(&phone, &guess)).await;
            match (response.status, response.error()) {
                (400, "invalid_code") => through += 1,
                (429, "too_many_attempts") if !locked => {
                    through += 1;
                    locked = true;
                }
                (429, "too_many_attempts") => {}
                (status, error) => self.unexpected(format!("guess: {status} {error}")),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.record.guesses_through.lock().unwrap().push(through);
    }
}

/// The source IP of the sample events the calls are made from.
fn source_ip() -> String {
    let mut ip = String::new();
    event("verify-otp-http-api.json", |e| {
        ip = e["requestContext"]["http"]["sourceIp"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    });
    ip
}

fn elapsed_ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_under_load_fails_over_cleanly_and_the_functions_recover_by_themselves() {
    let Some(cluster) = Cluster::from_env() else {
        eprintln!(
            "skipped: no TEST_REDIS_CLUSTER_DIR (scripts/test.sh runs this against its cluster with replicas)"
        );
        return;
    };
    let app = TestApp::builder()
        .without_plivo_mock()
        .env("OTP_MAX_ATTEMPTS", &MAX_ATTEMPTS.to_string())
        .env("IP_MAX_SENDS_PER_HOUR", "100000")
        .env("IP_MAX_VERIFIES_PER_HOUR", "100000")
        .env("OTP_MAX_SENDS_PER_HOUR", "1000")
        .spawn()
        .await;
    let codes = CodeBook::default();
    plivo_message(AUTH_ID, AUTH_TOKEN)
        .respond_with(codes.clone())
        .mount(&app.plivo)
        .await;
    // Every call counts against the source IP first: killing the primary
    // of that key's slot puts every call through the failover.
    let ip_key = format!("{}:ip:{{{}}}:verifies", app.prefix, source_ip());
    let (primary, replica) = cluster.primary_and_replica_of(&ip_key).await;
    let drill = Arc::new(Drill {
        app,
        codes,
        record: Record::default(),
        stop: AtomicBool::new(false),
        next_phone: AtomicUsize::new(0),
    });

    let mut tasks = JoinSet::new();
    for task in 0..7 {
        let drill = Arc::clone(&drill);
        tasks.spawn(async move {
            while !drill.stop.load(Ordering::Relaxed) {
                if task < 4 {
                    drill.user_flow().await;
                } else {
                    drill.attacker_flow().await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    tokio::time::sleep(STEADY).await;

    let killed = Instant::now();
    cluster.kill(primary.port);
    let promoted = cluster
        .wait_for_role(replica.port, "master", Duration::from_secs(15))
        .await
        .expect("the replica takes over within 15 s");
    tokio::time::sleep(DOWN_AFTER_PROMOTION).await;
    let restarted = Instant::now();
    cluster.restart(primary.port);
    let rejoined = cluster
        .wait_for_role(primary.port, "slave", Duration::from_secs(20))
        .await
        .expect("the old primary rejoins as a replica within 20 s");
    tokio::time::sleep(STEADY).await;
    drill.stop.store(true, Ordering::Relaxed);
    while let Some(done) = tasks.join_next().await {
        done.expect("a flow task panicked");
    }

    let record = &drill.record;
    let answers = record.answers.lock().unwrap();
    let first_503 = answers.iter().find(|(_, s)| *s == 503).map(|(t, _)| *t);
    let last_503 = answers
        .iter()
        .filter(|(t, s)| *s == 503 && *t < restarted)
        .map(|(t, _)| *t)
        .max();
    let recovery = last_503.map_or(Duration::ZERO, |t| t.saturating_duration_since(promoted));
    let through = record.guesses_through.lock().unwrap();
    let count = |status: u16| answers.iter().filter(|(_, s)| *s == status).count();
    eprintln!(
        "failover drill: {} answers ({} 200, {} 400, {} 429, {} 503, {} 5xx other); \
         promotion {:.0} ms after the kill, first 503 {:.0} ms after the kill, \
         recovery {:.0} ms after the promotion ({} 503s after it, {} after the old primary's restart); old primary back as a replica {:.0} ms after its restart; \
         {} approvals, {} double approvals, {} lost codes (200 from request, code not in Redis); \
         {} attacked phones, at most {} wrong guesses judged per phone (limit {MAX_ATTEMPTS})",
        answers.len(),
        count(200),
        count(400),
        count(429),
        count(503),
        answers
            .iter()
            .filter(|(_, s)| *s >= 500 && *s != 503)
            .count(),
        elapsed_ms(killed, promoted),
        first_503.map_or(f64::NAN, |t| elapsed_ms(killed, t)),
        recovery.as_secs_f64() * 1e3,
        answers
            .iter()
            .filter(|(t, s)| *s == 503 && *t > promoted && *t < restarted)
            .count(),
        answers
            .iter()
            .filter(|(t, s)| *s == 503 && *t >= restarted)
            .count(),
        elapsed_ms(restarted, rejoined),
        record.approvals.load(Ordering::Relaxed),
        record.double_approvals.load(Ordering::Relaxed),
        record.lost_codes.load(Ordering::Relaxed),
        through.len(),
        through.iter().max().copied().unwrap_or(0),
    );

    assert_eq!(*record.unexpected.lock().unwrap(), Vec::<String>::new());
    assert!(
        answers.iter().all(|(_, s)| *s < 500 || *s == 503),
        "no 500, ever"
    );
    assert!(
        recovery <= RECOVERY_BUDGET,
        "recovered {recovery:?} after the promotion"
    );
    assert_eq!(record.double_approvals.load(Ordering::Relaxed), 0);
    assert!(
        through.iter().all(|&n| n <= MAX_ATTEMPTS),
        "wrong guesses judged per phone: {through:?}"
    );
    assert!(record.approvals.load(Ordering::Relaxed) > 0 && !through.is_empty());
}
