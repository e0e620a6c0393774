//! `taskraft restore` and `GET /api/tasks?as_of=` on real processes over a
//! private MariaDB: a backup taken under writes becomes a new 3-node
//! cluster (the restored node first, two fresh nodes joining it); a
//! point-in-time restore and `as_of` answer the fold of the events up to
//! a point; a bad file, a used data_dir or a used database is refused with
//! nothing written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mysql_async::prelude::*;
use serde_json::{json, Value};
use taskraft::db::catchup::EventRow;
use taskraft::task::{replay, Event};

const TOKEN: &str = "5d2c8e1f7a9b3c4d6e0f1a2b3c4d5e6f7a8b9c0d";
const ADMIN_PASSWORD: &str = "restore-admin-password";

fn start(n: usize) -> Cluster {
    use_token(TOKEN);
    let mut options = testbed::Options::new(BIN).with_auth(ADMIN_PASSWORD, TOKEN);
    options.template_root = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let cluster = Cluster::launch(n, options);
    wait_for_admin(&cluster.url(1));
    cluster
}

/// The bootstrap admin is made by the nodes a moment after the first
/// leader, as an event of its own: the history a test writes must come
/// after it. Otherwise a restore to a point before it holds no user, and
/// the restored node, configured with the admin, makes it again: an event
/// the test did not write (seen once the test's writes got faster).
fn wait_for_admin(url: &str) {
    accounts::within("the bootstrap admin", Duration::from_secs(30), || {
        let users = get(&format!("{url}/api/users")).body["users"].clone();
        users
            .as_array()
            .is_some_and(|users| users.iter().any(|u| u["username"] == "admin"))
    });
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn server_url(cluster: &Cluster, id: u64) -> (String, String) {
    let url = cluster.mysql_url(id);
    let (base, name) = url.rsplit_once('/').expect("a database in the url");
    (base.to_string(), name.to_string())
}

fn drop_database(cluster: &Cluster, id: u64) {
    let (base, name) = server_url(cluster, id);
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(base).await.unwrap();
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
    });
}

fn database_exists(cluster: &Cluster, id: u64) -> bool {
    let (base, name) = server_url(cluster, id);
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(base).await.unwrap();
        let found: Option<String> = conn
            .exec_first(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (name,),
            )
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        found.is_some()
    })
}

/// Node `id` stopped, with its data_dir and database gone (a new volume).
fn wipe(cluster: &mut Cluster, id: u64) {
    cluster.kill(id);
    let dir = cluster.node(id).data_dir.clone();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    drop_database(cluster, id);
}

fn data_dir_is_empty(cluster: &Cluster, id: u64) -> bool {
    std::fs::read_dir(&cluster.node(id).data_dir).map_or(true, |mut d| d.next().is_none())
}

/// The backup's header and its event rows, as lines and as events.
fn read_backup(file: &Path) -> (taskraft::backup::Header, Vec<Vec<u8>>, Vec<Event>) {
    let mut lines = Vec::new();
    let mut events = Vec::new();
    let summary = taskraft::backup::verify(std::fs::File::open(file).unwrap(), |part, row| {
        if part == "events" {
            lines.push(row.to_vec());
            let event: EventRow = serde_json::from_slice(row).unwrap();
            events.push(event.event().unwrap());
        }
        Ok(())
    })
    .expect("a good backup");
    (summary.header, lines, events)
}

fn backup(cluster: &Cluster, dir: &Path) -> PathBuf {
    let out = dir.join("taskraft.backup");
    let taken = std::process::Command::new(BIN)
        .args(["backup", "--url", &cluster.url(1), "--token", TOKEN])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(taken.status.success(), "{}", text(&taken));
    out
}

fn restore(cluster: &Cluster, id: u64, file: &Path, until: &[&str]) -> Output {
    let mut args = vec!["restore", "--in", file.to_str().unwrap()];
    args.extend_from_slice(until);
    cluster.run_as(id, &args)
}

/// The tasks as JSON, by id.
fn by_id(tasks: impl IntoIterator<Item = Value>) -> BTreeMap<String, Value> {
    tasks
        .into_iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), t))
        .collect()
}

fn fold(events: &[Event]) -> BTreeMap<String, Value> {
    by_id(
        replay(events)
            .tasks
            .into_values()
            .map(|task| serde_json::to_value(task).unwrap()),
    )
}

fn post(url: &str, key: &str, body: &Value) -> Response {
    send(
        "POST",
        &format!("{url}/api/tasks"),
        &[("Idempotency-Key", key)],
        Some(body),
    )
}

/// Creates, moves and deletes tasks under idempotency keys `{prefix}{i}`;
/// returns (key, body, task id) of each create.
fn history(url: &str, prefix: &str, n: usize) -> Vec<(String, Value, String)> {
    let mut created = Vec::new();
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let body =
            json!({ "title": format!("{prefix} task {i}"), "labels": [format!("l{}", i % 3)] });
        let r = post(url, &key, &body);
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        if i % 3 == 1 {
            let r = send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[],
                Some(&json!({ "status": "in_progress", "priority": "high" })),
            );
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        if i % 5 == 4 {
            let r = send("DELETE", &format!("{url}/api/tasks/{id}"), &[], None);
            assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
        }
        created.push((key, body, id));
    }
    created
}

fn writers(urls: Vec<String>, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..2)
        .map(|c| {
            let urls = urls.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = 0;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let url = &urls[(c + i) % urls.len()];
                    let r = post(
                        url,
                        &format!("load{c}-{i}"),
                        &json!({ "title": format!("load {c} {i}") }),
                    );
                    acked += u64::from(r.status == 201);
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

fn assert_refused_writing_nothing(cluster: &Cluster, id: u64, output: &Output, says: &str) {
    assert!(!output.status.success(), "{}", text(output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(says),
        "expected {says:?}: {}",
        text(output)
    );
    assert!(data_dir_is_empty(cluster, id), "the data_dir was written");
}

#[test]
fn a_backup_under_writes_is_restored_as_a_new_three_node_cluster() {
    let mut cluster = start(3);
    let dir = tempfile::tempdir().unwrap();
    let created = history(&cluster.url(1), "before-", 45);
    let old_cluster_id = get(&format!("{}/api/cluster", cluster.url(1))).body["cluster_id"]
        .as_str()
        .unwrap()
        .to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let handles = writers(cluster.urls(), stop.clone());
    std::thread::sleep(Duration::from_millis(400));
    let file = backup(&cluster, dir.path());
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let acked: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(acked > 0, "the writers wrote while the backup ran");
    let (header, lines, _) = read_backup(&file);
    assert!(header.last_seq > 45, "{header:?}");

    // A node in use is refused, and keeps what it has.
    let running = restore(&cluster, 1, &file, &[]);
    assert!(!running.status.success(), "{}", text(&running));
    assert!(
        String::from_utf8_lossy(&running.stderr).contains("data_dir"),
        "{}",
        text(&running)
    );
    for id in 1..=3 {
        cluster.kill(id);
        std::fs::remove_dir_all(&cluster.node(id).data_dir).unwrap();
    }
    // A fresh data_dir over a used database: refused, nothing written.
    let used = restore(&cluster, 1, &file, &[]);
    assert_refused_writing_nothing(&cluster, 1, &used, "is not empty");
    assert!(event_rows(&cluster.mysql_url(1), u64::MAX).len() as u64 >= header.last_seq);
    for id in 1..=3 {
        wipe(&mut cluster, id);
    }

    // A damaged file: refused before anything is written.
    let bytes = std::fs::read(&file).unwrap();
    let truncated = dir.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let refused = restore(&cluster, 1, &truncated, &[]);
    assert_refused_writing_nothing(&cluster, 1, &refused, "backup refused");
    assert!(!database_exists(&cluster, 1), "a database was created");
    let corrupted = dir.path().join("corrupted.backup");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&corrupted, flipped).unwrap();
    let refused = restore(&cluster, 1, &corrupted, &[]);
    assert_refused_writing_nothing(&cluster, 1, &refused, "backup refused");
    assert!(!database_exists(&cluster, 1), "a database was created");

    let restored = restore(&cluster, 1, &file, &[]);
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        String::from_utf8_lossy(&restored.stdout).contains("first member of the new cluster"),
        "{}",
        text(&restored)
    );
    cluster.restart(1);
    assert_eq!(cluster.leader(Duration::from_secs(30)), 1);
    for id in [2, 3] {
        cluster.set_env(id, "TASKRAFT_JOIN", &cluster.url(1));
        cluster.restart(id);
    }
    let view = cluster.wait_membership(1, &[1, 2, 3], &[], Duration::from_secs(60));
    let new_cluster_id = view["cluster_id"].as_str().unwrap().to_string();
    assert_ne!(new_cluster_id, old_cluster_id, "a new cluster");

    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(60));
        let rows = event_rows(&cluster.mysql_url(id), header.last_seq);
        assert_eq!(rows.len(), lines.len(), "node {id}");
        assert!(
            rows == lines,
            "node {id}: the events differ from the backup's"
        );
        let check = cluster.rebuild_check(id);
        assert!(check.status.success(), "node {id}: {}", text(&check));
        let cluster_id =
            get(&format!("{}/api/cluster", cluster.url(id))).body["cluster_id"].clone();
        assert_eq!(cluster_id, new_cluster_id.as_str(), "node {id}");
    }

    // A key used before the backup gets its first outcome back, on any node.
    for (i, (key, body, id)) in created.iter().enumerate().take(6) {
        let url = cluster.url(1 + i as u64 % 3);
        let r = post(&url, key, body);
        assert_eq!(r.status, 201, "{key}: {:?}", r.body);
        assert_eq!(r.header("Idempotent-Replayed"), Some("true"), "{key}");
        assert_eq!(r.body["id"].as_str(), Some(id.as_str()), "{key}");
    }
    // And the new cluster takes writes after the restored events.
    for id in 1..=3 {
        let r = post(
            &cluster.url(id),
            &format!("after-{id}"),
            &json!({ "title": "after" }),
        );
        assert_eq!(r.status, 201, "node {id}: {:?}", r.body);
    }
    // After the restored events: the two members joining (each added,
    // then promoted) and the three writes, in one dense seq.
    let events = all_events(&cluster.url(1));
    let seqs = seqs(&events);
    let kinds: Vec<&str> = events[header.last_seq as usize..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=header.last_seq + 4 + 3).collect::<Vec<_>>(),
        "after the backup: {kinds:?}"
    );
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(
        (
            count("cluster_member_added"),
            count("cluster_member_promoted"),
            count("task_created")
        ),
        (2, 2, 3),
        "{kinds:?}"
    );
}

#[test]
fn a_point_in_time_restore_and_as_of_answer_the_fold_of_the_events_up_to_it() {
    let mut cluster = start(1);
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url(1);
    let created = history(&url, "k", 40);
    let file = backup(&cluster, dir.path());
    let (header, _, events) = read_backup(&file);
    let middle = header.last_seq / 2;
    let (at_middle, after_middle) = (&events[..middle as usize], &events[middle as usize..]);

    // as_of: the fold of the events up to the first one after the time.
    let time = at_middle.last().unwrap().at;
    let upto = events.iter().take_while(|e| e.at <= time).count();
    let r = get(&format!("{url}/api/tasks?as_of={time}"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["last_seq"], upto as u64);
    assert_eq!(
        by_id(r.body["tasks"].as_array().unwrap().clone()),
        fold(&events[..upto])
    );
    let board_at_time = r.body["tasks"].clone();
    let now = get(&format!(
        "{url}/api/tasks?as_of=2999-01-01T00:00:00%2B01:00"
    ));
    assert_eq!(now.status, 200, "{:?}", now.body);
    assert_eq!(
        by_id(now.body["tasks"].as_array().unwrap().clone()),
        by_id(all_tasks(&url, "linearizable"))
    );
    let before = get(&format!("{url}/api/tasks?as_of=2000-01-01T00:00:00Z"));
    assert_eq!(before.body["tasks"], json!([]), "{:?}", before.body);
    for bad in ["yesterday", "2026-13-01T00:00:00Z", ""] {
        let r = get(&format!("{url}/api/tasks?as_of={bad}"));
        assert_eq!(r.status, 400, "{bad:?}: {:?}", r.body);
        assert_eq!(r.error_code(), Some("validation_failed"), "{:?}", r.body);
    }
    let r = get(&format!("{url}/api/tasks?as_of={time}&status=todo"));
    assert_eq!(r.status, 400, "{:?}", r.body);

    // --until-seq past the backup: refused, nothing written.
    wipe(&mut cluster, 1);
    let beyond = (header.last_seq + 1).to_string();
    let refused = restore(&cluster, 1, &file, &["--until-seq", &beyond]);
    assert_refused_writing_nothing(&cluster, 1, &refused, "holds the events");
    assert!(!database_exists(&cluster, 1));

    let restored = restore(&cluster, 1, &file, &["--until-seq", &middle.to_string()]);
    assert!(restored.status.success(), "{}", text(&restored));
    cluster.restart(1);
    cluster.leader(Duration::from_secs(30));
    assert_eq!(by_id(all_tasks(&url, "linearizable")), fold(at_middle));
    assert_eq!(seqs(&all_events(&url)), (1..=middle).collect::<Vec<_>>());
    let check = cluster.rebuild_check(1);
    assert!(check.status.success(), "{}", text(&check));
    // A key whose write is kept is answered; one whose write was cut is new.
    let kept_task = at_middle
        .iter()
        .find(|e| e.kind == taskraft::task::EventKind::TaskCreated)
        .unwrap()
        .task_id
        .expect("a task event names its task")
        .to_string();
    let cut_task = after_middle
        .iter()
        .find(|e| e.kind == taskraft::task::EventKind::TaskCreated)
        .expect("a create after the middle")
        .task_id
        .expect("a task event names its task")
        .to_string();
    let (kept_key, kept_body, _) = created.iter().find(|(_, _, id)| *id == kept_task).unwrap();
    let r = post(&url, kept_key, kept_body);
    assert_eq!(
        r.header("Idempotent-Replayed"),
        Some("true"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["id"].as_str(), Some(kept_task.as_str()));
    let (cut_key, cut_body, _) = created.iter().find(|(_, _, id)| *id == cut_task).unwrap();
    let r = post(&url, cut_key, cut_body);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.header("Idempotent-Replayed"), None, "{cut_key} was cut");
    assert_ne!(r.body["id"].as_str(), Some(cut_task.as_str()));

    // --until TIME gives the board as_of answered for that time.
    wipe(&mut cluster, 1);
    let restored = restore(&cluster, 1, &file, &["--until", &time.to_string()]);
    assert!(restored.status.success(), "{}", text(&restored));
    cluster.restart(1);
    cluster.leader(Duration::from_secs(30));
    assert_eq!(
        by_id(all_tasks(&url, "linearizable")),
        by_id(board_at_time.as_array().unwrap().clone())
    );
    let check = cluster.rebuild_check(1);
    assert!(check.status.success(), "{}", text(&check));
}

/// An event history 0.3.0 wrote (before boards), with the tasks its node
/// served: `tests/fixtures/v0.3.0/`, recorded by running that version.
fn recorded_v030() -> (PathBuf, Vec<Value>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.3.0");
    let tasks: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("tasks.json")).unwrap()).unwrap();
    (dir.join("taskraft.backup"), tasks)
}

#[test]
fn events_recorded_by_0_3_0_replay_to_the_tasks_it_served_on_the_default_board() {
    let (file, served) = recorded_v030();
    assert!(served.len() > 10, "the recording holds tasks");
    let (header, _, events) = read_backup(&file);
    assert_eq!(header.taskraft_version, "0.3.0", "{header:?}");
    // The fold of this version gives what 0.3.0 served, byte for byte.
    assert_eq!(fold(&events), by_id(served.clone()));

    // And a three-node cluster restored from it (the first node from the
    // file, the others joining it and copying what it holds) serves the
    // same on every node, on the default board.
    let mut cluster = start(3);
    for id in 1..=3 {
        wipe(&mut cluster, id);
    }
    let restored = restore(&cluster, 1, &file, &[]);
    assert!(restored.status.success(), "{}", text(&restored));
    cluster.restart(1);
    cluster.leader(Duration::from_secs(30));
    for id in [2, 3] {
        cluster.set_env(id, "TASKRAFT_JOIN", &cluster.url(1));
        cluster.restart(id);
    }
    cluster.wait_membership(1, &[1, 2, 3], &[], Duration::from_secs(60));
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(60));
        let url = cluster.url(id);
        assert_eq!(
            by_id(all_tasks(&url, "linearizable")),
            by_id(served.clone()),
            "node {id}"
        );
        let check = cluster.rebuild_check(id);
        assert!(check.status.success(), "node {id}: {}", text(&check));
        let boards = get(&format!("{url}/api/boards")).body;
        let columns = boards["boards"][0]["columns"].as_array().unwrap().clone();
        for column in &columns {
            let key = column["key"].as_str().unwrap();
            let n = served.iter().filter(|t| t["status"] == key).count();
            assert_eq!(
                column["cards"], n as u64,
                "node {id}, column {key}: {boards:#}"
            );
            let page = get(&format!(
                "{url}/api/boards/00000000-0000-0000-0000-000000000001/tasks?column={}&limit=500",
                column["id"].as_str().unwrap()
            ));
            assert_eq!(page.status, 200, "{page:?}");
            assert_eq!(page.body["total"], n as u64);
        }
    }
    let url = cluster.url(1);

    // An old card moves to a new board like any other.
    let board = send(
        "POST",
        &format!("{url}/api/boards"),
        &[],
        Some(&json!({ "name": "New" })),
    );
    assert_eq!(board.status, 201, "{board:?}");
    let id = served[0]["id"].as_str().unwrap();
    let moved = send(
        "PATCH",
        &format!("{url}/api/tasks/{id}"),
        &[],
        Some(&json!({ "board_id": board.body["id"] })),
    );
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["board_id"], board.body["id"]);
    assert_eq!(
        moved.body["status"], served[0]["status"],
        "the column of its key"
    );
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(60));
        let check = cluster.rebuild_check(id);
        assert!(check.status.success(), "node {id}: {}", text(&check));
    }
}
