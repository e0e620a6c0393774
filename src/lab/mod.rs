//! The Raft lab of `taskraft demo --lab`: the demo supervisor, which owns
//! the node processes, puts a relay on every peer link ([`relay`]) and
//! serves, on its own port, a page and an API to break things on purpose:
//! kill / restart / pause / resume a node, cut or heal a link (one
//! direction or both), isolate a node, heal everything, hand leadership
//! over. `taskraft serve` has none of this: the routes exist only here.
//!
//! What the page shows comes from the nodes: `/lab/state` merges each
//! node's own `/api/cluster` (polled here every 300 ms) with what only the
//! supervisor knows (process state, link state, messages per link), and a
//! timeline of what changed; `/lab/nodes/{id}/log` is the node's own
//! `/api/cluster/log`.
//!
//! Not here: adding and removing nodes from the page (use the node API,
//! `POST /api/cluster/members`), slowing links (the jepsen harness does).

pub mod relay;
mod server;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

pub use server::serve;

/// One node as the supervisor runs it.
pub struct LabNode {
    pub id: u64,
    pub url: String,
    pub log: PathBuf,
    /// How to start it again: this binary's `serve` with this environment.
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    pub paused: bool,
    /// The exit already reported, so it is reported once.
    pub reported: bool,
    /// Its last `/api/cluster`, while it answers.
    pub view: Option<Value>,
}

impl LabNode {
    pub fn spawn(&mut self, exe: &std::path::Path) -> Result<(), String> {
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting node {}: {e}", self.id))?;
        self.child = Some(child);
        self.paused = false;
        self.reported = false;
        Ok(())
    }

    pub fn state(&mut self) -> &'static str {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) if self.paused => "paused",
            Some(Ok(None)) => "running",
            _ => "killed",
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// Something the timeline shows: a fault the lab caused, or a change the
/// nodes reported (a new leader, a new term).
#[derive(Clone, Debug, Serialize)]
pub struct LabEvent {
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// `fault` (caused here) or `raft` (seen on the nodes).
    pub kind: &'static str,
    pub text: String,
}

/// Everything the lab owns.
pub struct Lab {
    pub exe: PathBuf,
    pub nodes: Mutex<Vec<LabNode>>,
    pub links: Vec<Arc<relay::Link>>,
    events: Mutex<VecDeque<LabEvent>>,
    /// (leader, term) last seen, to notice elections.
    leadership: Mutex<(Option<u64>, u64)>,
}

const EVENTS_KEPT: usize = 200;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Lab {
    pub fn new(exe: PathBuf, nodes: Vec<LabNode>, links: Vec<Arc<relay::Link>>) -> Lab {
        Lab {
            exe,
            nodes: Mutex::new(nodes),
            links,
            events: Mutex::new(VecDeque::new()),
            leadership: Mutex::new((None, 0)),
        }
    }

    pub fn nodes(&self) -> std::sync::MutexGuard<'_, Vec<LabNode>> {
        // A panic while holding the lock leaves plain data behind.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, kind: &'static str, text: String) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push_back(LabEvent {
            at: now_ms(),
            kind,
            text,
        });
        while events.len() > EVENTS_KEPT {
            events.pop_front();
        }
    }

    /// Asks every running node for its view; notes new leaders and terms.
    pub fn poll_nodes(&self) {
        let targets: Vec<(u64, String, bool)> = {
            let mut nodes = self.nodes();
            nodes
                .iter_mut()
                .map(|n| (n.id, n.url.clone(), n.state() == "running"))
                .collect()
        };
        let views: Vec<(u64, Option<Value>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(id, url, running)| {
                    scope.spawn(move || {
                        let view = running
                            .then(|| {
                                ureq::get(&format!("{url}/api/cluster"))
                                    .timeout(Duration::from_millis(800))
                                    .call()
                                    .ok()?
                                    .into_json::<Value>()
                                    .ok()
                            })
                            .flatten();
                        (*id, view)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut newest: Option<(u64, Option<u64>)> = None;
        {
            let mut nodes = self.nodes();
            for (id, view) in views {
                if let Some(node) = nodes.iter_mut().find(|n| n.id == id) {
                    if let Some(v) = &view {
                        let term = v["term"].as_u64().unwrap_or(0);
                        if newest.is_none_or(|(t, _)| term > t) {
                            newest = Some((term, v["leader_id"].as_u64()));
                        }
                    }
                    node.view = view;
                }
            }
        }
        if let Some((term, leader)) = newest {
            let mut seen = self.leadership.lock().unwrap_or_else(|e| e.into_inner());
            if seen.0 != leader || seen.1 != term {
                let text = match leader {
                    Some(id) => format!("node {id} leads in term {term}"),
                    None => format!("no leader in term {term} (an election)"),
                };
                *seen = (leader, term);
                drop(seen);
                self.record("raft", text);
            }
        }
    }

    /// What `GET /lab/state` answers.
    pub fn state(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes()
            .iter_mut()
            .map(|n| {
                let state = n.state();
                let view = if state == "killed" {
                    None
                } else {
                    n.view.as_ref()
                };
                let field = |k: &str| view.map_or(Value::Null, |v| v[k].clone());
                json!({
                    "id": n.id,
                    "pid": n.pid(),
                    "state": state,
                    "url": n.url,
                    "role": field("role"),
                    "term": field("term"),
                    "vote": field("vote"),
                    "leader_id": field("leader_id"),
                    "commit_index": field("commit_index"),
                    "applied_index": field("applied_index"),
                    "last_index": field("last_index"),
                    "first_index": field("first_index"),
                    "answering": view.is_some(),
                })
            })
            .collect();
        let links: Vec<Value> = self
            .links
            .iter()
            .map(|l| {
                json!({
                    "from": l.from,
                    "to": l.to,
                    "state": if l.is_cut() { "cut" } else { "ok" },
                    "messages": l.messages(),
                })
            })
            .collect();
        let events: Vec<LabEvent> = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        json!({ "nodes": nodes, "links": links, "events": events })
    }
}

/// Polls the nodes until the process exits.
pub fn start_polling(lab: Arc<Lab>) {
    let _ = std::thread::Builder::new()
        .name("lab poll".into())
        .spawn(move || loop {
            lab.poll_nodes();
            std::thread::sleep(Duration::from_millis(300));
        });
}

impl Lab {
    /// kill / restart / pause / resume one node.
    pub fn act(&self, id: u64, action: &str) -> Result<(), (actix_web::http::StatusCode, String)> {
        use actix_web::http::StatusCode;
        let conflict = |m: String| (StatusCode::CONFLICT, m);
        let mut nodes = self.nodes();
        let node = nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or((StatusCode::NOT_FOUND, format!("no node {id}")))?;
        let state = node.state();
        match action {
            "kill" => {
                if state == "killed" {
                    return Err(conflict(format!("node {id} is not running")));
                }
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                node.view = None;
                node.reported = true;
                drop(nodes);
                self.record("fault", format!("node {id} killed (SIGKILL)"));
            }
            "restart" => {
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                node.spawn(&self.exe)
                    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
                drop(nodes);
                self.record("fault", format!("node {id} restarted"));
            }
            "pause" | "resume" => {
                let pause = action == "pause";
                if state == "killed" || (state == "paused") == pause {
                    return Err(conflict(format!("node {id} is {state}")));
                }
                if let Some(pid) = node.pid() {
                    crate::mysqld::signal(pid, if pause { libc::SIGSTOP } else { libc::SIGCONT });
                }
                node.paused = pause;
                drop(nodes);
                self.record(
                    "fault",
                    format!(
                        "node {id} {}",
                        if pause { "paused (SIGSTOP)" } else { "resumed" }
                    ),
                );
            }
            other => {
                return Err((
                    StatusCode::NOT_FOUND,
                    format!("no action {other:?}: kill, restart, pause or resume"),
                ))
            }
        }
        Ok(())
    }
}
