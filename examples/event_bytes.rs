//! Bytes per stored event, before and after the compact payload format, on a
//! seeded, realistic mix of commands run through the real state machine.
//!
//! ```text
//! cargo run --example event_bytes            # seed 1, 20,000 commands
//! cargo run --example event_bytes -- 7 5000  # another seed and size
//! ```
//!
//! "before" is the first payload format (the task after the change, and
//! every changed field with `from` *and* `to`); "after" is what the applier
//! writes now ([`EventPayload`]'s stored form). `json` is the `payload`
//! column's length; `sql` is the same text as the escaped literal the
//! applier's SQL carries (`Sql::text`). The mix: a quarter creates, 40 %
//! moves, 30 % field edits, 5 % deletes; of creates and edits, 85 % small,
//! 5 % at the validation limits, 10 % backslash-, quote- and emoji-heavy.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use taskraft::db::sql::Sql;
use taskraft::task::validate::{ASSIGNEE_MAX, DESCRIPTION_MAX, LABELS_MAX, LABEL_MAX, TITLE_MAX};
use taskraft::task::{
    Board, Command, Event, EventKind, EventPayload, FieldChange, NewTask, Op, Priority, Status,
    Task, TaskId, TaskPatch,
};
use taskraft::time::Timestamp;

/// SplitMix64, so the mix is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// How big and how awkward a text is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Size {
    Small,
    Limit,
    Heavy,
}

fn size(rng: &mut Rng) -> Size {
    match rng.below(100) {
        0..=84 => Size::Small,
        85..=89 => Size::Limit,
        _ => Size::Heavy,
    }
}

const WORDS: [&str; 12] = [
    "fix", "the", "report", "deploy", "review", "api", "board", "notes", "css", "db", "ship", "it",
];

fn prose(rng: &mut Rng, chars: usize) -> String {
    let mut text = String::new();
    // Words are ASCII: bytes are characters.
    while text.len() < chars {
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        text.push(if rng.below(12) == 0 { '\n' } else { ' ' });
    }
    text.chars()
        .take(chars)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Mostly backslashes, with quotes and 4-byte emoji: the worst case for
/// JSON escaping, SQL escaping and UTF-8 width at once.
fn awkward(rng: &mut Rng, chars: usize) -> String {
    (0..chars)
        .map(|_| match rng.below(10) {
            0..=5 => '\\',
            6 => '"',
            7 => '\'',
            8 => '😀',
            _ => 'x',
        })
        .collect()
}

fn description(rng: &mut Rng, size: Size) -> String {
    match size {
        Size::Small => {
            let n = rng.below(300) as usize;
            prose(rng, n)
        }
        Size::Limit => prose(rng, DESCRIPTION_MAX),
        Size::Heavy => {
            let n = rng.between(2_000, DESCRIPTION_MAX as u64) as usize;
            awkward(rng, n)
        }
    }
}

fn title(rng: &mut Rng, size: Size, n: u64) -> String {
    match size {
        Size::Small => {
            let words = rng.between(10, 40) as usize;
            format!("{n} {}", prose(rng, words))
        }
        Size::Limit => {
            let text = format!("{n} {}", prose(rng, TITLE_MAX));
            text.chars()
                .take(TITLE_MAX)
                .collect::<String>()
                .trim()
                .to_string()
        }
        Size::Heavy => format!("{n} {}", awkward(rng, 60))
            .chars()
            .take(TITLE_MAX)
            .collect(),
    }
}

fn labels(rng: &mut Rng, size: Size) -> Vec<String> {
    match size {
        Size::Limit => (0..LABELS_MAX)
            .map(|i| format!("{i:02}{}", "l".repeat(LABEL_MAX - 2)))
            .collect(),
        _ => (0..rng.below(3))
            .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize].to_string())
            .collect(),
    }
}

/// The first stored format, written again here to measure it.
#[derive(Serialize)]
struct FirstFormat<'a> {
    task: &'a Task,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    changes: &'a BTreeMap<String, FieldChange>,
}

#[derive(Default)]
struct Tally {
    events: u64,
    before_json: u64,
    after_json: u64,
    before_sql: u64,
    after_sql: u64,
}

impl Tally {
    fn add(&mut self, event: &Event) {
        let before = serde_json::to_string(&FirstFormat {
            task: event.task.as_ref().expect("a task event"),
            changes: &event.changes,
        })
        .expect("serializes");
        let after = serde_json::to_string(&EventPayload::of(event)).expect("serializes");
        let decoded: EventPayload = serde_json::from_str(&after).expect("decodes");
        assert_eq!(decoded.changes, event.changes, "seq {}", event.seq);
        assert_eq!(decoded.task, event.task, "seq {}", event.seq);
        self.events += 1;
        self.before_json += before.len() as u64;
        self.after_json += after.len() as u64;
        self.before_sql += Sql::new().text(&before).as_str().len() as u64;
        self.after_sql += Sql::new().text(&after).as_str().len() as u64;
    }

    fn row(&self, name: &str) {
        let avg = |total: u64| total as f64 / self.events.max(1) as f64;
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}× |",
            self.events,
            avg(self.before_json),
            avg(self.after_json),
            avg(self.before_sql),
            avg(self.after_sql),
            self.before_sql as f64 / self.after_sql.max(1) as f64,
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let commands: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut rng = Rng(seed);
    let mut board = Board::new();
    let mut live: Vec<TaskId> = Vec::new();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for n in 1..=commands {
        let roll = rng.below(100);
        let (class, op) = if live.is_empty() || roll < 25 {
            let size = size(&mut rng);
            let id = TaskId(Uuid::from_u128((u128::from(seed) << 64) | u128::from(n)));
            let op = Op::Create(NewTask {
                id,
                title: title(&mut rng, size, n),
                description: description(&mut rng, size),
                status: Status::ALL[rng.below(3) as usize],
                position: None,
                priority: Priority::ALL[rng.below(4) as usize],
                assignee: match size {
                    Size::Limit => Some("a".repeat(ASSIGNEE_MAX)),
                    _ => (rng.below(2) == 0).then(|| "ana".to_string()),
                },
                labels: labels(&mut rng, size),
                due_date: None,
                board_id: None,
                column_id: None,
            });
            live.push(id);
            (format!("create, {size:?}"), op)
        } else {
            let pick = rng.below(live.len() as u64) as usize;
            let id = live[pick];
            if roll < 65 {
                let patch = TaskPatch {
                    status: Some(Status::ALL[rng.below(3) as usize]),
                    position: Some(rng.below(1_000_000) as f64 / 7.0),
                    ..TaskPatch::default()
                };
                ("move".to_string(), update(id, patch))
            } else if roll < 95 {
                let size = size(&mut rng);
                let mut patch = TaskPatch::default();
                match (size, rng.below(4)) {
                    (Size::Small, 0) => patch.title = Some(title(&mut rng, size, n)),
                    (Size::Small, 1) => patch.priority = Some(Priority::ALL[rng.below(4) as usize]),
                    (Size::Small, 2) => {
                        patch.assignee = Some((rng.below(2) == 0).then(|| format!("user{n}")))
                    }
                    _ => patch.description = Some(description(&mut rng, size)),
                }
                (format!("edit, {size:?}"), update(id, patch))
            } else {
                live.swap_remove(pick);
                (
                    "delete".to_string(),
                    Op::Delete {
                        id,
                        expected_version: None,
                    },
                )
            }
        };
        let command = Command {
            request_id: Uuid::from_u128(u128::from(n)),
            idempotency: None,
            at: Timestamp(1_800_000_000_000 + n as i64),
            actor: Default::default(),
            op,
        };
        board.apply(n, 1, &command);
        for event in board.take_changes().events {
            let class = if event.kind == EventKind::TaskUpdated && event.changes.is_empty() {
                "edit, no change".to_string()
            } else {
                class.clone()
            };
            tallies.entry(class).or_default().add(&event);
            tallies.entry("all".to_string()).or_default().add(&event);
        }
    }
    println!("seed {seed}, {commands} commands; average bytes per stored event payload");
    println!();
    println!("| events | n | json before | json after | sql before | sql after | sql ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, tally) in &tallies {
        if name != "all" {
            tally.row(name);
        }
    }
    tallies["all"].row("**all**");
}

fn update(id: TaskId, patch: TaskPatch) -> Op {
    Op::Update {
        id,
        expected_version: None,
        patch,
    }
}
