//! The client workers: what they ask, of which node, how often.
//!
//! - **Writers** (6 by default) create tasks with a client-chosen id, a
//!   unique title (the set element) and an `Idempotency-Key`; update the
//!   hot tasks with `If-Match` after a linearizable read of them
//!   (versioned registers); now and then delete or retitle a task of
//!   their own. Their bodies follow the payload mix ([`payload`]): mostly
//!   small, some at the validation limits, some backslash-, quote- and
//!   emoji-heavy.
//! - **Readers** (3) read hot tasks and recently created ones,
//!   linearizably — or, in the stale-read control, with
//!   `consistency=local` from the node the nemesis isolated.
//! - **Columns**: a mover shifts N tasks between columns, a lister lists
//!   them (one page, filtered by the generation's label) — every list must
//!   show N cards. Each *generation* of N tasks has its own history; once
//!   a generation's tasks reach the per-task cap, the mover makes a new one.
//!   A reorderer moves the board's columns themselves (their position,
//!   now and then their WIP limit, half of them under If-Match): column
//!   changes are log entries and events too, so they go through the same
//!   faults, and the convergence and `rebuild --check` checks cover the
//!   board's columns they leave.
//!
//! Every task's operations are capped (`ops_per_task`, 200 as in etcd's
//! Jepsen suite): a hot task that reaches it is replaced by a new one.
//! Every choice comes from a per-worker [`Rng`] derived from the seed.
//!
//! The duplicate control runs creates *without* a client id (the server
//! picks it) and sends some of them twice under the same key, as a client
//! whose first answer was lost would: with deduplication on, the second
//! answer names the same task; with it off, a second task appears.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::client::{agent, is_unknown, read_agent, task_view, Process, Recorder};
use super::os::{self, now_ns};
use super::payload::{self, Size};
use super::rng::Rng;
use crate::history::{Failure, Op, Outcome, Status, Value};

/// How the clients behave.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Writer threads.
    pub writers: usize,
    /// Reader threads.
    pub readers: usize,
    /// Hot tasks (registers) updated concurrently.
    pub hot_tasks: usize,
    /// Tasks of one columns generation.
    pub column_tasks: usize,
    /// Operations per task before it is replaced.
    pub ops_per_task: u64,
    /// Mean pause between one worker's operations, ms.
    pub think_ms: u64,
    /// How long a write is retried before it is given up as unknown.
    pub write_deadline: Duration,
    /// Creates leave the id to the server and some are sent twice
    /// (the duplicate control).
    pub server_ids_and_forced_retries: bool,
}

impl Default for WorkloadConfig {
    fn default() -> WorkloadConfig {
        WorkloadConfig {
            writers: 6,
            readers: 3,
            hot_tasks: 4,
            column_tasks: 6,
            ops_per_task: 200,
            think_ms: 60,
            write_deadline: Duration::from_secs(10),
            server_ids_and_forced_retries: false,
        }
    }
}

/// A hot task: a versioned register several writers update.
struct Hot {
    id: String,
    ops: u64,
}

/// One generation of the columns workload.
pub struct Generation {
    /// Its label (the list filter).
    pub label: String,
    /// Its N task ids.
    pub task_ids: Vec<String>,
    /// Its own history: the creates, moves and lists.
    pub recorder: Recorder,
    /// Moves and lists so far.
    ops: AtomicU64,
}

/// What the workers share.
pub struct Workload {
    /// The nodes' URLs.
    pub urls: Vec<String>,
    /// The run's seed.
    pub seed: u64,
    /// The behaviour.
    pub config: WorkloadConfig,
    /// The main history: creates, registers, reads, deletes.
    pub main: Recorder,
    /// Every columns generation, oldest first.
    pub generations: Mutex<Vec<Arc<Generation>>>,
    /// Set when the workers must finish.
    pub stop: AtomicBool,
    /// The stale-read control: readers read locally from this node.
    pub local_reads_from: Mutex<Option<usize>>,
    hot: Mutex<Vec<Hot>>,
    recent: Mutex<VecDeque<String>>,
    rotating: AtomicBool,
    /// Hot tasks replaced so far: each replacement draws from its own
    /// stream, so no two draw the same id (and key).
    rotations: AtomicU64,
    /// The reorderer's changes answered 200.
    pub column_changes: AtomicU64,
    /// The highest version a 200 answered for each of [`DEFAULT_COLUMNS`]:
    /// a column's version only grows, so the final one is at least this,
    /// or an acknowledged change was lost.
    pub column_acked: [AtomicU64; 3],
}

/// The default board's three columns, which the reorderer moves.
pub const DEFAULT_COLUMNS: [&str; 3] = [
    "00000000-0000-0000-0000-000000000010",
    "00000000-0000-0000-0000-000000000011",
    "00000000-0000-0000-0000-000000000012",
];

impl Workload {
    /// A workload over `urls`; call [`Workload::setup`] before the workers.
    pub fn new(urls: Vec<String>, seed: u64, config: WorkloadConfig) -> Workload {
        Workload {
            urls,
            seed,
            config,
            main: Recorder::new(),
            generations: Mutex::new(Vec::new()),
            column_changes: AtomicU64::new(0),
            column_acked: Default::default(),
            stop: AtomicBool::new(false),
            local_reads_from: Mutex::new(None),
            hot: Mutex::new(Vec::new()),
            recent: Mutex::new(VecDeque::new()),
            rotating: AtomicBool::new(false),
            rotations: AtomicU64::new(0),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || os::interrupted()
    }

    /// Creates the hot tasks and the first columns generation.
    pub fn setup(&self) -> Result<(), String> {
        let mut rng = Rng::derive(self.seed, 900);
        let mut process = self.main.process();
        let agent = agent();
        for k in 0..self.config.hot_tasks {
            let id = self
                .create_hot(&mut rng, &mut process, &agent, k)
                .ok_or("a hot task could not be created")?;
            lock(&self.hot).push(Hot { id, ops: 1 });
        }
        self.new_generation(&mut rng)
    }

    fn create_hot(
        &self,
        rng: &mut Rng,
        process: &mut Process,
        agent: &ureq::Agent,
        k: usize,
    ) -> Option<String> {
        let id = rng.uuid();
        let title = format!("hot-{k}-{}", &id[..8]);
        let key = format!("c-{id}");
        let body = json!({ "id": id, "title": title, "labels": ["hot"] });
        let op = Op::Create {
            id: id.clone(),
            title,
            status: Status::Todo,
            key: Some(key.clone()),
        };
        let first = rng.below(self.urls.len() as u64) as usize;
        let written = self.main.write(
            process,
            agent,
            &self.urls,
            first,
            op,
            "POST",
            "/api/tasks",
            &[("Idempotency-Key", key)],
            Some(&body),
            Duration::from_secs(30),
            &|| self.stopped(),
        );
        matches!(written.outcome, Outcome::Ok(_)).then_some(id)
    }

    fn new_generation(&self, rng: &mut Rng) -> Result<(), String> {
        let number = lock(&self.generations).len();
        let label = format!("cols-{}-{number}", self.seed % 100_000);
        let recorder = Recorder::new();
        let mut process = recorder.process();
        let agent = agent();
        let mut task_ids = Vec::new();
        for n in 0..self.config.column_tasks {
            let id = rng.uuid();
            let title = format!("card-{number}-{n}");
            let status = Status::ALL[n % 3];
            let key = format!("c-{id}");
            let body =
                json!({ "id": id, "title": title, "status": status.as_str(), "labels": [label] });
            let op = Op::Create {
                id: id.clone(),
                title,
                status,
                key: Some(key.clone()),
            };
            let first = rng.below(self.urls.len() as u64) as usize;
            let written = recorder.write(
                &mut process,
                &agent,
                &self.urls,
                first,
                op,
                "POST",
                "/api/tasks",
                &[("Idempotency-Key", key)],
                Some(&body),
                Duration::from_secs(60),
                &|| self.stopped(),
            );
            if !matches!(written.outcome, Outcome::Ok(_)) {
                return Err(format!("column task {n} of {label}: {:?}", written.outcome));
            }
            task_ids.push(id);
        }
        lock(&self.generations).push(Arc::new(Generation {
            label,
            task_ids,
            recorder,
            ops: AtomicU64::new(0),
        }));
        Ok(())
    }

    fn generation(&self) -> Option<Arc<Generation>> {
        lock(&self.generations).last().cloned()
    }

    fn think(&self, rng: &mut Rng) {
        let ms = rng.between(self.config.think_ms / 2, self.config.think_ms * 3 / 2);
        os::sleep_unless(Duration::from_millis(ms), &|| self.stopped());
    }

    /// Writer `c`: creates, register updates, deletes, until stopped.
    pub fn writer(&self, c: usize) {
        let mut rng = Rng::derive(self.seed, 100 + c as u64);
        let mut process = self.main.process();
        let agent = agent();
        let mut own: Vec<String> = Vec::new();
        let mut n = 0u64;
        while !self.stopped() {
            n += 1;
            let first = rng.below(self.urls.len() as u64) as usize;
            let roll = rng.below(100);
            if self.config.server_ids_and_forced_retries {
                self.create_server_id(&mut rng, &mut process, &agent, c, n, first);
            } else if roll < 45 || own.is_empty() && roll >= 85 {
                let id = rng.uuid();
                let size = Size::draw(&mut rng);
                let title = payload::title(&mut rng, size, &format!("w{c}-{n}-{}", &id[..8]));
                let key = format!("c-{id}");
                let status = Status::ALL[rng.below(3) as usize];
                let mut body = payload::fields(&mut rng, size, false);
                body.insert("id".into(), json!(id));
                body.insert("title".into(), json!(title));
                body.insert("status".into(), json!(status.as_str()));
                let body = serde_json::Value::Object(body);
                let op = Op::Create {
                    id: id.clone(),
                    title,
                    status,
                    key: Some(key.clone()),
                };
                let written = self.main.write(
                    &mut process,
                    &agent,
                    &self.urls,
                    first,
                    op,
                    "POST",
                    "/api/tasks",
                    &[("Idempotency-Key", key)],
                    Some(&body),
                    self.config.write_deadline,
                    &|| self.stopped(),
                );
                if matches!(written.outcome, Outcome::Ok(_)) {
                    own.push(id.clone());
                    let mut recent = lock(&self.recent);
                    recent.push_back(id);
                    if recent.len() > 200 {
                        recent.pop_front();
                    }
                }
            } else if roll < 85 {
                self.register_update(&mut rng, &mut process, &agent, c, n, first);
            } else if roll < 93 {
                let id = own.swap_remove(rng.below(own.len() as u64) as usize);
                let key = format!("d-{id}");
                let op = Op::Delete {
                    id: id.clone(),
                    if_match: None,
                };
                self.main.write(
                    &mut process,
                    &agent,
                    &self.urls,
                    first,
                    op,
                    "DELETE",
                    &format!("/api/tasks/{id}"),
                    &[("Idempotency-Key", key)],
                    None,
                    self.config.write_deadline,
                    &|| self.stopped(),
                );
            } else {
                let id = own[rng.below(own.len() as u64) as usize].clone();
                let size = Size::draw(&mut rng);
                let title = payload::title(&mut rng, size, &format!("w{c}-{n}-renamed"));
                let mut body = payload::fields(&mut rng, size, true);
                body.insert("title".into(), json!(title));
                let key = format!("u-{c}-{n}-{}", rng.next_u64());
                let op = Op::Update {
                    id: id.clone(),
                    if_match: None,
                    title: Some(title.clone()),
                    status: None,
                };
                self.main.write(
                    &mut process,
                    &agent,
                    &self.urls,
                    first,
                    op,
                    "PATCH",
                    &format!("/api/tasks/{id}"),
                    &[("Idempotency-Key", key)],
                    Some(&serde_json::Value::Object(body)),
                    self.config.write_deadline,
                    &|| self.stopped(),
                );
            }
            self.think(&mut rng);
        }
    }

    /// The duplicate control's create: the server picks the id, so only
    /// the key keeps a resent request from making a second task.
    fn create_server_id(
        &self,
        rng: &mut Rng,
        process: &mut Process,
        agent: &ureq::Agent,
        c: usize,
        n: u64,
        first: usize,
    ) {
        let title = format!("w{c}-{n}-{}", rng.next_u64() % 1_000_000);
        let key = format!("c-{c}-{n}-{}", rng.next_u64());
        let body = json!({ "title": title });
        let mut sends = if rng.chance(50) { 2 } else { 1 };
        let mut node = first;
        while sends > 0 && !self.stopped() {
            sends -= 1;
            let invoked = now_ns();
            let answer = super::client::call(
                agent,
                "POST",
                &format!("{}/api/tasks", self.urls[node % self.urls.len()]),
                &[("Idempotency-Key", key.clone())],
                Some(&body),
            );
            // The id is known only from the answer; an unknown create gets
            // an id no task has, so only its title can match it.
            let id = answer.body["id"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| rng.uuid());
            let op = Op::Create {
                id,
                title: title.clone(),
                status: Status::Todo,
                key: Some(key.clone()),
            };
            let outcome = super::client::outcome(&op, &answer);
            let op_id = self.main.invoke_at(process, op, invoked);
            self.main.complete(process, op_id, outcome);
            if is_unknown(&answer) {
                sends = sends.max(1);
                std::thread::sleep(Duration::from_millis(200));
            }
            node += 1;
        }
    }

    /// Reads a hot task, then updates it if it is still at that version.
    fn register_update(
        &self,
        rng: &mut Rng,
        process: &mut Process,
        agent: &ureq::Agent,
        c: usize,
        n: u64,
        first: usize,
    ) {
        let Some((slot, id)) = self.pick_hot(rng) else {
            return;
        };
        let url = format!("{}/api/tasks/{id}", self.urls[first]);
        let (read, _) = self
            .main
            .read(process, agent, &url, Op::Read { id: id.clone() });
        self.count_hot(slot, &id, 1);
        let Outcome::Ok(Value::Task(view)) = read else {
            return;
        };
        let size = Size::draw(rng);
        let title = payload::title(rng, size, &format!("h{c}-{n}"));
        let status = Status::ALL[rng.below(3) as usize];
        let key = format!("u-{c}-{n}-{}", rng.next_u64());
        let op = Op::Update {
            id: id.clone(),
            if_match: Some(view.version),
            title: Some(title.clone()),
            status: Some(status),
        };
        let mut body = payload::fields(rng, size, true);
        body.insert("title".into(), json!(title));
        body.insert("status".into(), json!(status.as_str()));
        let body = serde_json::Value::Object(body);
        let next = (first + 1) % self.urls.len();
        self.main.write(
            process,
            agent,
            &self.urls,
            next,
            op,
            "PATCH",
            &format!("/api/tasks/{id}"),
            &[
                ("Idempotency-Key", key),
                ("If-Match", format!("\"{}\"", view.version)),
            ],
            Some(&body),
            self.config.write_deadline,
            &|| self.stopped(),
        );
        self.count_hot(slot, &id, 1);
    }

    fn pick_hot(&self, rng: &mut Rng) -> Option<(usize, String)> {
        let hot = lock(&self.hot);
        let slot = rng.below(hot.len() as u64) as usize;
        hot.get(slot).map(|h| (slot, h.id.clone()))
    }

    /// Counts operations on a hot task; the one that reaches the cap
    /// replaces it with a new task.
    fn count_hot(&self, slot: usize, id: &str, n: u64) {
        let full = {
            let mut hot = lock(&self.hot);
            match hot.get_mut(slot).filter(|h| h.id == id) {
                Some(h) => {
                    h.ops += n;
                    h.ops >= self.config.ops_per_task
                }
                None => false,
            }
        };
        if full && !self.rotating.swap(true, Ordering::SeqCst) {
            let rotation = self.rotations.fetch_add(1, Ordering::SeqCst);
            let mut rng = Rng::derive(self.seed, 1_000_000 + rotation);
            let mut process = self.main.process();
            if let Some(new) = self.create_hot(&mut rng, &mut process, &agent(), slot) {
                if let Some(h) = lock(&self.hot).get_mut(slot) {
                    *h = Hot { id: new, ops: 1 };
                }
            }
            self.rotating.store(false, Ordering::SeqCst);
        }
    }

    /// Reader `r`: single-task reads, until stopped.
    pub fn reader(&self, r: usize) {
        let mut rng = Rng::derive(self.seed, 200 + r as u64);
        let mut process = self.main.process();
        let agent = read_agent();
        while !self.stopped() {
            let local = *lock(&self.local_reads_from);
            let node = local.map_or(rng.below(self.urls.len() as u64) as usize, |n| n - 1);
            let target = if rng.chance(70) || lock(&self.recent).is_empty() {
                self.pick_hot(&mut rng).map(|(slot, id)| (Some(slot), id))
            } else {
                let recent = lock(&self.recent);
                recent
                    .get(rng.below(recent.len() as u64) as usize)
                    .map(|id| (None, id.clone()))
            };
            if let Some((slot, id)) = target {
                let query = if local.is_some() {
                    "?consistency=local"
                } else {
                    ""
                };
                let url = format!("{}/api/tasks/{id}{query}", self.urls[node]);
                self.main
                    .read(&mut process, &agent, &url, Op::Read { id: id.clone() });
                if let Some(slot) = slot {
                    self.count_hot(slot, &id, 1);
                }
            }
            self.think(&mut rng);
        }
    }

    /// The columns mover: one move at a time, unconditional, keyed.
    pub fn mover(&self) {
        let mut rng = Rng::derive(self.seed, 300);
        let agent = agent();
        let mut processes: Vec<(String, Process)> = Vec::new();
        let mut n = 0u64;
        while !self.stopped() {
            let Some(generation) = self.generation() else {
                return;
            };
            if generation.ops.load(Ordering::SeqCst) / 2 >= self.config.ops_per_task {
                if self.new_generation(&mut rng).is_err() {
                    self.think(&mut rng);
                }
                continue;
            }
            n += 1;
            let slot = match processes.iter().position(|(l, _)| *l == generation.label) {
                Some(i) => i,
                None => {
                    processes.push((generation.label.clone(), generation.recorder.process()));
                    processes.len() - 1
                }
            };
            let process = &mut processes[slot].1;
            let id =
                generation.task_ids[rng.below(generation.task_ids.len() as u64) as usize].clone();
            let status = Status::ALL[rng.below(3) as usize];
            let key = format!("m-{n}-{}", rng.next_u64());
            let op = Op::Update {
                id: id.clone(),
                if_match: None,
                title: None,
                status: Some(status),
            };
            let first = rng.below(self.urls.len() as u64) as usize;
            generation.recorder.write(
                process,
                &agent,
                &self.urls,
                first,
                op,
                "PATCH",
                &format!("/api/tasks/{id}"),
                &[("Idempotency-Key", key)],
                Some(&json!({ "status": status.as_str() })),
                self.config.write_deadline,
                &|| self.stopped(),
            );
            generation.ops.fetch_add(1, Ordering::SeqCst);
            self.think(&mut rng);
        }
    }

    /// The column reorderer: moves one of the default board's three
    /// columns to a random place (and now and then sets or clears its WIP
    /// limit), keyed, on a random node. Its 200 answers are judged at the
    /// end (no acknowledged version is lost), the events they leave too. Half the changes of a column already
    /// answered name the version last seen in If-Match, so column
    /// conflicts are decided in the log under the same faults (a 412 is an
    /// answer like any other).
    pub fn reorderer(&self) {
        let mut rng = Rng::derive(self.seed, 500);
        let agent = agent();
        let mut n = 0u64;
        let mut seen: [Option<u64>; 3] = [None; 3];
        while !self.stopped() {
            n += 1;
            let which = rng.below(3) as usize;
            let column = DEFAULT_COLUMNS[which];
            let mut body = json!({ "position": 1 + rng.below(4096) });
            if rng.chance(20) {
                body["wip_limit"] = if rng.chance(50) {
                    json!(1 + rng.below(20))
                } else {
                    json!(null)
                };
            }
            let key = format!("r-{n}-{}", rng.next_u64());
            let node = rng.below(self.urls.len() as u64) as usize;
            let mut headers = vec![("Idempotency-Key", key)];
            if let Some(version) = seen[which].filter(|_| rng.chance(50)) {
                headers.push(("If-Match", format!("\"{version}\"")));
            }
            let answer = super::client::call(
                &agent,
                "PATCH",
                &format!("{}/api/columns/{column}", self.urls[node]),
                &headers,
                Some(&body),
            );
            if let (200, Some(version)) = (answer.status, answer.body["version"].as_u64()) {
                self.column_changes.fetch_add(1, Ordering::SeqCst);
                self.column_acked[which].fetch_max(version, Ordering::SeqCst);
            }
            seen[which] = answer.body["version"]
                .as_u64()
                .or_else(|| answer.body["error"]["current_version"].as_u64())
                .or(seen[which]);
            // Column changes are rarer than card moves.
            for _ in 0..5 {
                self.think(&mut rng);
            }
        }
    }

    /// The columns lister: one page, filtered by the generation's label.
    pub fn lister(&self) {
        let mut rng = Rng::derive(self.seed, 400);
        let agent = read_agent();
        let mut processes: Vec<(String, Process)> = Vec::new();
        while !self.stopped() {
            let Some(generation) = self.generation() else {
                return;
            };
            let slot = match processes.iter().position(|(l, _)| *l == generation.label) {
                Some(i) => i,
                None => {
                    processes.push((generation.label.clone(), generation.recorder.process()));
                    processes.len() - 1
                }
            };
            let node = rng.below(self.urls.len() as u64) as usize;
            let url = format!(
                "{}/api/tasks?label={}&limit=1000",
                self.urls[node], generation.label
            );
            generation
                .recorder
                .read(&mut processes[slot].1, &agent, &url, Op::List);
            generation.ops.fetch_add(1, Ordering::SeqCst);
            self.think(&mut rng);
        }
    }

    /// Ids of every task the columns workload made (to leave out of the set check).
    pub fn column_task_ids(&self) -> Vec<String> {
        lock(&self.generations)
            .iter()
            .flat_map(|g| g.task_ids.clone())
            .collect()
    }
}

/// The main history's 412 answers that named a version: how contended the
/// registers were (for the report).
pub fn mismatches(history: &crate::history::History) -> usize {
    history
        .ops()
        .iter()
        .filter(|op| {
            matches!(
                op.definite(),
                Some(Outcome::Fail(Failure::VersionMismatch { .. }))
            )
        })
        .count()
}

/// Whether a JSON task body is readable (used by the setup's checks).
pub fn readable(body: &serde_json::Value) -> bool {
    task_view(body).is_some()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
