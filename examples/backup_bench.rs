//! Backup and restore times and file sizes at N events, on a private
//! MariaDB (`scripts/backup-bench`, or directly):
//!
//! ```text
//! cargo run --release --example backup_bench -- 100000 1000000
//! ```
//!
//! For each N: a node's database is filled with N `task_created` events
//! (and N/10 idempotency keys) generated in MySQL itself (`INSERT …
//! SELECT` from MariaDB's sequence engine; going through the API would
//! take hours at 1,000,000), each with a realistic payload (a 190-character
//! description, two labels, random-looking ids) made by the node's own
//! encoder. Then, timed:
//!
//! - backup: the node's backup code (`backup::take`, what
//!   `GET /api/admin/backup` streams) written to a file, in process (no
//!   HTTP: on loopback that only copies the same bytes once more);
//! - verify: `taskraft backup verify`'s check of the file;
//! - restore: `taskraft restore` into a fresh database and data_dir
//!   (its verification pass included), and a point-in-time restore to
//!   the middle event.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use taskraft::backup::restore::{restore, Until};
use taskraft::backup::take::{self, Source};
use taskraft::backup::Member;
use taskraft::config::Settings;
use taskraft::db::rows::event_payload;
use taskraft::mysqld::{self, PrivateMysql, ServerOptions};
use taskraft::task::{Event, EventKind, Priority, Status, Task, TaskId};
use taskraft::time::Timestamp;

const ID_MARK: &str = "00000000-0000-7000-8000-0000000000aa";
const TITLE_MARK: &str = "bench task @N@";
const DESCRIPTION_MARK: &str = "@DESCRIPTION@";
/// Each description: this, then the SHA-256 of the seq in hex (so that
/// descriptions differ, and the file compresses as real cards would, not
/// as one card repeated).
const DESCRIPTION_TEXT: &str = "A card as boards hold them: a sentence or two of what to do, \
    who asked for it, and a pointer to where the work is tracked: ";

fn template_payload() -> String {
    let id = TaskId(ID_MARK.parse().expect("a uuid"));
    let task = Task {
        id,
        title: TITLE_MARK.into(),
        description: DESCRIPTION_MARK.into(),
        status: Status::Todo,
        position: 1.0,
        priority: Priority::Medium,
        assignee: Some("alice".into()),
        labels: vec!["backend".into(), "q4".into()],
        due_date: None,
        version: 1,
        created_at: Timestamp(1_795_000_000_000),
        updated_at: Timestamp(1_795_000_000_000),
        archived: false,
        board_id: taskraft::task::DEFAULT_BOARD,
        column_id: None,
    };
    let event = Event {
        seq: 1,
        raft_index: 1,
        ordinal: 0,
        term: 1,
        event_id: uuid::Uuid::nil(),
        kind: EventKind::TaskCreated,
        task_id: Some(id),
        task: Some(task),
        user: None,
        member: None,
        recovery: None,
        changes: BTreeMap::new(),
        at: Timestamp(1_795_000_000_000),
        request_id: uuid::Uuid::nil(),
        actor: Default::default(),
        board: None,
        board_member: None,
        comment: None,
        checklist: None,
        checklist_change: None,
        notification: None,
        webhook: None,
        column: None,
    };
    event_payload(&event)
}

/// A UUID-shaped text, unique per `seq` (its last 12 digits) and as
/// random-looking as a v7 UUID elsewhere, in SQL.
fn uuid_sql(prefix: &str) -> String {
    format!(
        "CONCAT('{prefix}-', SUBSTR(MD5(CONCAT('{prefix}', seq)), 1, 4), '-7', \
         SUBSTR(MD5(CONCAT('{prefix}', seq)), 5, 3), '-8', \
         SUBSTR(MD5(CONCAT('{prefix}', seq)), 8, 3), '-', LPAD(LOWER(HEX(seq)), 12, '0'))"
    )
}

async fn fill(url: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = mysql_async::Conn::from_url(url).await?;
    let payload = template_payload();
    let (before, after) = payload
        .split_once(ID_MARK)
        .expect("the id is in the payload");
    let (middle, after) = after.split_once(TITLE_MARK).expect("the title too");
    let (between, after) = after
        .split_once(DESCRIPTION_MARK)
        .expect("the description too");
    // The payload with the task's id and title per seq; one event per
    // entry, a millisecond apart.
    let insert = format!(
        "INSERT INTO task_events (seq, raft_index, ordinal, term, event_id, task_id, kind, \
         payload, occurred_at, request_id) \
         SELECT seq, seq + 10, 0, 1, {event}, {task}, 'task_created', \
         CONCAT(?, {task}, ?, 'bench task ', seq, ?, ?, SHA2(seq, 256), ?), \
         TIMESTAMPADD(MICROSECOND, seq * 1000, '2026-11-18 00:00:00.000'), {request} \
         FROM seq_1_to_{n}",
        event = uuid_sql("e0000000"),
        task = uuid_sql("a0000000"),
        request = uuid_sql("f0000000"),
    );
    conn.exec_drop(insert, (before, middle, between, DESCRIPTION_TEXT, after))
        .await?;
    let keys = format!(
        "INSERT INTO idempotency_keys (idem_key, fingerprint, raft_index, outcome, created_at) \
         SELECT CONCAT('bench-', seq), 'f1f2f3f4f5f6f7f8', seq + 10, \
         CONCAT('{{\"result\":\"rejected\",\"rejection\":{{\"reason\":\"not_found\",\"id\":\"', {task}, '\"}}}}'), \
         TIMESTAMPADD(MICROSECOND, seq * 1000, '2026-11-18 00:00:00.000') \
         FROM seq_1_to_{n} WHERE seq % 10 = 0",
        task = uuid_sql("a0000000"),
    );
    conn.query_drop(keys).await?;
    conn.exec_drop(
        "UPDATE raft_applied SET applied_index = ?, applied_term = 1, last_seq = ? WHERE id = 1",
        (n + 10, n),
    )
    .await?;
    conn.disconnect().await?;
    Ok(())
}

fn settings(url: &str, data_dir: &Path) -> Settings {
    let env = HashMap::from([
        ("TASKRAFT_NODE_ID".to_string(), "1".to_string()),
        ("TASKRAFT_MYSQL_URL".to_string(), url.to_string()),
        (
            "TASKRAFT_DATA_DIR".to_string(),
            data_dir.display().to_string(),
        ),
        ("TASKRAFT_AUTH".to_string(), "off".to_string()),
    ]);
    Settings::load_from(None, env).expect("bench settings")
}

async fn backup(url: &str, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let pool = taskraft::db::connect(url, 2).await?;
    let source = Source {
        cluster_id: "bench".into(),
        node_id: 1,
        members: vec![Member {
            id: 1,
            role: "voter".into(),
            raft_addr: Some("127.0.0.1:9081".into()),
            url: None,
        }],
    };
    let (_, mut chunks) = take::start(pool.clone(), source).await?;
    let mut file = std::fs::File::create(out)?;
    while let Some(chunk) = chunks.recv().await {
        std::io::Write::write_all(&mut file, &chunk?)?;
    }
    file.sync_all()?;
    pool.disconnect().await?;
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.replace([',', '_'], "").parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let dir = tempfile::Builder::new()
        .prefix("taskraft-backup-bench-")
        .tempdir()?;
    let template_root = std::env::var_os("TASKRAFT_BENCH_TEMPLATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("taskraft-bench-template"));
    let mut options = ServerOptions::on_port(mysqld::free_port());
    options.buffer_pool = "1G".into();
    options.template = Some(mysqld::template(&template_root)?);
    let server = PrivateMysql::start(&dir.path().join("mysql"), options)?;
    println!(
        "| events | backup | file | verify | restore | restore to the middle |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for n in sizes {
        let source = server.url(&format!("bench_source_{n}"));
        let system = actix::System::new();
        let started = Instant::now();
        system.block_on(async {
            taskraft::server::migrate_only(&settings(&source, &dir.path().join("unused")))
                .await
                .map_err(|e| e.to_string())
        })?;
        system.block_on(fill(&source, n))?;
        let filled = started.elapsed();
        let file = dir.path().join(format!("{n}.backup"));
        let started = Instant::now();
        system.block_on(backup(&source, &file))?;
        let backed_up = started.elapsed();
        let bytes = std::fs::metadata(&file)?.len();
        let started = Instant::now();
        let summary = taskraft::backup::client::verify_file(&file)?;
        let verified = started.elapsed();
        assert_eq!(summary.header.last_seq, n);
        let mut restores = Vec::new();
        for (name, until) in [("full", None), ("middle", Some(Until::Seq(n / 2)))] {
            let target = server.url(&format!("bench_restore_{n}_{name}"));
            let data_dir = dir.path().join(format!("raft_{n}_{name}"));
            let started = Instant::now();
            let restored = system.block_on(restore(&settings(&target, &data_dir), &file, until))?;
            restores.push(started.elapsed());
            assert_eq!(restored.last_seq, until.map_or(n, |_| n / 2));
        }
        eprintln!("{n} events generated in MySQL in {}", secs(filled));
        println!(
            "| {n} | {} | {:.1} MB | {} | {} | {} |",
            secs(backed_up),
            bytes as f64 / 1e6,
            secs(verified),
            secs(restores[0]),
            secs(restores[1])
        );
    }
    Ok(())
}
