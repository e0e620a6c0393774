//! No backlog can wedge the applier (issue 11): MariaDB is paused while a
//! crowd of maximum-size, escaping-heavy updates queues up in the Raft log;
//! once it resumes, every node must apply all of it, whatever MySQL's
//! `max_allowed_packet`, and the cluster must answer writes again. A node
//! that was down meanwhile and is sent a snapshot must copy the same rows
//! from a peer's pages under the same packet limit.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const TASKS: usize = 120;

/// Debug builds under 12 MB of appends can miss heartbeats for a second;
/// this test is about MySQL, so elections wait longer (3–6 s) than usual.
const SLOW_ELECTIONS: &[(&str, &str)] = &[("TASKRAFT_ELECTION_TICK", "60")];
const DESCRIPTION_CHARS: usize = 20_000;

#[derive(Clone, Copy, Debug)]
enum Text {
    /// Almost all backslashes: 2× in JSON, 2× again in an SQL literal.
    Backslash,
    /// 4-byte UTF-8 at every limit.
    Emoji,
}

impl Text {
    /// A description of exactly [`DESCRIPTION_CHARS`] characters, unique to `i`.
    fn description(self, i: usize) -> String {
        let tail = format!("'\"{i}");
        let fill = DESCRIPTION_CHARS - tail.chars().count();
        match self {
            Text::Backslash => format!("{}{tail}", "\\".repeat(fill)),
            Text::Emoji => format!("{}{tail}", "🦀".repeat(fill)),
        }
    }

    /// 20 labels of 40 characters each.
    fn labels(self, i: usize) -> Vec<String> {
        (0..20)
            .map(|l| {
                let tail = format!("{i}-{l}");
                let fill = 40 - tail.len();
                match self {
                    Text::Backslash => format!("{}{tail}", "\\".repeat(fill)),
                    Text::Emoji => format!("{}{tail}", "😀".repeat(fill)),
                }
            })
            .collect()
    }

    fn title(self, i: usize) -> String {
        let tail = format!(" {i}");
        let fill = 200 - tail.len();
        match self {
            Text::Backslash => format!("{}{tail}", "\\'".repeat(fill / 2)),
            Text::Emoji => format!("{}{tail}", "🚀".repeat(fill)),
        }
    }
}

fn view(url: &str) -> Value {
    get(&format!("{url}/api/cluster")).body
}

/// The highest commit index any node reports (a commit is a fact of the
/// cluster, whichever node says it); 0 when none answers.
fn commit_index(urls: &[String]) -> u64 {
    urls.iter()
        .filter_map(|url| view(url)["commit_index"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Creates `n` small tasks through the leader, 8 clients at a time.
fn create_tasks(url: &str, n: usize) -> Vec<String> {
    let threads: Vec<_> = (0..8)
        .map(|c| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in (c..n).step_by(8) {
                    let r = create_titled(&url, &format!("task {i}"));
                    assert_eq!(r.status, 201, "{:?}", r.body);
                    ids.push((i, r.body["id"].as_str().unwrap().to_string()));
                }
                ids
            })
        })
        .collect();
    let mut ids: Vec<(usize, String)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// One PATCH per task, all at once, each under its own Idempotency-Key,
/// retried (another node, same key) on a retryable answer until `until`
/// is set; returns the (task, body, key) of those not answered 200 by then.
fn patch_all(
    urls: &[String],
    ids: &[String],
    text: Text,
    until: Arc<AtomicBool>,
) -> Vec<(String, Value, String)> {
    let threads: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let urls = urls.to_vec();
            let id = id.clone();
            let until = until.clone();
            std::thread::spawn(move || {
                let body = json!({
                    "title": text.title(i),
                    "description": text.description(i),
                    "labels": text.labels(i),
                    "assignee": "O'Brien \\ 🙂",
                });
                let key = format!("wedge-{i}");
                let mut answers = Vec::new();
                for attempt in i.. {
                    let url = &urls[attempt % urls.len()];
                    let r = send(
                        "PATCH",
                        &format!("{url}/api/tasks/{id}"),
                        &[("Idempotency-Key", &key)],
                        Some(&body),
                    );
                    answers.push((r.status, r.body.clone()));

                    if r.status == 200 || until.load(Ordering::Relaxed) {
                        break;
                    }
                    assert!(
                        matches!(r.status, 0 | 503 | 504),
                        "a PATCH got {}, not 200 or a retryable answer: {}",
                        r.status,
                        r.body
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                (id, body, key, answers)
            })
        })
        .collect();
    let mut unanswered = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut examples = std::collections::BTreeMap::<u16, Value>::new();
    for t in threads {
        let (id, body, key, answers) = t.join().unwrap();
        for (status, answer) in &answers {
            *statuses.entry(*status).or_default() += 1;
            examples.entry(*status).or_insert_with(|| answer.clone());
        }
        if answers.last().map(|(status, _)| *status) != Some(200) {
            unanswered.push((id, body, key));
        }
    }
    eprintln!("PATCH answers until MySQL resumed: {statuses:?}");
    for (status, body) in examples.iter().filter(|(s, _)| **s != 200) {
        eprintln!("  a {status}: {body}");
    }
    unanswered
}

/// Retries each PATCH with its key on any node until it is answered 200.
fn retry_until_applied(urls: &[String], pending: Vec<(String, Value, String)>, within: Duration) {
    let deadline = Instant::now() + within;
    for (n, (id, body, key)) in pending.into_iter().enumerate() {
        let mut attempt = n;
        loop {
            let url = &urls[attempt % urls.len()];
            let r = send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[("Idempotency-Key", &key)],
                Some(&body),
            );
            if r.status == 200 {
                break;
            }
            assert!(
                matches!(r.status, 0 | 503 | 504),
                "retrying {key} got {}: {}",
                r.status,
                r.body
            );
            assert!(
                Instant::now() < deadline,
                "{key} still unanswered after {within:?}: {} {}",
                r.status,
                r.body
            );
            attempt += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Waits until every node is ready and has applied the leader's commit index.
fn wait_all_applied(cluster: &mut Cluster, within: Duration) {
    let deadline = Instant::now() + within;
    let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.id).collect();
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        cluster.wait_ready(id, left.max(Duration::from_secs(1)));
        cluster.wait_caught_up(id, left.max(Duration::from_secs(1)));
    }
}

/// Everything is the same on every node, each projection is the fold of its
/// events, and each task holds the text its PATCH sent.
fn assert_consistent(cluster: &Cluster, ids: &[String], text: Text) {
    let leader_url = cluster.urls()[0].clone();
    let events = all_events(&leader_url);
    for url in cluster.urls() {
        assert_eq!(
            view(&url)["apply_error"],
            Value::Null,
            "{url} reports no apply error"
        );
        assert!(all_events(&url) == events, "{url} holds the same events");
    }
    for id in 1..=cluster.nodes.len() as u64 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    for (i, id) in ids.iter().enumerate() {
        for url in cluster.urls() {
            let task = get(&format!("{url}/api/tasks/{id}"));
            assert_eq!(task.status, 200);
            assert!(
                task.body["description"].as_str() == Some(text.description(i).as_str()),
                "{url}: task {i} holds the description its PATCH sent"
            );
            assert_eq!(task.body["labels"].as_array().unwrap().len(), 20);
        }
    }
}

fn wedge(text: Text, mysql_args: &[&str]) {
    let mut args = vec!["--innodb-flush-log-at-trx-commit=2"];
    args.extend_from_slice(mysql_args);
    let mut cluster = Cluster::start_with_mysql(3, SLOW_ELECTIONS, &args);
    let leader = cluster.leader(Duration::from_secs(20));
    let ids = create_tasks(&cluster.url(leader), TASKS);
    let urls = cluster.urls();

    let before = commit_index(&urls);
    assert!(before > 0, "the nodes answer /api/cluster");
    let mysqld = cluster.mysql().and_then(|m| m.pid());
    let resumed = Arc::new(AtomicBool::new(false));
    let queued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let resume = mysqld.map(|pid| {
        taskraft::mysqld::signal(pid, libc::SIGSTOP);
        let (resumed, queued) = (resumed.clone(), queued.clone());
        let urls = urls.clone();
        std::thread::spawn(move || {
            // The backlog builds in the Raft log, waiting for MySQL: held
            // at least 4 s, and until a third of the PATCHes are committed
            // (a busy machine can cost the leader its term first: the
            // PATCHes it held are answered 503 and retried on the next).
            let paused = Instant::now();
            let mut commit = 0;
            while paused.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(500));
                commit = commit.max(commit_index(&urls));
                let backlog = commit.saturating_sub(before);
                if paused.elapsed() >= Duration::from_secs(4) && backlog >= TASKS as u64 / 3 {
                    break;
                }
            }
            queued.store(commit.saturating_sub(before), Ordering::Relaxed);
            taskraft::mysqld::signal(pid, libc::SIGCONT);
            resumed.store(true, Ordering::Relaxed);
        })
    });
    let pending = patch_all(&urls, &ids, text, resumed.clone());
    if let Some(resume) = resume {
        resume.join().unwrap();
    }
    let queued = queued.load(Ordering::Relaxed);
    eprintln!("entries committed while MySQL was paused: {queued}");
    assert!(
        queued >= TASKS as u64 / 3,
        "the PATCHes reached the log while MySQL was paused ({queued} entries)"
    );

    retry_until_applied(&urls, pending, Duration::from_secs(90));
    wait_all_applied(&mut cluster, Duration::from_secs(60));
    let leader = cluster.leader(Duration::from_secs(20));
    let after = create_titled(&cluster.url(leader), "after the backlog");
    assert_eq!(
        after.status, 201,
        "the leader answers writes: {}",
        after.body
    );
    wait_all_applied(&mut cluster, Duration::from_secs(30));
    assert_consistent(&cluster, &ids, text);
}

#[test]
fn a_paused_mysql_and_a_backslash_backlog_do_not_wedge_the_applier() {
    wedge(Text::Backslash, &[]);
}

#[test]
fn a_paused_mysql_and_an_emoji_backlog_do_not_wedge_the_applier() {
    wedge(Text::Emoji, &[]);
}

#[test]
fn a_backlog_is_applied_under_a_4_mib_max_allowed_packet() {
    wedge(Text::Backslash, &["--max-allowed-packet=4M"]);
}

/// A node down while the backlog was made, and the log compacted past it,
/// copies the rows from a peer's pages, each of which must fit in 4 MiB.
#[test]
fn a_node_behind_a_snapshot_catches_up_big_rows_under_a_4_mib_packet() {
    let env = [
        ("TASKRAFT_SNAPSHOT_COUNT", "40"),
        ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "10"),
        SLOW_ELECTIONS[0],
    ];
    let mut cluster = Cluster::start_with_mysql(
        3,
        &env,
        &[
            "--innodb-flush-log-at-trx-commit=2",
            "--max-allowed-packet=4M",
        ],
    );
    let leader = cluster.leader(Duration::from_secs(20));
    let behind = if leader == 3 { 2 } else { 3 };
    let ids = create_tasks(&cluster.url(leader), TASKS);
    cluster.wait_caught_up(behind, Duration::from_secs(30));
    cluster.kill(behind);

    let urls: Vec<String> = (1..=3u64)
        .filter(|id| *id != behind)
        .map(|id| cluster.url(id))
        .collect();
    let pending = patch_all(
        &urls,
        &ids,
        Text::Backslash,
        Arc::new(AtomicBool::new(true)),
    );
    retry_until_applied(&urls, pending, Duration::from_secs(60));
    // Emoji on top, so that pages carry both kinds.
    let second: Vec<(String, Value, String)> = ids
        .iter()
        .enumerate()
        .take(40)
        .map(|(i, id)| {
            let body = json!({ "title": Text::Emoji.title(i), "labels": Text::Emoji.labels(i) });
            (id.clone(), body, format!("emoji-{i}"))
        })
        .collect();
    retry_until_applied(&urls, second, Duration::from_secs(60));

    let leader = cluster.leader(Duration::from_secs(20));
    let applied = view(&cluster.url(leader))["applied_index"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while view(&cluster.url(leader))["first_index"]
        .as_u64()
        .unwrap_or(0)
        < applied / 2
    {
        assert!(
            Instant::now() < deadline,
            "the leader's log was not compacted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    cluster.restart(behind);
    wait_all_applied(&mut cluster, Duration::from_secs(60));
    let url = cluster.url(behind);
    assert!(
        metric(&url, "taskraft_catchup_pages_total") >= 2.0,
        "node {behind} copied its rows in more than one page"
    );
    assert_consistent(&cluster, &ids, Text::Backslash);
}
