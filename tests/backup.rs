//! Online backup (`GET /api/admin/backup`, `taskraft backup`, `taskraft
//! backup verify`) on a real 3-node cluster with accounts on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;
use serde_json::json;

const TOKEN: &str = "9f1c2e7a4b8d0c3e6f5a1b2c9d8e7f60a1b2c3d4";
const ADMIN_PASSWORD: &str = "backup-admin-password";

fn start() -> Cluster {
    let mut options = testbed::Options::new(BIN).with_auth(ADMIN_PASSWORD, TOKEN);
    options.template_root = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    Cluster::launch(3, options)
}

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

fn taskraft(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("TASKRAFT_TOKEN")
        .output()
        .expect("taskraft runs")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writers that create tasks with the service token until `stop`.
fn writers(urls: Vec<String>, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..2)
        .map(|c| {
            let urls = urls.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (name, value) = bearer();
                let mut acked = 0;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("bw{c}-{i}");
                    let url = &urls[(c + i) % urls.len()];
                    let r = send(
                        "POST",
                        &format!("{url}/api/tasks"),
                        &[(name, &value), ("Idempotency-Key", &key)],
                        Some(&json!({ "title": format!("writer {c} task {i}") })),
                    );
                    if r.status == 201 {
                        acked += 1;
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

/// `task_events` rows `1..=upto` of a node's database (as
/// [`event_rows`]), and the keys of entries up to `index`.
fn rows_of(mysql_url: &str, upto: u64, index: u64) -> (Vec<Vec<u8>>, u64) {
    let events = event_rows(mysql_url, upto);
    let keys = block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql_url).await.unwrap();
        let keys: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM idempotency_keys WHERE raft_index <= ?",
                (index,),
            )
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        keys.unwrap()
    });
    (events, keys)
}

fn applied_seq(mysql_url: &str) -> u64 {
    block_on(async {
        let pool = taskraft::db::connect(mysql_url, 1).await.unwrap();
        let mut conn = pool.get_conn().await.unwrap();
        let state = taskraft::db::applied_state(&mut conn).await.unwrap();
        drop(conn);
        pool.disconnect().await.unwrap();
        state.last_seq
    })
}

fn flipped(from: &Path, to: &Path) {
    let mut bytes = std::fs::read(from).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(to, bytes).unwrap();
}

#[test]
fn a_backup_under_writes_holds_exactly_the_events_up_to_its_seq() {
    let cluster = start();
    let urls = cluster.urls();
    let dir = tempfile::tempdir().unwrap();
    let (name, value) = bearer();
    for i in 0..150 {
        let r = send(
            "POST",
            &format!("{}/api/tasks", urls[0]),
            &[(name, &value)],
            Some(&json!({ "title": format!("before {i}") })),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let handles = writers(urls.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let out = dir.path().join("taskraft.backup");
    let out_text = out.to_str().unwrap();
    let pid = cluster.node(1).pid().expect("node 1 runs");
    let before_mib = rss_mib(pid);
    let peak = PeakRss::watch(pid);
    let taken = taskraft(&[
        "backup", "--url", &urls[0], "--token", TOKEN, "--out", out_text,
    ]);
    let peak_mib = peak.peak();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let acked: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(taken.status.success(), "{}", text(&taken));
    assert!(acked > 0, "the writers wrote while the backup ran");
    assert!(!dir.path().join("taskraft.backup.partial").exists());
    eprintln!("node 1 RSS: {before_mib} MiB before the backup, {peak_mib} MiB at most during it");

    let verified = taskraft(&["backup", "verify", out_text]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("OK"),
        "{}",
        text(&verified)
    );

    // The events 1..=last_seq, byte for byte what another node holds.
    let mut events = Vec::new();
    let mut users = Vec::new();
    let summary = taskraft::backup::verify(std::fs::File::open(&out).unwrap(), |part, row| {
        match part {
            "events" => events.push(row.to_vec()),
            "users" => users.push(serde_json::from_slice::<serde_json::Value>(row).unwrap()),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    let header = &summary.header;
    assert!(header.last_seq >= 150, "{header:?}");
    assert_eq!(header.node_id, 1);
    let node2 = cluster.mysql_url(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied_seq(&node2) < header.last_seq {
        assert!(Instant::now() < deadline, "node 2 never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (theirs, keys) = rows_of(&node2, header.last_seq, header.applied_index);
    assert_eq!(events.len() as u64, header.last_seq);
    assert!(events == theirs, "the events differ from node 2's rows");
    // Keys from the same point: every key of the entries up to the index.
    let parts: std::collections::HashMap<_, _> = summary.parts.iter().cloned().collect();
    assert_eq!(parts["idempotency_keys"], keys);
    assert_eq!(parts["membership"], 3);
    assert!(users.iter().any(|u| u["username"] == "admin"), "{users:?}");

    // A truncated file and a file with one flipped byte are refused.
    let truncated = dir.path().join("truncated.backup");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let refused = taskraft(&["backup", "verify", truncated.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("backup refused: ")
            && String::from_utf8_lossy(&refused.stderr).contains("truncated: "),
        "{}",
        text(&refused)
    );
    let corrupted = dir.path().join("corrupted.backup");
    flipped(&out, &corrupted);
    let refused = taskraft(&["backup", "verify", corrupted.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("corrupted: ") || stderr.contains("truncated: "),
        "{}",
        text(&refused)
    );
    let check = cluster.rebuild_check(1);
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn only_an_admin_may_take_a_backup() {
    let cluster = start();
    let url = cluster.url(1);
    let backup = format!("{url}/api/admin/backup");
    assert_eq!(get(&backup).status, 401);

    let (name, value) = bearer();
    let r = send(
        "POST",
        &format!("{url}/api/users"),
        &[(name, &value)],
        Some(&json!({ "username": "viewer1", "password": "viewer-password-1", "role": "viewer" })),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = send(
        "POST",
        &format!("{url}/api/session"),
        &[],
        Some(&json!({ "username": "viewer1", "password": "viewer-password-1" })),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let r = send("GET", &backup, &[("Cookie", &cookie)], None);
    assert_eq!(r.status, 403, "{:?}", r.body);

    // The CLI without credentials: a clear error, and no file at all.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.backup");
    let refused = taskraft(&["backup", "--url", &url, "--out", out.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        text(&refused)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A few thousand events: the node streams them page by page, so its
/// memory grows by much less than the backup holds.
#[test]
fn a_backup_does_not_grow_the_node_with_its_size() {
    let cluster = start();
    let urls = cluster.urls();
    let description = "x".repeat(8000);
    let threads: Vec<_> = (0..4)
        .map(|c| {
            let url = urls[0].clone();
            let description = description.clone();
            std::thread::spawn(move || {
                let (name, value) = bearer();
                for i in 0..750 {
                    let r = send(
                        "POST",
                        &format!("{url}/api/tasks"),
                        &[(name, &value)],
                        Some(
                            &json!({ "title": format!("big {c} {i}"), "description": description }),
                        ),
                    );
                    assert_eq!(r.status, 201, "{:?}", r.body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.backup");
    let pid = cluster.node(1).pid().expect("node 1 runs");
    // Once, to warm whatever a first backup allocates for good (pools,
    // buffers), then measured.
    let warm = taskraft(&[
        "backup",
        "--url",
        &urls[0],
        "--token",
        TOKEN,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(warm.status.success(), "{}", text(&warm));
    std::fs::remove_file(&out).unwrap();
    let before = rss_mib(pid);
    let peak = PeakRss::watch(pid);
    let taken = taskraft(&[
        "backup",
        "--url",
        &urls[0],
        "--token",
        TOKEN,
        "--out",
        out.to_str().unwrap(),
    ]);
    let peak = peak.peak();
    assert!(taken.status.success(), "{}", text(&taken));
    let mut plain = 0u64;
    let summary = taskraft::backup::verify(std::fs::File::open(&out).unwrap(), |_, row| {
        plain += row.len() as u64 + 1;
        Ok(())
    })
    .unwrap();
    // The 3,000 tasks, and the bootstrap admin's `user_created`.
    assert_eq!(summary.header.last_seq, 3001);
    let plain_mib = plain >> 20;
    let compressed = std::fs::metadata(&out).unwrap().len();
    eprintln!(
        "3000 events: {plain_mib} MiB of rows, {compressed} bytes compressed; \
         node 1 RSS {before} MiB before, {peak} MiB at most during the backup"
    );
    assert!(plain_mib >= 20, "the backup holds {plain_mib} MiB");
    assert!(
        peak.saturating_sub(before) < plain_mib / 3,
        "node 1 grew from {before} to {peak} MiB for a backup of {plain_mib} MiB"
    );
}
