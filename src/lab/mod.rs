//! The Raft lab of `taskraft demo --lab`: the demo supervisor, which owns
//! the node processes, puts a relay in front of every node's Raft port
//! ([`relay`]; it tells the directed links apart by the dialer's hello) and
//! serves, on its own port, a page and an API to break things on purpose:
//! kill / restart / pause / resume a node, cut or heal a link (one
//! direction or both), isolate a node, heal everything, hand leadership
//! over, add a node and remove one. `taskraft serve` has none of this: the
//! routes exist only here.
//!
//! Every member's Raft address, as the cluster records it, is its relay's:
//! the first nodes are started with `peers` naming the relays (their own
//! included, so that is the address they announce), and a node the lab adds
//! gets a relay before it starts and announces it (`raft_advertise_addr`)
//! when it joins. Snapshots and joins copy one node's membership to another;
//! since every node knows every member by the same relay address, no peer
//! traffic ever goes around the lab.
//!
//! Adding a node (`POST /lab/nodes`): the supervisor picks the next unused
//! id and ports, starts the relay and the links to and from every node,
//! then starts `taskraft serve` with `join` naming the running nodes (the
//! leader first). The node joins as the membership API has it: it asks to
//! be added as a learner, is sent the log, and asks the leader to promote
//! it to voter once it has caught up. Removing one (`DELETE
//! /lab/nodes/{id}`): leadership is handed away first if it leads (a
//! leader cannot remove itself), then any other running node is asked
//! `DELETE /api/cluster/members/{id}` (followers forward it to the leader);
//! once the cluster has applied it, the process is stopped and its relay
//! and links go. Either is refused (409) before anything is asked of the
//! cluster when it could not survive it ([`Health`]): one change at a
//! time, a majority of the voters up now and after.
//!
//! What the page shows comes from the nodes: `/lab/state` merges each
//! node's own `/api/cluster` (polled here every 300 ms) with what only the
//! supervisor knows (process state, link state, messages per link), and a
//! timeline of what changed (faults caused here; leaders, terms and
//! membership changes the nodes reported); `/lab/nodes/{id}/log` is the
//! node's own `/api/cluster/log`.
//!
//! Not here: slowing links (the jepsen harness does).

pub mod relay;
mod server;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

pub use server::serve;

/// At most this many nodes at once (each is a process with its own
/// database on this machine).
pub const MAX_NODES: usize = 9;

/// A refusal: the status and the message the API answers with.
pub type Refusal = (StatusCode, String);

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

    /// Stops the process: SIGTERM (so a leader hands over), SIGKILL after
    /// `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // A paused node must run to handle its SIGTERM.
        crate::mysqld::signal(child.id(), libc::SIGCONT);
        crate::mysqld::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What every node of the demo shares, to start one: the first ones and
/// those the lab adds later.
pub struct NodeTemplate {
    /// The demo's directory: `n<id>/` (data) and `n<id>.log` go there.
    pub dir: PathBuf,
    /// The MySQL server's URL; each node gets database `taskraft_demo_n<id>`.
    pub mysql_base: String,
    pub secret: String,
    /// The nodes' `api_token`: the lab drives membership and leadership
    /// with it (an admin-level service token).
    pub api_token: String,
    /// `name:password` of the first admin (`bootstrap_admin`); `None`
    /// runs the nodes with `auth = "off"`.
    pub bootstrap_admin: Option<String>,
    pub http_workers: String,
    /// The lab's own URL (`http://127.0.0.1:PORT`), under `--lab`.
    pub lab_url: Option<String>,
    /// Node i serves HTTP on `http_base + i - 1`, Raft 1000 above, and its
    /// relay listens 2000 above (any free port when taken).
    pub http_base: u16,
}

impl NodeTemplate {
    fn port(&self, offset: u16, id: u64) -> Option<u16> {
        let id = u16::try_from(id).ok()?;
        self.http_base
            .checked_add(offset)?
            .checked_add(id)?
            .checked_sub(1)
    }

    pub fn http_port(&self, id: u64) -> Option<u16> {
        self.port(0, id)
    }

    pub fn raft_port(&self, id: u64) -> Option<u16> {
        self.port(1000, id)
    }

    pub fn relay_port(&self, id: u64) -> Option<u16> {
        self.port(2000, id)
    }

    /// Node `id`, not started: HTTP on `http_port`, Raft on `raft_addr`,
    /// with `extra` settings (`peers`, or `join` and `raft_advertise_addr`).
    pub fn node(
        &self,
        id: u64,
        http_port: u16,
        raft_addr: SocketAddr,
        extra: Vec<(String, String)>,
    ) -> Result<LabNode, String> {
        let mut env = vec![
            ("TASKRAFT_NODE_ID".to_string(), id.to_string()),
            (
                "TASKRAFT_HTTP_ADDR".into(),
                format!("127.0.0.1:{http_port}"),
            ),
            ("TASKRAFT_RAFT_ADDR".into(), raft_addr.to_string()),
            (
                "TASKRAFT_MYSQL_URL".into(),
                crate::mysqld::with_database(&self.mysql_base, &format!("taskraft_demo_n{id}"))?,
            ),
            (
                "TASKRAFT_DATA_DIR".into(),
                self.dir.join(format!("n{id}")).display().to_string(),
            ),
            ("TASKRAFT_HTTP_WORKERS".into(), self.http_workers.clone()),
            ("TASKRAFT_CLUSTER_SECRET".into(), self.secret.clone()),
            ("TASKRAFT_API_TOKEN".into(), self.api_token.clone()),
        ];
        match &self.bootstrap_admin {
            Some(admin) => {
                env.push(("TASKRAFT_AUTH".into(), "on".into()));
                env.push(("TASKRAFT_BOOTSTRAP_ADMIN".into(), admin.clone()));
            }
            None => env.push(("TASKRAFT_AUTH".into(), "off".into())),
        }
        env.extend(extra);
        if let Some(lab_url) = &self.lab_url {
            // The lab page writes and reads cards on the nodes directly.
            env.push(("TASKRAFT_CORS_ORIGINS".into(), lab_url.clone()));
            env.push(("TASKRAFT_LAB_URL".into(), format!("{lab_url}/lab")));
            // Compact early, so that the tour's follower that falls behind
            // is brought back by a snapshot after a few dozen writes.
            env.push(("TASKRAFT_SNAPSHOT_COUNT".into(), "40".into()));
            env.push(("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES".into(), "10".into()));
        }
        Ok(LabNode {
            id,
            url: format!("http://127.0.0.1:{http_port}"),
            log: self.dir.join(format!("n{id}.log")),
            env,
            child: None,
            paused: false,
            reported: false,
            view: None,
        })
    }
}

/// `port` if it is free on 127.0.0.1 now, else one that is.
fn free_or_any(port: Option<u16>) -> u16 {
    port.filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap_or_else(crate::mysqld::free_port)
}

/// Something the timeline shows: a fault the lab caused, or a change the
/// nodes reported (a new leader, a new term, a membership change).
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
    template: NodeTemplate,
    pub nodes: Mutex<Vec<LabNode>>,
    links: relay::Links,
    relays: Mutex<BTreeMap<u64, relay::Relay>>,
    events: Mutex<VecDeque<LabEvent>>,
    /// (leader, term) last seen, to notice elections.
    leadership: Mutex<(Option<u64>, u64)>,
    /// Member id → `voter` / `learner`, as the leader last reported it.
    membership: Mutex<Option<BTreeMap<u64, String>>>,
    /// Held while a node is added or removed: one change at a time.
    changing: Mutex<()>,
}

const EVENTS_KEPT: usize = 200;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node's `/api/cluster`, if it answers in time.
fn fetch_view(url: &str, token: &str) -> Option<Value> {
    ureq::get(&format!("{url}/api/cluster"))
        .set("Authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_millis(800))
        .call()
        .ok()?
        .into_json::<Value>()
        .ok()
}

/// Among `views`: the leader the first view of the newest term names, that
/// term, and the view of the node that leads in it (with its membership).
fn newest_leader<'a>(
    views: impl IntoIterator<Item = &'a Value>,
) -> (Option<u64>, u64, Option<&'a Value>) {
    let mut newest: Option<(Option<u64>, u64, Option<&Value>)> = None;
    for v in views {
        let term = v["term"].as_u64().unwrap_or(0);
        match &mut newest {
            Some((_, t, _)) if term < *t => continue,
            Some((_, t, _)) if term == *t => {}
            _ => newest = Some((v["leader_id"].as_u64(), term, None)),
        }
        if v["role"] == "leader" {
            if let Some(n) = &mut newest {
                n.2 = Some(v);
            }
        }
    }
    newest.unwrap_or((None, 0, None))
}

impl Lab {
    /// The `Authorization` header the lab calls the nodes with.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.template().api_token)
    }

    pub fn new(exe: PathBuf, template: NodeTemplate) -> Lab {
        Lab {
            exe,
            template,
            nodes: Mutex::new(Vec::new()),
            links: relay::Links::default(),
            relays: Mutex::new(BTreeMap::new()),
            events: Mutex::new(VecDeque::new()),
            leadership: Mutex::new((None, 0)),
            membership: Mutex::new(None),
            changing: Mutex::new(()),
        }
    }

    pub fn nodes(&self) -> MutexGuard<'_, Vec<LabNode>> {
        lock(&self.nodes)
    }

    pub fn template(&self) -> &NodeTemplate {
        &self.template
    }

    /// Every directed link, in (from, to) order.
    pub fn links(&self) -> Vec<Arc<relay::Link>> {
        lock(&self.links).values().cloned().collect()
    }

    /// Starts the relay in front of node `id`'s Raft port and the links
    /// between it and every node that has one; returns the address the
    /// cluster is to know `id` by.
    pub fn add_relay(&self, id: u64, raft_addr: SocketAddr) -> Result<SocketAddr, String> {
        let mut relays = lock(&self.relays);
        {
            let mut links = lock(&self.links);
            for other in relays.keys().copied().filter(|o| *o != id) {
                for (from, to) in [(id, other), (other, id)] {
                    links
                        .entry((from, to))
                        .or_insert_with(|| Arc::new(relay::Link::new(from, to)));
                }
            }
        }
        let relay = relay::Relay::start(
            id,
            self.template.relay_port(id).unwrap_or(0),
            raft_addr,
            self.links.clone(),
        )
        .map_err(|e| format!("starting the relay of node {id}: {e}"))?;
        let addr = relay.addr;
        relays.insert(id, relay);
        Ok(addr)
    }

    /// Stops node `id`'s relay and drops its links (closing what they carry).
    fn drop_relay(&self, id: u64) {
        if let Some(relay) = lock(&self.relays).remove(&id) {
            relay.stop();
        }
        lock(&self.links).retain(|(from, to), link| {
            let keep = *from != id && *to != id;
            if !keep {
                link.set_cut(true);
            }
            keep
        });
    }

    pub fn record(&self, kind: &'static str, text: String) {
        let mut events = lock(&self.events);
        events.push_back(LabEvent {
            at: now_ms(),
            kind,
            text,
        });
        while events.len() > EVENTS_KEPT {
            events.pop_front();
        }
    }

    /// Asks every running node for its view; notes new leaders, terms and
    /// membership changes.
    pub fn poll_nodes(&self) {
        let targets: Vec<(u64, String, bool)> = {
            let mut nodes = self.nodes();
            nodes
                .iter_mut()
                .map(|n| (n.id, n.url.clone(), n.state() == "running"))
                .collect()
        };
        let token = self.template().api_token.as_str();
        let views: Vec<(u64, Option<Value>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(id, url, running)| {
                    scope.spawn(move || (*id, running.then(|| fetch_view(url, token)).flatten()))
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let (leader, term, leader_view) =
            newest_leader(views.iter().filter_map(|(_, v)| v.as_ref()));
        let any = views.iter().any(|(_, v)| v.is_some());
        let members: Option<BTreeMap<u64, String>> = leader_view.map(|v| {
            v["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| Some((m["id"].as_u64()?, m["role"].as_str()?.to_string())))
                .collect()
        });
        {
            let mut nodes = self.nodes();
            for (id, view) in &views {
                if let Some(node) = nodes.iter_mut().find(|n| n.id == *id) {
                    node.view = view.clone();
                }
            }
        }
        if any {
            let mut seen = lock(&self.leadership);
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
        if let Some(now) = members {
            let mut known = lock(&self.membership);
            let changes = known
                .as_ref()
                .map(|before| membership_changes(before, &now));
            *known = Some(now);
            drop(known);
            for text in changes.into_iter().flatten() {
                self.record("raft", text);
            }
        }
    }

    /// Node `id`'s role in the membership (`voter`, `learner`), as the
    /// leader last reported it; `None` if it is not (or not yet) a member.
    fn member_role(&self, id: u64) -> Option<String> {
        lock(&self.membership).as_ref()?.get(&id).cloned()
    }

    /// The membership as the lab sees it now, to decide a change on
    /// (`None` until a leader has reported it).
    pub fn health(&self) -> Option<Health> {
        let membership = lock(&self.membership).clone()?;
        let links = self.links();
        let cut_off = |id: u64| {
            let mine: Vec<_> = links
                .iter()
                .filter(|l| l.from == id || l.to == id)
                .collect();
            !mine.is_empty() && mine.iter().all(|l| l.is_cut())
        };
        let mut health = Health {
            voters: membership
                .iter()
                .filter(|(_, role)| role.as_str() == "voter")
                .map(|(id, _)| *id)
                .collect(),
            ..Health::default()
        };
        for n in self.nodes().iter_mut() {
            if n.state() == "running" && n.view.is_some() && !cut_off(n.id) {
                health.up.insert(n.id);
            }
            if !health.voters.contains(&n.id) {
                health.joining.insert(n.id);
            }
        }
        Some(health)
    }

    /// What `GET /lab/state` answers.
    pub fn state(&self) -> Value {
        let membership = lock(&self.membership).clone();
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
                    "member": membership.as_ref().and_then(|m| m.get(&n.id)),
                })
            })
            .collect();
        let links: Vec<Value> = self
            .links()
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
        let events: Vec<LabEvent> = lock(&self.events).iter().cloned().collect();
        json!({ "nodes": nodes, "links": links, "events": events })
    }
}

/// The timeline's lines for a membership that went from `before` to `now`.
fn membership_changes(before: &BTreeMap<u64, String>, now: &BTreeMap<u64, String>) -> Vec<String> {
    let mut lines = Vec::new();
    for (id, role) in now {
        match before.get(id) {
            None => lines.push(format!("node {id} joined the membership as a {role}")),
            Some(old) if old != role => lines.push(format!("node {id} is now a {role}")),
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !now.contains_key(id)) {
        lines.push(format!("node {id} left the membership"));
    }
    lines
}

/// What a membership change from the lab is decided on: the voters (as
/// the leader last reported them), the voters that are up (running, heard
/// from at the last poll, not cut off from every peer) and the lab's nodes
/// that are not voters yet (added, still joining or a learner).
#[derive(Debug, Default)]
pub struct Health {
    pub voters: BTreeSet<u64>,
    pub up: BTreeSet<u64>,
    pub joining: BTreeSet<u64>,
}

impl Health {
    fn majority_up(voters: &BTreeSet<u64>, up: &BTreeSet<u64>) -> bool {
        voters.intersection(up).count() * 2 > voters.len()
    }

    /// Why adding a node now is refused, if it is: one change at a time
    /// (a node the lab added is not a voter yet), and the cluster must be
    /// able to commit the new learner and its promotion.
    pub fn refuse_add(&self) -> Option<String> {
        if let Some(id) = self.joining.iter().next() {
            return Some(format!(
                "node {id} is not a voter yet (still joining): one membership change at a time; wait for it, or remove it"
            ));
        }
        if !Self::majority_up(&self.voters, &self.up) {
            return Some(format!(
                "only {} of the {} voters are up: without a majority the cluster cannot admit a new node; restart, resume or heal first",
                self.voters.intersection(&self.up).count(),
                self.voters.len()
            ));
        }
        None
    }

    /// Why removing node `id` now is refused, if it is: one change at a
    /// time, never the last voter, and never a change the cluster could
    /// not commit (no majority up now) or that would leave it without one
    /// (the voters that stay must have a majority up).
    pub fn refuse_remove(&self, id: u64) -> Option<String> {
        if let Some(other) = self.joining.iter().find(|j| **j != id) {
            return Some(format!(
                "node {other} is not a voter yet (still joining): one membership change at a time; wait for it, or remove it first"
            ));
        }
        let up_now = self.voters.intersection(&self.up).count();
        if !Self::majority_up(&self.voters, &self.up) {
            return Some(format!(
                "only {up_now} of the {} voters are up: without a majority the cluster cannot commit the removal; restart, resume or heal first",
                self.voters.len()
            ));
        }
        if !self.voters.contains(&id) {
            return None;
        }
        if self.voters.len() == 1 {
            return Some(format!("node {id} is the cluster's last voter"));
        }
        let mut after = self.voters.clone();
        after.remove(&id);
        if !Self::majority_up(&after, &self.up) {
            return Some(format!(
                "without node {id}, only {} of the {} voters left would be up, not a majority: the cluster could commit nothing; restart, resume or heal another node first",
                after.intersection(&self.up).count(),
                after.len()
            ));
        }
        None
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
    pub fn act(&self, id: u64, action: &str) -> Result<(), Refusal> {
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

    fn one_change_at_a_time(&self) -> Result<MutexGuard<'_, ()>, Refusal> {
        match self.changing.try_lock() {
            Ok(guard) => Ok(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Err((
                StatusCode::CONFLICT,
                "a node is being added or removed: one at a time".into(),
            )),
        }
    }

    /// `POST /lab/nodes`: starts a new node behind a relay of its own and
    /// lets it join the cluster (as a learner, then a voter once caught
    /// up: the node does that itself). Answers once the process runs.
    pub fn add_node(&self) -> Result<Value, Refusal> {
        let _one = self.one_change_at_a_time()?;
        let conflict = |m: String| (StatusCode::CONFLICT, m);
        let health = self.health().ok_or_else(|| {
            conflict("no leader has reported the membership yet: wait for one".into())
        })?;
        if let Some(why) = health.refuse_add() {
            return Err(conflict(why));
        }
        let (id, through) = {
            let mut nodes = self.nodes();
            if nodes.len() >= MAX_NODES {
                return Err(conflict(format!(
                    "the lab runs at most {MAX_NODES} nodes; remove one first"
                )));
            }
            // An id no node has had: not a member's, not one whose data
            // directory a run of this demo left behind.
            let members = lock(&self.membership).clone().unwrap_or_default();
            let mut id = nodes
                .iter()
                .map(|n| n.id)
                .chain(members.keys().copied())
                .max()
                .unwrap_or(0)
                + 1;
            while self.template.dir.join(format!("n{id}")).exists() {
                id += 1;
            }
            // Ask the running nodes to admit it, the leader first.
            let mut through: Vec<(bool, u64, String)> = nodes
                .iter_mut()
                .filter_map(|n| (n.state() == "running" && n.view.is_some()).then_some(&*n))
                .map(|n| {
                    let leads = n.view.as_ref().is_some_and(|v| v["role"] == "leader");
                    (!leads, n.id, n.url.clone())
                })
                .collect();
            through.sort();
            if through.is_empty() {
                return Err(conflict(
                    "no running node answers: a new node has no one to join through".into(),
                ));
            }
            (id, through)
        };
        let http_port = free_or_any(self.template.http_port(id));
        let raft_port = free_or_any(self.template.raft_port(id));
        let raft_addr = SocketAddr::from(([127, 0, 0, 1], raft_port));
        let internal = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
        let relay = self.add_relay(id, raft_addr).map_err(internal)?;
        let join: Vec<&str> = through.iter().map(|(_, _, url)| url.as_str()).collect();
        let started = self
            .template
            .node(
                id,
                http_port,
                raft_addr,
                vec![
                    ("TASKRAFT_JOIN".into(), join.join(",")),
                    ("TASKRAFT_RAFT_ADVERTISE_ADDR".into(), relay.to_string()),
                ],
            )
            .and_then(|mut node| node.spawn(&self.exe).map(|()| node));
        let node = match started {
            Ok(node) => node,
            Err(e) => {
                self.drop_relay(id);
                return Err(internal(e));
            }
        };
        let answer = json!({ "id": id, "url": node.url, "pid": node.pid() });
        println!("\n  node {id}  board  {}/", node.url);
        println!("  node {id} pid {}", node.pid().unwrap_or(0));
        use std::io::Write;
        let _ = std::io::stdout().flush();
        self.nodes().push(node);
        self.record(
            "fault",
            format!(
                "node {id} added: started, joining through node {} as a learner (a voter once it has caught up)",
                through[0].1
            ),
        );
        Ok(answer)
    }

    /// `DELETE /lab/nodes/{id}`: removes node `id` from the cluster (after
    /// handing leadership away, if it leads), then stops it and drops its
    /// relay and links. Answers once the cluster has applied the removal.
    pub fn remove_node(&self, id: u64) -> Result<Value, Refusal> {
        let _one = self.one_change_at_a_time()?;
        let conflict = |m: String| (StatusCode::CONFLICT, m);
        let (own_url, others) = {
            let nodes = self.nodes();
            if !nodes.iter().any(|n| n.id == id) {
                return Err((StatusCode::NOT_FOUND, format!("no node {id} in this lab")));
            }
            if nodes.len() <= 1 {
                return Err(conflict("the lab keeps at least one node".into()));
            }
            drop(nodes);
            let health = self.health().ok_or_else(|| {
                conflict("no leader has reported the membership yet: wait for one".into())
            })?;
            if let Some(why) = health.refuse_remove(id) {
                return Err(conflict(why));
            }
            let mut nodes = self.nodes();
            let own = nodes.iter().find(|n| n.id == id).map(|n| n.url.clone());
            let others: Vec<(u64, String)> = nodes
                .iter_mut()
                .filter_map(|n| (n.id != id && n.state() == "running").then_some(&*n))
                .map(|n| (n.id, n.url.clone()))
                .collect();
            (own.unwrap_or_default(), others)
        };
        if others.is_empty() {
            return Err(conflict(format!(
                "no other node runs: none can take node {id} out of the cluster"
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::from("no node answered");
        let mut handed = false;
        'removing: loop {
            let views: Vec<Value> = std::iter::once(own_url.as_str())
                .chain(others.iter().map(|(_, url)| url.as_str()))
                .filter_map(|url| fetch_view(url, &self.template().api_token))
                .collect();
            let (leader, _, _) = newest_leader(&views);
            if leader == Some(id) {
                // A leader cannot remove itself: hand over to a voter first.
                let to = others
                    .iter()
                    .map(|(o, _)| *o)
                    .find(|o| self.member_role(*o).as_deref() == Some("voter"))
                    .or_else(|| others.first().map(|(o, _)| *o));
                match to {
                    Some(to) => {
                        if !handed {
                            handed = true;
                            self.record(
                                "fault",
                                format!("node {id} leads: leadership handed to node {to} before it is removed"),
                            );
                        }
                        let _ = ureq::post(&format!("{own_url}/api/cluster/leader"))
                            .set("Authorization", &self.bearer())
                            .timeout(Duration::from_secs(3))
                            .send_json(json!({ "to": to }));
                    }
                    None => last = format!("node {id} leads and no other voter runs"),
                }
            } else {
                // Any other node takes it (the leader first); a follower
                // forwards it to the leader, which answers once applied.
                let mut ordered = others.clone();
                ordered.sort_by_key(|(o, _)| Some(*o) != leader);
                for (_, url) in &ordered {
                    match ureq::delete(&format!("{url}/api/cluster/members/{id}"))
                        .set("Authorization", &self.bearer())
                        .timeout(Duration::from_secs(10))
                        .call()
                    {
                        // Removed; or not a member (a node that never
                        // finished joining): either way it is out.
                        Ok(_) | Err(ureq::Error::Status(404, _)) => break 'removing,
                        Err(ureq::Error::Status(status, r)) => {
                            let body = r.into_string().unwrap_or_default();
                            if status == 409 && body.contains("last_voter") {
                                return Err(conflict(format!(
                                    "node {id} is the cluster's last voter"
                                )));
                            }
                            last = format!("{status} {body}");
                        }
                        Err(e) => last = e.to_string(),
                    }
                }
            }
            if Instant::now() > deadline {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("node {id} could not be removed within 30 s: {last}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let node = {
            let mut nodes = self.nodes();
            let at = nodes.iter().position(|n| n.id == id);
            at.map(|at| nodes.remove(at))
        };
        if let Some(mut node) = node {
            node.stop(Duration::from_secs(10));
        }
        self.drop_relay(id);
        self.record(
            "fault",
            format!("node {id} removed from the cluster and stopped"),
        );
        Ok(json!({ "removed": id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(voters: &[u64], up: &[u64], joining: &[u64]) -> Health {
        Health {
            voters: voters.iter().copied().collect(),
            up: up.iter().copied().collect(),
            joining: joining.iter().copied().collect(),
        }
    }

    #[test]
    fn a_node_is_added_to_a_cluster_with_a_majority_up_and_nothing_joining() {
        assert_eq!(health(&[1, 2, 3], &[1, 2, 3], &[]).refuse_add(), None);
        assert_eq!(health(&[1, 2, 3], &[1, 2], &[]).refuse_add(), None);
        let no_majority = health(&[1, 2, 3], &[1], &[]).refuse_add().unwrap();
        assert!(
            no_majority.contains("only 1 of the 3 voters are up"),
            "{no_majority}"
        );
        let joining = health(&[1, 2, 3], &[1, 2, 3, 4], &[4])
            .refuse_add()
            .unwrap();
        assert!(joining.contains("node 4 is not a voter yet"), "{joining}");
        // Four voters, two up: not a majority.
        assert!(health(&[1, 2, 3, 4], &[1, 2], &[]).refuse_add().is_some());
    }

    #[test]
    fn a_removal_never_leaves_the_cluster_without_a_majority_up() {
        // Healthy: any voter may go, down to the last one.
        assert_eq!(
            health(&[1, 2, 3, 4], &[1, 2, 3, 4], &[]).refuse_remove(4),
            None
        );
        assert_eq!(health(&[1, 2, 3], &[1, 2, 3], &[]).refuse_remove(1), None);
        assert_eq!(health(&[1, 2], &[1, 2], &[]).refuse_remove(2), None);
        let last = health(&[1], &[1], &[]).refuse_remove(1).unwrap();
        assert!(last.contains("last voter"), "{last}");
        // 3 voters, node 3 down: removing it leaves 2 of 2 up, fine;
        // removing a running one leaves 1 of 2 up, which commits nothing.
        assert_eq!(health(&[1, 2, 3], &[1, 2], &[]).refuse_remove(3), None);
        let breaks = health(&[1, 2, 3], &[1, 2], &[]).refuse_remove(2).unwrap();
        assert!(
            breaks.contains("only 1 of the 2 voters left would be up"),
            "{breaks}"
        );
        // 4 voters, one down: removing a running one leaves 2 of 3 up.
        assert_eq!(
            health(&[1, 2, 3, 4], &[1, 2, 3], &[]).refuse_remove(1),
            None
        );
        // No majority now: nothing can be committed, not even a removal.
        let none = health(&[1, 2, 3], &[1], &[]).refuse_remove(3).unwrap();
        assert!(none.contains("cannot commit the removal"), "{none}");
    }

    #[test]
    fn one_change_at_a_time_but_a_joining_node_may_be_removed() {
        let h = health(&[1, 2, 3], &[1, 2, 3, 4], &[4]);
        assert_eq!(h.refuse_remove(4), None, "the way out of a join");
        let busy = h.refuse_remove(3).unwrap();
        assert!(busy.contains("node 4 is not a voter yet"), "{busy}");
        // A learner is not a voter: removing it needs a majority now only.
        assert_eq!(health(&[1, 2, 3], &[1, 2], &[4]).refuse_remove(4), None);
        assert!(health(&[1, 2, 3], &[1], &[4]).refuse_remove(4).is_some());
    }
}
