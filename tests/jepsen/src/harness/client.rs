//! The clients' side of the wire: HTTP calls to the nodes, answers mapped
//! to outcomes the way `tests/jepsen/README.md` says, and the shared
//! [`Recorder`] every worker writes its operations to.
//!
//! A write is retried the way a careful client would: on no answer, 503,
//! 504 or another 5xx it waits a little and sends the *same* request (same
//! body, same `Idempotency-Key`) to the next node, until a definite answer
//! or its deadline; it is recorded as one operation from before the first
//! attempt to after the last ([`Recorder::write`]). Reads are not retried.
//! An operation that ends unknown retires its process: the worker's next
//! operation runs under a fresh process id (Jepsen's convention).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::os::now_ns;
use crate::history::{
    Failure, History, Op, OpId, Outcome, ProcessId, Status, TaskView, Value as Val,
};

/// An HTTP answer, or the lack of one.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status; 0 when no HTTP answer came (refused, reset, timeout).
    pub status: u16,
    /// The JSON body (`Null` when there was none).
    pub body: Value,
    /// Why there was no answer.
    pub error: Option<String>,
}

/// The admin service token every request of this run carries (`None`:
/// the nodes run without accounts). Set by the run's setup.
static TOKEN: Mutex<Option<String>> = Mutex::new(None);

/// Every client of this process sends `token` from now on.
pub fn use_token(token: Option<String>) {
    *TOKEN.lock().unwrap_or_else(|e| e.into_inner()) = token;
}

/// The token requests carry, if the nodes run with accounts.
pub fn token() -> Option<String> {
    TOKEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// An agent with these timeouts: https trusting the run's CA (the
/// testbed's [`testbed::trust_ca`]), and the run's token on every request.
pub fn agent_with(connect: Duration, timeout: Duration) -> ureq::Agent {
    testbed::agent_builder()
        .timeout_connect(connect)
        .timeout(timeout)
        .middleware(with_token)
        .build()
}

/// Adds the run's token to a request (ureq's middleware signature: its
/// large error type is not ours to change).
#[allow(clippy::result_large_err)]
fn with_token(
    request: ureq::Request,
    next: ureq::MiddlewareNext,
) -> Result<ureq::Response, ureq::Error> {
    let request = match token() {
        Some(token) => request.set("Authorization", &format!("Bearer {token}")),
        None => request,
    };
    next.handle(request)
}

/// A blocking HTTP client with the harness's timeouts: a write may wait
/// for consensus up to the node's 5 s deadline, so 8 s before giving up.
pub fn agent() -> ureq::Agent {
    agent_with(Duration::from_millis(1000), Duration::from_secs(8))
}

/// An agent for reads, which a client may give up on sooner than on a
/// write: a read stuck on a paused node is abandoned after 3 s (recorded as
/// unknown, harmless to the checkers) and the next one goes elsewhere.
pub fn read_agent() -> ureq::Agent {
    agent_with(Duration::from_millis(1000), Duration::from_secs(3))
}

/// A quick agent for probes (cluster views, readiness).
pub fn probe_agent() -> ureq::Agent {
    agent_with(Duration::from_millis(500), Duration::from_millis(1500))
}

/// One request; never panics, whatever the node does.
pub fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&Value>,
) -> Answer {
    let mut request = agent.request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            return Answer {
                status: 0,
                body: Value::Null,
                error: Some(t.to_string()),
            }
        }
    };
    let status = response.status();
    match response.into_string() {
        Ok(text) => Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            error: None,
        },
        // The status came but the body did not: as good as no answer.
        Err(e) => Answer {
            status: 0,
            body: Value::Null,
            error: Some(format!("status {status}, body lost: {e}")),
        },
    }
}

/// `GET url` with the probe agent; the body when it answered 200.
pub fn probe(url: &str) -> Option<Value> {
    let answer = call(&probe_agent(), "GET", url, &[], None);
    (answer.status == 200).then_some(answer.body)
}

/// The modelled part of a task in a JSON body.
pub fn task_view(body: &Value) -> Option<TaskView> {
    Some(TaskView {
        version: body["version"].as_u64()?,
        title: body["title"].as_str()?.to_string(),
        status: status(body["status"].as_str()?)?,
    })
}

/// A column by its API name.
pub fn status(name: &str) -> Option<Status> {
    Status::ALL.into_iter().find(|s| s.as_str() == name)
}

/// Whether an answer leaves the outcome unknown (retry may help).
pub fn is_unknown(answer: &Answer) -> bool {
    answer.status == 0 || answer.status >= 500
}

/// The outcome an answer means for `op`.
pub fn outcome(op: &Op, answer: &Answer) -> Outcome {
    let message = || {
        answer.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    match answer.status {
        0 => Outcome::Info(answer.error.clone().unwrap_or_else(|| "no answer".into())),
        204 if matches!(op, Op::Delete { .. }) => Outcome::Ok(Val::Deleted),
        200 | 201 => match task_view(&answer.body) {
            Some(view) => Outcome::Ok(Val::Task(view)),
            None => Outcome::Info(format!("2xx with an unreadable body: {}", answer.body)),
        },
        404 => Outcome::Fail(Failure::NotFound),
        409 if answer.body["error"]["code"] == "id_taken" => Outcome::Fail(Failure::IdTaken),
        412 => match task_view(&answer.body["error"]["current"]) {
            Some(current) => Outcome::Fail(Failure::VersionMismatch { current }),
            None => Outcome::Info(format!("412 without the current task: {}", answer.body)),
        },
        s @ 400..=499 => Outcome::Fail(Failure::Rejected {
            status: s,
            message: message(),
        }),
        s => Outcome::Info(format!(
            "{s} {}",
            answer.body["error"]["code"].as_str().unwrap_or("")
        )),
    }
}

/// One worker's identity in the history: its current process id.
pub struct Process {
    /// The id operations are recorded under now.
    pub id: ProcessId,
}

/// The history of a run (or of one part of it), shared by the workers.
pub struct Recorder {
    history: Mutex<History>,
    next_process: AtomicU64,
}

/// How a write's attempts went.
pub struct Written {
    /// The operation in the history.
    pub op: OpId,
    /// Its outcome.
    pub outcome: Outcome,
    /// The last answer (headers aside).
    pub answer: Answer,
    /// How many times it was sent.
    pub attempts: u32,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty history.
    pub fn new() -> Recorder {
        Recorder {
            history: Mutex::new(History::new()),
            next_process: AtomicU64::new(0),
        }
    }

    /// A fresh process.
    pub fn process(&self) -> Process {
        Process {
            id: ProcessId(self.next_process.fetch_add(1, Ordering::SeqCst)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an invocation now.
    pub fn invoke(&self, process: &Process, op: Op) -> OpId {
        let time = now_ns();
        self.lock().invoke(process.id, op, time)
    }

    /// Records an invocation that happened at `time` (its op was only
    /// known after the answer, e.g. a server-chosen id).
    pub fn invoke_at(&self, process: &Process, op: Op, time: u64) -> OpId {
        self.lock().invoke(process.id, op, time)
    }

    /// Records the completion now; an unknown one retires the process.
    pub fn complete(&self, process: &mut Process, op: OpId, outcome: Outcome) {
        let unknown = matches!(outcome, Outcome::Info(_));
        let time = now_ns();
        // `op` came from this recorder and is completed once, here.
        let _ = self.lock().complete(op, outcome, time);
        if unknown {
            *process = self.process();
        }
    }

    /// Sends a write, retrying unknown answers on the next nodes with the
    /// same request until `deadline`, and records it as one operation.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        process: &mut Process,
        agent: &ureq::Agent,
        urls: &[String],
        first: usize,
        op: Op,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
        deadline: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Written {
        let id = self.invoke(process, op.clone());
        let give_up = Instant::now() + deadline;
        let mut attempts = 0;
        let answer = loop {
            let url = format!("{}{path}", urls[(first + attempts as usize) % urls.len()]);
            let answer = call(agent, method, &url, headers, body);
            attempts += 1;
            if !is_unknown(&answer) || Instant::now() >= give_up || stop() {
                break answer;
            }
            std::thread::sleep(Duration::from_millis(100 + 50 * u64::from(attempts.min(6))));
        };
        let outcome = outcome(&op, &answer);
        self.complete(process, id, outcome.clone());
        Written {
            op: id,
            outcome,
            answer,
            attempts,
        }
    }

    /// A read (or list): one request, recorded.
    pub fn read(
        &self,
        process: &mut Process,
        agent: &ureq::Agent,
        url: &str,
        op: Op,
    ) -> (Outcome, Answer) {
        let id = self.invoke(process, op.clone());
        let answer = call(agent, "GET", url, &[], None);
        let outcome = match (&op, answer.status) {
            (Op::List, 200) => match listed(&answer.body) {
                Some(tasks) => Outcome::Ok(Val::Tasks { tasks }),
                None => Outcome::Info(format!("unreadable list: {}", answer.body)),
            },
            _ => outcome(&op, &answer),
        };
        self.complete(process, id, outcome.clone());
        (outcome, answer)
    }

    /// The history so far (a copy).
    pub fn snapshot(&self) -> History {
        self.lock().clone()
    }

    /// The history, with operations still pending left pending.
    pub fn into_history(self) -> History {
        self.history.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tasks of a list answer.
pub fn listed(body: &Value) -> Option<Vec<crate::history::ListedTask>> {
    body["tasks"]
        .as_array()?
        .iter()
        .map(|t| {
            let view = task_view(t)?;
            Some(crate::history::ListedTask {
                id: t["id"].as_str()?.to_string(),
                version: view.version,
                title: view.title,
                status: view.status,
            })
        })
        .collect()
}
