//! The node's MySQL side, safe by construction (issue 11, item 3):
//!
//! - every column of every table round-trips, byte for byte, through both
//!   writers: the bound values (prepared statements) and the SQL literals
//!   the applier sends, against a real private MariaDB;
//! - a node whose account has no DDL rights (no CREATE, DROP, ALTER,
//!   TRIGGER) runs on an already-migrated schema; migrations run with a
//!   separate, stronger account (`mysql_migrate_url`).

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::*;
use serde_json::json;
use taskraft::db::rows::{
    self, event_columns_from_row, placeholders, task_from_row, EventRecord, KeyRow, EVENT, KEY,
    LABEL, TASK,
};
use taskraft::db::sql::Sql;
use taskraft::mysqld::{self, PrivateMysql, ServerOptions};
use taskraft::task::{EventKind, Priority, Status, Task, TaskId};
use taskraft::time::{Date, Timestamp};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Text that breaks naive escaping in every way we know.
const NASTY: &[&str] = &[
    "it's \"quoted\" \\ back\\slash\\",
    "'); DROP TABLE tasks; --",
    "\u{0}nul \u{1a}sub \r\n\t \u{1}",
    "🦀🚀 ünïcödé 中文 \u{2028}\u{2029}",
    "%_ \\% \\_ `tick`",
    "\\",
    "",
];

fn task(i: usize, text: &str) -> Task {
    Task {
        id: TaskId::generate(),
        title: format!("{i}{text}").chars().take(200).collect(),
        description: text.repeat(50),
        status: Status::ALL[i % 3],
        position: [
            0.1 + 0.2,
            -2.5e-300,
            5e-324,
            999_999_999_999_999.9,
            1.0 / 3.0,
        ][i % 5],
        priority: Priority::Urgent,
        assignee: i
            .is_multiple_of(2)
            .then(|| format!("O'{i}{}", text.chars().take(20).collect::<String>())),
        labels: vec![format!("l{i}'\\"), "Ops".into(), "ops".into()],
        due_date: (!i.is_multiple_of(3)).then(|| Date::parse("2026-02-28").unwrap()),
        version: u64::MAX - i as u64,
        created_at: Timestamp(1_795_774_512_345),
        updated_at: Timestamp(1_795_774_512_999 + i as i64),
        archived: false,
        board_id: taskraft::task::DEFAULT_BOARD,
        column_id: None,
    }
}

#[test]
fn every_column_round_trips_through_both_writers() {
    let dir = tempfile::tempdir().unwrap();
    let server = PrivateMysql::start(
        &dir.path().join("mysql"),
        ServerOptions::on_port(mysqld::free_port()),
    )
    .expect("a private MariaDB");
    let url = server.url("taskraft_columns");
    runtime().block_on(async {
        let pool = taskraft::db::connect(&url, 2).await.unwrap();
        let mut conn = pool.get_conn().await.unwrap();
        taskraft::db::migrate::run(&mut conn).await.unwrap();

        for (i, text) in NASTY.iter().enumerate() {
            // tasks: literal, then bound, each read back.
            let literal = task(i, text);
            let mut sql = Sql::new();
            sql.push("INSERT INTO tasks (")
                .push(TASK.columns)
                .push(") VALUES ");
            rows::write_task(&mut sql, &literal);
            conn.query_drop(sql.into_string()).await.unwrap();
            let bound = task(i + 100, text);
            let mut sql = Sql::new();
            sql.push("INSERT INTO tasks (")
                .push(TASK.columns)
                .push(") VALUES ");
            placeholders(&mut sql, &TASK, 1);
            conn.exec_drop(sql.into_string(), rows::task_values(&bound))
                .await
                .unwrap();
            for written in [&literal, &bound] {
                let row: mysql_async::Row = conn
                    .exec_first(
                        taskraft::db::queries::select(TASK.columns, " FROM tasks WHERE id = ?"),
                        (written.id.to_string(),),
                    )
                    .await
                    .unwrap()
                    .expect("the row");
                let read = task_from_row(row).unwrap();
                assert_eq!(&read, written, "tasks row {i} through {text:?}");
                assert_eq!(read.position.to_bits(), written.position.to_bits());
            }

            // task_labels, both ways.
            let label = format!("{i}{}", text.chars().take(30).collect::<String>());
            let mut sql = Sql::new();
            sql.push("INSERT INTO task_labels (")
                .push(LABEL.columns)
                .push(") VALUES ");
            rows::write_label(&mut sql, &literal, &label);
            conn.query_drop(sql.into_string()).await.unwrap();
            let mut sql = Sql::new();
            sql.push("INSERT INTO task_labels (")
                .push(LABEL.columns)
                .push(") VALUES ");
            placeholders(&mut sql, &LABEL, 1);
            conn.exec_drop(
                sql.into_string(),
                rows::label_values(&bound, &label),
            )
            .await
            .unwrap();
            for task in [&literal, &bound] {
                // The label and the task's copied columns (V7).
                let read: Vec<(String, String, f64, String, Option<String>)> = conn
                    .exec(
                        "SELECT label, status, position, priority, assignee FROM task_labels WHERE task_id = ?",
                        (task.id.to_string(),),
                    )
                    .await
                    .unwrap();
                assert_eq!(read.len(), 1);
                let (read_label, status, position, priority, assignee) = &read[0];
                assert_eq!(read_label, &label);
                assert_eq!(status, task.status.as_str());
                assert_eq!(position.to_bits(), task.position.to_bits());
                assert_eq!(priority, task.priority.as_str());
                assert_eq!(assignee, &task.assignee);
            }

            // task_events, both ways, payload byte for byte.
            let payload = format!(r#"{{"task":{{"title":"{}"}}}}"#, text.escape_default());
            let payload = format!("{payload}{text}");
            let mut records = Vec::new();
            for (k, seq) in [(0u128, 2 * i as u64 + 1), (1, 2 * i as u64 + 2)] {
                records.push(EventRecord {
                    seq,
                    raft_index: u64::MAX - seq,
                    ordinal: u32::MAX - k as u32,
                    term: 7,
                    event_id: uuid::Uuid::from_u128(10_000 + seq as u128),
                    task_id: Some(literal.id),
                    kind: [EventKind::TaskCreated, EventKind::TaskDeleted][k as usize],
                    payload: &payload,
                    at: Timestamp(1_795_774_512_345 + seq as i64),
                    request_id: uuid::Uuid::from_u128(20_000 + seq as u128),
                    board_id: (k == 0).then_some(taskraft::task::BoardId(
                        uuid::Uuid::from_u128(30_000 + seq as u128),
                    )),
                    actor_id: format!("u{i}-'\\\"`"),
                });
            }
            let mut sql = Sql::new();
            sql.push("INSERT INTO task_events (")
                .push(EVENT.columns)
                .push(") VALUES ");
            rows::write_event(&mut sql, &records[0]);
            conn.query_drop(sql.into_string()).await.unwrap();
            let mut sql = Sql::new();
            sql.push("INSERT INTO task_events (")
                .push(EVENT.columns)
                .push(") VALUES ");
            placeholders(&mut sql, &EVENT, 1);
            conn.exec_drop(sql.into_string(), rows::event_values(&records[1]))
                .await
                .unwrap();
            for record in &records {
                let row: mysql_async::Row = conn
                    .exec_first(
                        taskraft::db::queries::select(
                            EVENT.columns,
                            " FROM task_events WHERE seq = ?",
                        ),
                        (record.seq,),
                    )
                    .await
                    .unwrap()
                    .expect("the event");
                let (read, read_payload) = event_columns_from_row(row).unwrap();
                assert_eq!(read_payload, payload, "payload {i} byte for byte");
                assert_eq!(
                    format!(
                        "{:?}",
                        EventRecord {
                            payload: "",
                            ..record.clone()
                        }
                    ),
                    format!("{read:?}"),
                    "event {i}"
                );
            }

            // idempotency_keys, both ways.
            let keys = [
                KeyRow {
                    key: format!("k{i}-'\\\"`"),
                    fingerprint: "0123456789abcdef".into(),
                    raft_index: u64::MAX - i as u64,
                    outcome: format!("{{\"x\":\"{}\"}}{text}", text.escape_default()),
                    created_at: taskraft::time::Timestamp(1_795_774_512_345),
                },
                KeyRow {
                    key: format!("b{i}-\\\\''"),
                    fingerprint: "fedcba9876543210".into(),
                    raft_index: i as u64,
                    outcome: text.to_string(),
                    created_at: taskraft::time::Timestamp(i as i64),
                },
            ];
            let mut sql = Sql::new();
            sql.push("INSERT INTO idempotency_keys (")
                .push(KEY.columns)
                .push(") VALUES ");
            keys[0].write(&mut sql);
            conn.query_drop(sql.into_string()).await.unwrap();
            let mut sql = Sql::new();
            sql.push("INSERT INTO idempotency_keys (")
                .push(KEY.columns)
                .push(") VALUES ");
            placeholders(&mut sql, &KEY, 1);
            conn.exec_drop(sql.into_string(), keys[1].values())
                .await
                .unwrap();
            for key in &keys {
                let row: mysql_async::Row = conn
                    .exec_first(
                        taskraft::db::queries::select(
                            KEY.columns,
                            " FROM idempotency_keys WHERE idem_key = ?",
                        ),
                        (key.key.clone(),),
                    )
                    .await
                    .unwrap()
                    .expect("the key");
                assert_eq!(&KeyRow::from_row(row).unwrap(), key);
            }
        }
        drop(conn);
        pool.disconnect().await.unwrap();
    });
}

/// Runs `statements` as root on the cluster's server.
fn as_root(base: &str, statements: &[String]) {
    let base = base.to_string();
    let statements = statements.to_vec();
    runtime().block_on(async move {
        let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&base).unwrap())
            .await
            .unwrap();
        for statement in statements {
            conn.query_drop(&statement).await.unwrap();
        }
        conn.disconnect().await.unwrap();
    });
}

/// `mysql://USER@host:port/db` from the root URL of the same database.
fn as_user(url: &str, user: &str) -> String {
    url.replacen("mysql://root@", &format!("mysql://{user}:pw@"), 1)
}

#[test]
fn a_node_whose_account_has_no_ddl_rights_runs_on_a_migrated_schema() {
    let mut cluster = Cluster::start_after(1, &[], &[], |cluster| {
        let root = cluster.mysql_url(1);
        let database = root.rsplit('/').next().unwrap().to_string();
        // The node's account: rows only. The migration account: everything
        // on this database.
        as_root(
            cluster.mysql_base(),
            &[
                "CREATE USER 'node'@'127.0.0.1' IDENTIFIED BY 'pw'".into(),
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO 'node'@'127.0.0.1'"
                ),
                "CREATE USER 'migrate'@'127.0.0.1' IDENTIFIED BY 'pw'".into(),
                format!("GRANT ALL PRIVILEGES ON `{database}`.* TO 'migrate'@'127.0.0.1'"),
            ],
        );
        cluster.set_env(1, "TASKRAFT_MYSQL_URL", &as_user(&root, "node"));
        cluster.set_env(1, "TASKRAFT_MYSQL_MIGRATE_URL", &as_user(&root, "migrate"));
    });
    let url = cluster.url(1);
    let created = create(&url, json!({"title": "made by a node without DDL rights"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();

    // Without the migration account, on the migrated schema: runs as well.
    cluster.terminate(1, Duration::from_secs(20));
    let root = cluster.mysql_url(1);
    cluster.set_env(1, "TASKRAFT_MYSQL_MIGRATE_URL", "");
    cluster.restart(1);
    let patched = send(
        "PATCH",
        &format!("{url}/api/tasks/{id}"),
        &[("Idempotency-Key", "no-ddl-1")],
        Some(&json!({"description": "still \\ fine 🦀", "labels": ["a", "b"]})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let deleted = send("DELETE", &format!("{url}/api/tasks/{id}"), &[], None);
    assert_eq!(deleted.status, 204);

    // The node's account really cannot change the schema.
    let node = as_user(&root, "node");
    let refused = runtime().block_on(async move {
        let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&node).unwrap())
            .await
            .unwrap();
        let mut codes = Vec::new();
        for ddl in [
            "DROP TABLE task_labels",
            "ALTER TABLE tasks ADD COLUMN x INT",
            "DROP TRIGGER task_events_no_update",
            "CREATE TABLE x (a INT)",
        ] {
            match conn.query_drop(ddl).await {
                Err(mysql_async::Error::Server(e)) => codes.push(e.code),
                other => panic!("{ddl}: {other:?}"),
            }
        }
        codes
    });
    assert!(
        refused.iter().all(|code| [1142, 1044, 1227].contains(code)),
        "access denied every time: {refused:?}"
    );
    let check = cluster.rebuild_check(1);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A private server starting never deletes another's temporary tables.
/// MariaDB deletes every `#sql*` file of its tmpdir when it starts; with
/// `/tmp` shared, a test's server starting beside another took the other's
/// on-disk temporary tables (a migration then failed with "Error on delete
/// of '/tmp/#sql-temptable-…' (Errcode: 2)"). Each server has its own.
#[test]
fn a_private_server_starting_leaves_anothers_temporary_tables_alone() {
    let dir = tempfile::tempdir().unwrap();
    let template = mysqld::template(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
        .expect("a MariaDB template data directory");
    let options = || ServerOptions {
        template: Some(template.clone()),
        ..ServerOptions::on_port(mysqld::free_port())
    };
    let first =
        PrivateMysql::start(&dir.path().join("first"), options()).expect("a private MariaDB");
    runtime().block_on(async {
        let mut conn = mysql_async::Conn::from_url(first.url("mysql"))
            .await
            .unwrap();
        conn.query_drop("CREATE TEMPORARY TABLE held (x INT) ENGINE = Aria")
            .await
            .unwrap();
        conn.query_drop("INSERT INTO held VALUES (1)")
            .await
            .unwrap();
        let second = PrivateMysql::start(&dir.path().join("second"), options())
            .expect("a second private MariaDB");
        conn.query_drop("DROP TEMPORARY TABLE held")
            .await
            .expect("the first server's temporary table is still whole");
        conn.disconnect().await.unwrap();
        drop(second);
    });
}
