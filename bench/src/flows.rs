//! One flow of the load run and the tally of its answers: each call is
//! checked against what it should get (a new code, a resend inside the
//! cooldown, a wrong guess, the right code), and in a failover run a 503
//! with Retry-After is retried and counted on its own.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{phone, plivo::Plivo, runtime::Instance};

/// What a call is, and so what it should get.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Case {
    NewCode,
    ResendInCooldown,
    WrongGuess,
    RightCode,
}

impl Case {
    pub fn describe(self) -> (&'static str, &'static str, u16, &'static str) {
        match self {
            Self::NewCode => ("request-otp", "new code", 200, ""),
            Self::ResendInCooldown => (
                "request-otp",
                "resend inside the cooldown",
                429,
                "too_many_requests",
            ),
            Self::WrongGuess => ("verify-otp", "wrong guess", 400, "invalid_code"),
            Self::RightCode => ("verify-otp", "right code", 200, ""),
        }
    }
}

pub struct Answer {
    pub status: u16,
    pub error: String,
    pub retry_after: bool,
}

pub fn answer_of(body: &str) -> Answer {
    let response: Value = serde_json::from_str(body).unwrap_or_default();
    let inner: Value = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    Answer {
        status: response["statusCode"].as_u64().unwrap_or(0) as u16,
        error: inner["error"].as_str().unwrap_or_default().to_owned(),
        retry_after: response["headers"]["retry-after"].is_string(),
    }
}

#[derive(Default)]
pub struct Tally {
    /// request-otp, verify-otp.
    pub latencies: [Vec<Duration>; 2],
    /// (case, status got) -> count; a retried 503 counts on its own.
    pub histogram: BTreeMap<(Case, u16), u64>,
    pub unexpected: Vec<String>,
    /// When each 503 came, in a failover run.
    pub unavailable: Vec<Instant>,
    pub lost_writes: u64,
    pub abandoned: u64,
}

pub struct Run {
    pub plivo: Arc<Plivo>,
    /// The sample events of request-otp and verify-otp.
    pub templates: [Value; 2],
    pub tally: Mutex<Tally>,
    pub next_phone: AtomicU64,
    /// Flows that ended with the code approved.
    pub flows: AtomicU64,
    /// 503 with Retry-After is a correct answer while a primary is down.
    pub failover: bool,
}

impl Run {
    pub fn event(&self, function: usize, ip: &str, body: Value) -> String {
        let mut event = self.templates[function].clone();
        event["body"] = json!(body.to_string());
        event["requestContext"]["http"]["sourceIp"] = json!(ip);
        event["headers"]["x-forwarded-for"] = json!(ip);
        event.to_string()
    }

    /// Invokes until the answer is not a 503 (only retried in a failover
    /// run; bounded at 200 tries); says whether a 503 came first.
    async fn call(&self, instance: &Instance, case: Case, event: String) -> (Answer, bool) {
        let function = usize::from(case.describe().0 == "verify-otp");
        let mut saw_503 = false;
        for _ in 0..200 {
            let outcome = match instance.invoke(event.clone()).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    self.unexpected(format!("{}: {err}", case.describe().1));
                    return (
                        Answer {
                            status: 0,
                            error: String::new(),
                            retry_after: false,
                        },
                        saw_503,
                    );
                }
            };
            let answer = answer_of(&outcome.body);
            {
                let mut tally = self.tally.lock().unwrap();
                tally.latencies[function].push(outcome.finished - outcome.handed);
                *tally.histogram.entry((case, answer.status)).or_default() += 1;
                if answer.status == 503 && self.failover {
                    tally.unavailable.push(outcome.finished);
                }
            }
            if answer.status != 503 || !self.failover {
                return (answer, saw_503);
            }
            if answer.error != "service_unavailable" || !answer.retry_after {
                self.unexpected(format!("a 503 without Retry-After: {}", outcome.body));
            }
            saw_503 = true;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.unexpected("still 503 after 200 tries".into());
        (
            Answer {
                status: 503,
                error: String::new(),
                retry_after: true,
            },
            saw_503,
        )
    }

    fn unexpected(&self, what: String) {
        self.tally.lock().unwrap().unexpected.push(what);
    }

    fn check(&self, case: Case, answer: &Answer) -> bool {
        let (_, what, status, error) = case.describe();
        let ok = answer.status == status && (error.is_empty() || answer.error == error);
        if !ok {
            self.unexpected(format!("{what}: {} {}", answer.status, answer.error));
        }
        ok
    }

    /// One flow: request, maybe a resend inside the cooldown, maybe a wrong
    /// guess, then the right code.
    pub async fn flow(&self, n: u64, ip: &str, request: &Instance, verify: &Instance) {
        let number = phone(n as usize);
        let body = json!({"phoneNumber": number});
        let (answer, after_503) = self
            .call(request, Case::NewCode, self.event(0, ip, body.clone()))
            .await;
        if after_503 && answer.status == 429 {
            // The first try's send was recorded, its reply lost: no code went out.
            self.tally.lock().unwrap().abandoned += 1;
            return;
        }
        if !self.check(Case::NewCode, &answer) {
            return;
        }
        if n % 5 == 1 {
            let (answer, _) = self
                .call(request, Case::ResendInCooldown, self.event(0, ip, body))
                .await;
            self.check(Case::ResendInCooldown, &answer);
        }
        let Some(code) = self.plivo.code_for(&number) else {
            return self.unexpected(format!("no SMS reached {number}"));
        };
        if n % 3 == 2 {
            let guess: String = code
                .bytes()
                .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
                .collect();
            let event = self.event(1, ip, json!({"phoneNumber": number, "otp": guess}));
            let (answer, _) = self.call(verify, Case::WrongGuess, event).await;
            self.check(Case::WrongGuess, &answer);
        }
        let event = self.event(1, ip, json!({"phoneNumber": number, "otp": code}));
        let (answer, after_503) = self.call(verify, Case::RightCode, event).await;
        match (answer.status, answer.error.as_str()) {
            // The first try approved it and its reply was lost.
            (400, "code_already_used") if after_503 => {}
            // The 200 from request-otp stored a code a failover then lost.
            (400, "invalid_code") if self.failover => self.tally.lock().unwrap().lost_writes += 1,
            _ => {
                if self.check(Case::RightCode, &answer) {
                    self.flows.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
