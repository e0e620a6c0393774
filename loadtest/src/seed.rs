//! `loadtest seed`: fills a cluster with many realistic tasks quickly,
//! through the API over many connections (every create is a Raft entry, as
//! a user's would be), and the vocabulary the read benchmarks draw their
//! filters and search words from (`--path` templates, `fill`).
//!
//! A task: a title such as "Fix invoice export for kelomar" and a
//! description of 8 to 25 words; every status, priority, 0 to 3 of
//! [`LABELS`], one of [`ASSIGNEES`] or none. Words come from a small
//! common vocabulary (verbs, nouns, areas) and a long tail of 20,000
//! made-up names drawn with a Zipf-like (log-uniform) distribution, so
//! some words are in a tenth of the tasks and most in a handful, as in
//! real text.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::http::Conn;
use crate::workload::Rng;

pub const STATUSES: [&str; 3] = ["todo", "in_progress", "done"];
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
pub const LABELS: [&str; 20] = [
    "bug", "feature", "ops", "ui", "db", "security", "docs", "perf", "billing", "mobile", "api",
    "infra", "design", "support", "legal", "data", "search", "auth", "email", "release",
];
pub const ASSIGNEES: [&str; 40] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yvonne", "zoe",
    "amir", "bianca", "chen", "dmitri", "elena", "farid", "giulia", "hana", "igor", "jonas",
    "kaito", "lena", "marta", "nora", "omar", "priya", "quentin", "rosa", "sven",
];
const VERBS: [&str; 24] = [
    "Fix",
    "Add",
    "Remove",
    "Refactor",
    "Investigate",
    "Document",
    "Migrate",
    "Speed up",
    "Review",
    "Test",
    "Deploy",
    "Update",
    "Rewrite",
    "Monitor",
    "Clean up",
    "Design",
    "Localize",
    "Audit",
    "Upgrade",
    "Automate",
    "Split",
    "Merge",
    "Cache",
    "Retry",
];
pub const NOUNS: [&str; 40] = [
    "invoice",
    "login",
    "checkout",
    "dashboard",
    "report",
    "export",
    "import",
    "search",
    "notification",
    "upload",
    "payment",
    "profile",
    "settings",
    "webhook",
    "schedule",
    "backup",
    "pipeline",
    "cluster",
    "database",
    "migration",
    "timeout",
    "session",
    "token",
    "password",
    "printer",
    "calendar",
    "newsletter",
    "sitemap",
    "receipt",
    "refund",
    "coupon",
    "shipping",
    "warehouse",
    "inventory",
    "analytics",
    "onboarding",
    "permissions",
    "thumbnail",
    "queue",
    "certificate",
];
const AREAS: [&str; 12] = [
    "on mobile",
    "for admins",
    "in the API",
    "on the board",
    "for new users",
    "in Safari",
    "behind the proxy",
    "in production",
    "on staging",
    "for EU customers",
    "in the nightly job",
    "after logout",
];
const SYLLABLES: [&str; 40] = [
    "ka", "lo", "mi", "ren", "tor", "sa", "vel", "dun", "pri", "zo", "bar", "nek", "sul", "fi",
    "gra", "hol", "ju", "kem", "lir", "mon", "nu", "pel", "quo", "ras", "sti", "tam", "ul", "vor",
    "wen", "xi", "yal", "zet", "bro", "cle", "dor", "eth", "fal", "gim", "hun", "isk",
];
/// Made-up names in the long tail.
pub const TAIL: u64 = 20_000;

/// The `k`-th made-up name: two or three syllables.
pub fn tail_word(k: u64) -> String {
    let mut n = k + SYLLABLES.len() as u64;
    let mut word = String::new();
    while n > 0 {
        word.push_str(SYLLABLES[(n % SYLLABLES.len() as u64) as usize]);
        n /= SYLLABLES.len() as u64;
    }
    word
}

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[(rng.next() % from.len() as u64) as usize]
}

/// A long-tail word, log-uniformly: word k with probability ~ 1/k.
pub fn zipf_word(rng: &mut Rng) -> String {
    let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
    let k = ((TAIL as f64).powf(u) as u64)
        .saturating_sub(1)
        .min(TAIL - 1);
    tail_word(k)
}

/// One task's JSON body.
pub fn task(rng: &mut Rng) -> Value {
    let title = format!(
        "{} {} {} {}",
        pick(rng, &VERBS),
        pick(rng, &NOUNS),
        zipf_word(rng),
        pick(rng, &AREAS)
    );
    let words = 8 + rng.next() % 18;
    let description: Vec<String> = (0..words)
        .map(|i| match (i + rng.next()) % 3 {
            0 => pick(rng, &NOUNS).to_string(),
            1 => zipf_word(rng),
            _ => pick(
                rng,
                &[
                    "the", "when", "after", "and", "fails", "is", "slow", "users", "see",
                ],
            )
            .to_string(),
        })
        .collect();
    let mut labels: Vec<&str> = (0..rng.next() % 4).map(|_| pick(rng, &LABELS)).collect();
    labels.sort_unstable();
    labels.dedup();
    // More open work than in progress, as on a real board.
    let status = ["todo", "todo", "in_progress", "done", "done"][(rng.next() % 5) as usize];
    let mut body = json!({
        "title": title,
        "description": description.join(" "),
        "status": status,
        "priority": pick(rng, &PRIORITIES),
        "labels": labels,
    });
    if !rng.next().is_multiple_of(10) {
        body["assignee"] = json!(pick(rng, &ASSIGNEES));
    }
    body
}

/// `template` with each `{status}`, `{priority}`, `{label}`, `{assignee}`,
/// `{noun}` (a common word) and `{word}` (a long-tail word, as often as the
/// tasks use it) replaced by a value drawn from the seed's vocabulary.
pub fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = template.to_string();
    for (name, value) in [
        ("{status}", pick(rng, &STATUSES).to_string()),
        ("{priority}", pick(rng, &PRIORITIES).to_string()),
        ("{label}", pick(rng, &LABELS).to_string()),
        ("{assignee}", pick(rng, &ASSIGNEES).to_string()),
        ("{noun}", pick(rng, &NOUNS).to_string()),
        ("{word}", zipf_word(rng)),
    ] {
        out = out.replace(name, &value);
    }
    out
}

#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// Node URLs, repeated or comma-separated (connections are spread over them).
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    /// Tasks to create.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    pub count: u64,
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// Seeds the generator: the same seed makes the same tasks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Progress on stderr this often.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub every: Duration,
    /// Boards to create first (0: every task on the default board). The
    /// tasks are spread over them, each in its board's column of its
    /// status; the first board gets `--big-live` and `--big-archived`.
    #[arg(long, default_value_t = 0)]
    pub boards: u64,
    /// Live cards of the first board (with `--boards`).
    #[arg(long, default_value_t = 0)]
    pub big_live: u64,
    /// Archived cards of the first board (with `--boards`): each created,
    /// then archived (two writes).
    #[arg(long, default_value_t = 0)]
    pub big_archived: u64,
    /// Write the boards made (id, name, column ids by key) here as JSON.
    #[arg(long)]
    pub boards_out: Option<std::path::PathBuf>,
}

/// A board the seed made: its id and its columns' ids by key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeededBoard {
    pub id: String,
    pub columns: std::collections::BTreeMap<String, String>,
}

/// Creates `n` boards through `url`.
async fn make_boards(url: &str, n: u64) -> Result<Vec<SeededBoard>, String> {
    let mut conn = Conn::new(url).with_timeout(Duration::from_secs(30));
    let mut boards = Vec::new();
    for k in 0..n {
        let body = Bytes::from(json!({ "name": format!("Team {k}") }).to_string());
        let reply = conn
            .request(Method::POST, "/api/boards", &[], Some(body))
            .await;
        if reply.status != 201 {
            return Err(format!(
                "{url}: POST /api/boards answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        let board: Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
        let columns = board["columns"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c["key"].as_str().unwrap_or_default().to_string(),
                            c["id"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        boards.push(SeededBoard {
            id: board["id"].as_str().unwrap_or_default().to_string(),
            columns,
        });
    }
    Ok(boards)
}

/// Where the `g`-th task goes: a column of a seeded board (`None`: the
/// default board), and whether it is archived.
fn placement<'a>(
    args: &SeedArgs,
    boards: &'a [SeededBoard],
    g: u64,
    status: &str,
) -> (Option<&'a String>, bool) {
    if boards.is_empty() {
        return (None, false);
    }
    let (board, archived) = if g < args.big_live {
        (&boards[0], false)
    } else if g < args.big_live + args.big_archived {
        (&boards[0], true)
    } else if boards.len() == 1 {
        (&boards[0], false)
    } else {
        (&boards[1 + (g as usize % (boards.len() - 1))], false)
    };
    (board.columns.get(status), archived)
}

/// Creates `count` tasks over `connections` connections; a failed create
/// is retried (up to 5 times, with a pause), so the count is exact.
pub async fn run(args: &SeedArgs) -> Result<(u64, f64), String> {
    let started = Instant::now();
    let boards = Rc::new(make_boards(&args.urls[0], args.boards).await?);
    if let Some(path) = &args.boards_out {
        let text = serde_json::to_string_pretty(&*boards).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let done = Rc::new(Cell::new(0u64));
    let clients = args.connections.max(1) as u64;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let count = args.count / clients + u64::from(client < args.count % clients);
        let url = args.urls[(client as usize) % args.urls.len()].clone();
        let done = done.clone();
        let boards = boards.clone();
        let args = args.clone();
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(client + 1);
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(&url).with_timeout(Duration::from_secs(30));
            let mut rng = Rng::new(seed);
            for k in 0..count {
                let mut value = task(&mut rng);
                // The g-th task overall: client c makes g = c, c + C, c + 2C, …
                let g = client + k * clients;
                let status = value["status"].as_str().unwrap_or("todo").to_string();
                let (column, archive) = placement(&args, &boards, g, &status);
                if let Some(column) = column {
                    value["column_id"] = json!(column);
                }
                let body = Bytes::from(value.to_string());
                let mut tries = 0;
                loop {
                    let reply = conn
                        .request(Method::POST, "/api/tasks", &[], Some(body.clone()))
                        .await;
                    if reply.status == 201 {
                        if archive {
                            let id = serde_json::from_slice::<Value>(&reply.body)
                                .ok()
                                .and_then(|t| t["id"].as_str().map(str::to_string))
                                .unwrap_or_default();
                            let patch = Bytes::from_static(br#"{"archived":true}"#);
                            let archived = conn
                                .request(
                                    Method::PATCH,
                                    &format!("/api/tasks/{id}"),
                                    &[],
                                    Some(patch),
                                )
                                .await;
                            if archived.status != 200 {
                                return Err(format!(
                                    "{url}: archiving {id} answered {}",
                                    archived.status
                                ));
                            }
                        }
                        break;
                    }
                    tries += 1;
                    if tries == 5 {
                        return Err(format!(
                            "{url}: a create failed 5 times, last with status {}: {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.body)
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                done.set(done.get() + 1);
            }
            Ok(())
        }));
    }
    let progress = {
        let done = done.clone();
        let every = args.every;
        let total = args.count;
        tokio::task::spawn_local(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(every).await;
                let now = (Instant::now(), done.get());
                eprintln!(
                    "seed: {}/{total} tasks, {:.0}/s over the last {:.0}s",
                    now.1,
                    (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64(),
                    every.as_secs_f64()
                );
                last = now;
            }
        })
    };
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(format!("a client failed: {e}")),
        }
    }
    progress.abort();
    if let Some(e) = failure {
        return Err(format!("{e} ({} tasks created)", done.get()));
    }
    Ok((done.get(), started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_valid_and_varied_and_the_same_for_the_same_seed() {
        let mut rng = Rng::new(7);
        let tasks: Vec<Value> = (0..2000).map(|_| task(&mut rng)).collect();
        let mut again = Rng::new(7);
        assert_eq!(task(&mut again), tasks[0]);
        for t in &tasks {
            let title = t["title"].as_str().unwrap();
            assert!(!title.is_empty() && title.chars().count() <= 200, "{title}");
            assert!(t["labels"].as_array().unwrap().len() <= 3);
        }
        let distinct = |key: &str| {
            tasks
                .iter()
                .map(|t| t[key].to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert_eq!(distinct("status"), 3);
        assert_eq!(distinct("priority"), 4);
        assert_eq!(distinct("assignee"), ASSIGNEES.len() + 1, "and unassigned");
        // A long tail: the most common made-up word is in many tasks,
        // most are in few.
        let mut counts = std::collections::BTreeMap::new();
        for t in &tasks {
            for w in t["description"].as_str().unwrap().split(' ') {
                *counts.entry(w.to_string()).or_insert(0u32) += 1;
            }
        }
        let tail: Vec<u32> = (0..TAIL)
            .map(|k| counts.get(&tail_word(k)).copied().unwrap_or(0))
            .collect();
        assert!(tail[0] > 100, "{}", tail[0]);
        assert!(tail.iter().filter(|&&c| c > 0).count() > 1000);
        assert!(tail_word(0).len() >= 4 && tail_word(TAIL - 1).len() >= 4);
    }

    #[test]
    fn templates_are_filled_from_the_vocabulary() {
        let mut rng = Rng::new(3);
        let path = fill(
            "/api/tasks?status={status}&label={label}&q={word}",
            &mut rng,
        );
        assert!(!path.contains('{'), "{path}");
        let label = path
            .split("label=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert!(LABELS.contains(&label), "{path}");
    }
}
