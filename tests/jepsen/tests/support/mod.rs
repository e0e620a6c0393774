//! A simulated taskraft for self-tests: random clients run against a
//! sequential board with random overlapping timings, so every history it
//! records is linearizable by construction.
//!
//! Each operation takes effect at one instant strictly inside its window
//! (or, for an indeterminate one, possibly after the client gave up, or
//! never). The board's rules are written here again, imperatively, rather
//! than borrowed from the checker's model, so the two check each other.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;

use taskraft_jepsen::history::{
    Failure, History, ListedTask, Op, OpId, Outcome, ProcessId, Status, TaskView, Value,
};

/// SplitMix64: small, seeded, good enough to shuffle a test.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The shape of a simulated run.
#[derive(Clone, Copy, Debug)]
pub struct Sim {
    pub seed: u64,
    pub ops: usize,
    pub keys: usize,
    /// Clients running at once (the concurrency).
    pub clients: usize,
    /// Of writes, the percentage whose client times out (info).
    pub info_percent: u64,
    /// Of timed-out writes, the percentage that never take effect.
    pub never_percent: u64,
    /// Of operations, the percentage that are lists.
    pub list_percent: u64,
}

impl Default for Sim {
    fn default() -> Sim {
        Sim {
            seed: 1,
            ops: 100,
            keys: 3,
            clients: 5,
            info_percent: 5,
            never_percent: 50,
            list_percent: 3,
        }
    }
}

#[derive(Clone, Debug)]
enum Slot {
    Live(TaskView),
    Deleted,
}

/// A client's progress through its current operation.
enum Client {
    Idle,
    /// Invoked; `outcome` is set once it has taken effect.
    Running {
        id: OpId,
        op: Op,
        outcome: Option<Outcome>,
    },
}

/// The sequential board: what `op` answers now, applying its effect.
fn apply(board: &mut BTreeMap<String, Slot>, op: &Op) -> Outcome {
    match op {
        Op::Create {
            id, title, status, ..
        } => {
            if board.contains_key(id) {
                return Outcome::Fail(Failure::IdTaken);
            }
            let task = TaskView {
                version: 1,
                title: title.clone(),
                status: *status,
            };
            board.insert(id.clone(), Slot::Live(task.clone()));
            Outcome::Ok(Value::Task(task))
        }
        Op::Update {
            id,
            if_match,
            title,
            status,
        } => {
            let Some(Slot::Live(task)) = board.get_mut(id) else {
                return Outcome::Fail(Failure::NotFound);
            };
            if let Some(v) = if_match {
                if *v != task.version {
                    return Outcome::Fail(Failure::VersionMismatch {
                        current: task.clone(),
                    });
                }
            }
            let new_title = title.clone().unwrap_or_else(|| task.title.clone());
            let new_status = status.unwrap_or(task.status);
            if new_title != task.title || new_status != task.status {
                task.title = new_title;
                task.status = new_status;
                task.version += 1;
            }
            Outcome::Ok(Value::Task(task.clone()))
        }
        Op::Delete { id, if_match } => {
            let Some(Slot::Live(task)) = board.get(id) else {
                return Outcome::Fail(Failure::NotFound);
            };
            if let Some(v) = if_match {
                if *v != task.version {
                    return Outcome::Fail(Failure::VersionMismatch {
                        current: task.clone(),
                    });
                }
            }
            board.insert(id.clone(), Slot::Deleted);
            Outcome::Ok(Value::Deleted)
        }
        Op::Read { id } => match board.get(id) {
            Some(Slot::Live(task)) => Outcome::Ok(Value::Task(task.clone())),
            _ => Outcome::Fail(Failure::NotFound),
        },
        Op::List => {
            let tasks = board
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Live(t) => Some(ListedTask {
                        id: id.clone(),
                        version: t.version,
                        title: t.title.clone(),
                        status: t.status,
                    }),
                    Slot::Deleted => None,
                })
                .collect();
            Outcome::Ok(Value::Tasks { tasks })
        }
    }
}

fn is_write(op: &Op) -> bool {
    matches!(
        op,
        Op::Create { .. } | Op::Update { .. } | Op::Delete { .. }
    )
}

/// A random operation, biased towards ones that succeed.
fn random_op(rng: &mut Rng, sim: &Sim, board: &BTreeMap<String, Slot>, n: usize) -> Op {
    if rng.chance(sim.list_percent) {
        return Op::List;
    }
    let id = format!("task-{}", rng.below(sim.keys as u64));
    let current = match board.get(&id) {
        Some(Slot::Live(t)) => Some(t.version),
        _ => None,
    };
    // A guess at the version: mostly right, sometimes stale.
    let if_match = match (rng.below(3), current) {
        (0, _) => None,
        (1, Some(v)) => Some(v),
        (_, v) => Some(v.unwrap_or(1).saturating_sub(rng.below(2)).max(1)),
    };
    let roll = rng.below(100);
    if current.is_none() && roll < 60 {
        return Op::Create {
            id,
            title: format!("w{n}"),
            status: Status::Todo,
            key: None,
        };
    }
    match roll {
        0..=34 => Op::Read { id },
        35..=39 => Op::Create {
            id,
            title: format!("w{n}"),
            status: Status::Todo,
            key: None,
        },
        40..=41 => Op::Delete { id, if_match },
        42..=69 => Op::Update {
            id,
            if_match,
            title: Some(format!("w{n}")),
            status: None,
        },
        _ => Op::Update {
            id,
            if_match,
            title: None,
            status: Some(Status::ALL[rng.below(3) as usize]),
        },
    }
}

/// Runs `sim` and returns its history.
pub fn simulate(sim: &Sim) -> History {
    simulate_to_the_end(sim).0
}

/// Runs `sim` and returns its history and the board it left (what a final
/// list on any node must show).
pub fn simulate_to_the_end(sim: &Sim) -> (History, Vec<ListedTask>) {
    let mut rng = Rng::new(sim.seed);
    let mut board = BTreeMap::new();
    let mut history = History::new();
    let mut clients: Vec<(ProcessId, Client)> = (0..sim.clients)
        .map(|c| (ProcessId(c as u64), Client::Idle))
        .collect();
    let mut next_process = sim.clients as u64;
    // Writes whose client gave up before they took effect; they may land later.
    let mut limbo: Vec<Op> = Vec::new();
    let mut time = 0;
    let mut invoked = 0;

    loop {
        time += 1 + rng.below(3);
        if !limbo.is_empty() && rng.chance(10) {
            let op = limbo.swap_remove(rng.below(limbo.len() as u64) as usize);
            apply(&mut board, &op);
            continue;
        }
        let all_idle = clients.iter().all(|(_, c)| matches!(c, Client::Idle));
        if invoked >= sim.ops && all_idle {
            break;
        }
        let c = rng.below(clients.len() as u64) as usize;
        let (process, client) = &mut clients[c];
        match client {
            Client::Idle if invoked < sim.ops => {
                let op = random_op(&mut rng, sim, &board, invoked);
                let id = history.invoke(*process, op.clone(), time);
                invoked += 1;
                *client = Client::Running {
                    id,
                    op,
                    outcome: None,
                };
            }
            Client::Idle => {}
            Client::Running {
                id,
                op,
                outcome: None,
            } => {
                if is_write(op) && rng.chance(sim.info_percent) {
                    // Times out before taking effect: it may land later, or never.
                    if !rng.chance(sim.never_percent) {
                        limbo.push(op.clone());
                    }
                    let _ = history.complete(*id, Outcome::Info("timeout".into()), time);
                    *process = ProcessId(next_process);
                    next_process += 1;
                    *client = Client::Idle;
                } else {
                    let result = apply(&mut board, op);
                    *client = Client::Running {
                        id: *id,
                        op: op.clone(),
                        outcome: Some(result),
                    };
                }
            }
            Client::Running {
                id,
                op,
                outcome: Some(result),
            } => {
                let timed_out = is_write(op) && rng.chance(sim.info_percent);
                let outcome = if timed_out {
                    Outcome::Info("timeout".into())
                } else {
                    result.clone()
                };
                let _ = history.complete(*id, outcome, time);
                if timed_out {
                    *process = ProcessId(next_process);
                    next_process += 1;
                }
                *client = Client::Idle;
            }
        }
    }
    let Outcome::Ok(Value::Tasks { tasks }) = apply(&mut board, &Op::List) else {
        unreachable!("a list always answers its tasks")
    };
    (history, tasks)
}

/// Makes one ok read answer a version no task ever reaches; returns it.
pub fn corrupt_a_read(history: &History, rng: &mut Rng) -> Option<(History, OpId)> {
    let reads: Vec<OpId> = history
        .ops()
        .iter()
        .filter(|o| matches!(o.op, Op::Read { .. }))
        .filter(|o| matches!(o.definite(), Some(Outcome::Ok(Value::Task(_)))))
        .map(|o| o.id)
        .collect();
    if reads.is_empty() {
        return None;
    }
    let victim = reads[rng.below(reads.len() as u64) as usize];
    let mut ops: Vec<_> = history.ops().to_vec();
    let completion = ops[victim.0].completion.as_mut()?;
    if let Outcome::Ok(Value::Task(task)) = &mut completion.outcome {
        task.version += 1000;
    }
    let mut corrupted = History::new();
    for op in ops {
        let id = corrupted.invoke(op.process, op.op, op.invoke);
        if let Some(c) = op.completion {
            let _ = corrupted.complete(id, c.outcome, c.time);
        }
    }
    Some((corrupted, victim))
}
