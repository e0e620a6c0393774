//! Full-text search and the list's filters on a real cluster: every filter
//! combination the API offers is read through an index (EXPLAIN of the
//! very statements the node runs, no full scan of tasks or task_labels, a
//! page costs about its size), answers exactly what filtering every task
//! would, pages without gaps or repeats; the ranked search orders by
//! relevance, pages through ties, and hostile text gets a 4xx or an
//! answer, never a 5xx.

mod common;

use std::collections::BTreeSet;

use common::*;
use mysql_async::prelude::*;
use serde_json::{json, Value};
use taskraft::db::queries::{
    column_statement, read_statement, Range, Select, Statement, TaskFilter,
};
use taskraft::db::search::{
    choose_plan, filtered_statement, rows_statement, search_statement, CommentPlan, Plan, Planner,
    RankCursor, Scope, SearchFilter, Sizes, Words, WINDOW,
};
use taskraft::task::catalog::fixed_column;
use taskraft::task::{BoardId, Priority, Status, TaskId};

const ASSIGNEES: [Option<&str>; 4] = [Some("alice"), Some("bob"), Some("O'Brien"), None];
const LABELS: [&str; 3] = ["ops", "ui", "db"];
const WORDS: [&str; 8] = [
    "deploy",
    "pipeline",
    "kubernetes",
    "invoice",
    "printer",
    "database",
    "migration",
    "cache",
];

const DEFAULT_BOARD: &str = "00000000-0000-0000-0000-000000000001";

/// `n` tasks with every status, assignee, priority and label mix, and
/// titles and descriptions of words from [`WORDS`]; on the default board,
/// or, given `columns`, on their board, in turn (the column's category is
/// the status).
fn seed(url: &str, n: usize, columns: &[String]) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let labels: Vec<&str> = LABELS
                .iter()
                .enumerate()
                .filter(|(b, _)| (i >> b) & 1 == 1)
                .map(|(_, l)| *l)
                .collect();
            let title = format!("{} {} item{i}", WORDS[i % 8], WORDS[(i / 8) % 8]);
            let description = format!(
                "about the {} and {}",
                WORDS[(i * 3) % 8],
                WORDS[(i + 5) % 8]
            );
            let mut body = json!({
                "title": title,
                "description": description,
                "status": Status::ALL[i % 3].as_str(),
                "priority": Priority::ALL[(i / 3) % 4].as_str(),
                "labels": labels,
            });
            if let Some(a) = ASSIGNEES[(i / 2) % 4] {
                body["assignee"] = json!(a);
            }
            if i % 5 == 0 {
                // Ties on position: the id orders them.
                body["position"] = json!(1000.0);
            }
            if !columns.is_empty() {
                body.as_object_mut().unwrap().remove("status");
                body["column_id"] = json!(columns[i % columns.len()]);
            }
            let r = create(url, body);
            assert_eq!(r.status, 201, "{r:?}");
            r.body
        })
        .collect()
}

/// The words of `text` as InnoDB's parser cuts them, lower-cased.
fn text_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `task` is on the default board and not archived: the list's.
fn listed(task: &Value) -> bool {
    task["board_id"].as_str().unwrap_or(DEFAULT_BOARD) == DEFAULT_BOARD && task["archived"] != true
}

/// What a filter of the list should answer, by looking at every task.
fn expected(all: &[Value], filter: &[(&str, String)]) -> Vec<String> {
    matching(all.iter().filter(|t| listed(t)), filter)
}

/// The ids of `tasks` that pass `filter`, in board order.
fn matching<'a>(tasks: impl Iterator<Item = &'a Value>, filter: &[(&str, String)]) -> Vec<String> {
    let rank = |s: &str| Status::ALL.iter().position(|x| x.as_str() == s).unwrap();
    let mut hits: Vec<&Value> = tasks
        .filter(|t| {
            filter.iter().all(|(k, v)| match *k {
                "status" | "priority" | "column_id" => t[*k] == v.as_str(),
                "assignee" => t["assignee"].as_str() == Some(v),
                "label" => t["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l == v.as_str()),
                "q" => {
                    let have: Vec<String> = text_words(&format!(
                        "{} {}",
                        t["title"].as_str().unwrap(),
                        t["description"].as_str().unwrap()
                    ));
                    Words::parse(v)
                        .unwrap()
                        .as_slice()
                        .iter()
                        .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
                }
                _ => unreachable!(),
            })
        })
        .collect();
    hits.sort_by(|a, b| {
        (rank(a["status"].as_str().unwrap()))
            .cmp(&rank(b["status"].as_str().unwrap()))
            .then(
                a["position"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["position"].as_f64().unwrap()),
            )
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    hits.iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of `/api/tasks?query`, `limit` at a time: the ids in order.
fn paged(url: &str, query: &str, limit: usize) -> Vec<String> {
    paged_at(&format!("{url}/api/tasks?limit={limit}{query}"), limit)
}

/// Every page from `first` (a list or a board's column), `limit` at a time.
fn paged_at(first: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut q = first.to_string();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let r = get(&q);
        assert_eq!(r.status, 200, "{q}: {r:?}");
        let page = r.body["tasks"].as_array().unwrap();
        assert!(page.len() <= limit);
        ids.extend(page.iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
    panic!("{first}: more than 1000 pages");
}

/// Every subset of the list's filters (status, assignee, label, priority,
/// q), with values the seeded tasks have.
fn combinations() -> Vec<Vec<(&'static str, String)>> {
    let values: [(&str, String); 5] = [
        ("status", "in_progress".into()),
        ("assignee", "O'Brien".into()),
        ("label", "ops".into()),
        ("priority", "high".into()),
        ("q", "deploy".into()),
    ];
    (0..1u32 << values.len())
        .map(|mask| {
            values
                .iter()
                .enumerate()
                .filter(|(i, _)| mask >> i & 1 == 1)
                .map(|(_, v)| v.clone())
                .collect()
        })
        .collect()
}

fn to_filter(combo: &[(&str, String)], limit: usize) -> TaskFilter {
    let mut filter = TaskFilter {
        limit,
        ..TaskFilter::default()
    };
    for (k, v) in combo {
        match *k {
            "status" => filter.status = Some(v.parse().unwrap()),
            "assignee" => filter.assignee = Some(v.clone()),
            "label" => filter.label = Some(v.clone()),
            "priority" => filter.priority = Some(v.parse().unwrap()),
            "q" => filter.text = Some(Words::parse(v).unwrap()),
            _ => unreachable!(),
        }
    }
    filter
}

/// EXPLAIN (or ANALYZE) of `statement` on a node's database.
fn explain(mysql_url: &str, how: &str, statement: &Statement) -> Vec<mysql_async::Row> {
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql_url).await.unwrap();
        let rows: Vec<mysql_async::Row> = conn
            .exec(format!("{how} {}", statement.sql), statement.params.clone())
            .await
            .unwrap_or_else(|e| panic!("{how} {}: {e}", statement.sql));
        conn.disconnect().await.unwrap();
        rows
    })
}

fn field(row: &mysql_async::Row, name: &str) -> String {
    row.get::<Option<String>, _>(name)
        .flatten()
        .unwrap_or_default()
}

/// Checks `statement`'s plan: every table read through an index, in index
/// order without text; without text or a filter left to check row by row,
/// a page of 8 reads at most 8 rows, wherever its cursor is.
fn read_through_an_index(mysql: &str, filter: &TaskFilter, statement: &Statement, what: &str) {
    let plan = explain(mysql, "EXPLAIN", statement);
    assert!(!plan.is_empty());
    for row in &plan {
        let table = field(row, "table");
        let kind = field(row, "type");
        let key = field(row, "key");
        let extra = field(row, "Extra");
        let described = format!(
            "{what}: {table} {kind} key={key} {extra}\n{}",
            statement.sql
        );
        assert!(
            ["const", "eq_ref", "ref", "range", "fulltext"].contains(&kind.as_str()),
            "a full scan: {described}"
        );
        assert!(!key.is_empty(), "no index: {described}");
        if filter.text.is_none() {
            assert!(
                !extra.contains("filesort"),
                "not in index order: {described}"
            );
        } else if table == "t" {
            assert_eq!(key, "tasks_text", "{described}");
        }
    }
    let residual = filter.assignee.is_some() && filter.priority.is_some();
    if filter.text.is_none() && !residual {
        let analyzed = explain(mysql, "ANALYZE", statement);
        let read: f64 = field(&analyzed[0], "r_rows")
            .parse()
            .unwrap_or_else(|e| panic!("r_rows of {:?}: {e}", analyzed[0]));
        assert!(
            read <= 8.0,
            "{what}: read {read} rows for a page of 8\n{}",
            statement.sql
        );
    }
}

#[test]
fn every_filter_combination_reads_an_index_and_answers_what_filtering_every_task_would() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let mut all = seed(&url, 180, &[]);
    // Another board's cards, with the same labels, assignees and words:
    // the list never shows them, and a filtered page of the list does not
    // read them either (the filter indexes start with the column).
    let board = send(
        "POST",
        &format!("{url}/api/boards"),
        &[],
        Some(&json!({ "name": "Elsewhere" })),
    );
    assert_eq!(board.status, 201, "{board:?}");
    let board_id = board.body["id"].as_str().unwrap().to_string();
    let columns: Vec<String> = board.body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let mut others = seed(&url, 150, &columns);

    // Moves and edits: the label rows follow their task (status, position,
    // priority, assignee are copied into task_labels).
    for (i, task) in all.iter_mut().enumerate().filter(|(i, _)| i % 7 == 0) {
        let id = task["id"].as_str().unwrap().to_string();
        let patch = json!({
            "status": Status::ALL[(i + 1) % 3].as_str(),
            "position": (i as f64) / 7.0,
            "priority": Priority::ALL[(i + 2) % 4].as_str(),
            "assignee": ASSIGNEES[(i + 1) % 4],
            "labels": ["ops"],
        });
        let r = send("PATCH", &format!("{url}/api/tasks/{id}"), &[], Some(&patch));
        assert_eq!(r.status, 200, "{r:?}");
        *task = r.body;
    }
    // Archived cards leave the list and the column pages (label rows too).
    for task in all.iter_mut().chain(others.iter_mut()).step_by(11) {
        let id = task["id"].as_str().unwrap().to_string();
        let patch = json!({ "archived": true });
        let r = send("PATCH", &format!("{url}/api/tasks/{id}"), &[], Some(&patch));
        assert_eq!(r.status, 200, "{r:?}");
        *task = r.body;
    }
    let mysql = cluster.mysql_url(1);
    let combos = combinations();
    assert_eq!(combos.len(), 32);
    let mut nonempty = 0;
    for combo in &combos {
        let query: String = combo
            .iter()
            .map(|(k, v)| format!("&{k}={}", urlencode(v)))
            .collect();
        // Correct, in board order, across pages (7 a page: a column ends
        // mid-page and the next continues it).
        let want = expected(&all, combo);
        nonempty += usize::from(!want.is_empty());
        assert_eq!(paged(&url, &query, 7), want, "?{query}");
        assert_eq!(paged(&url, &query, 1000), want, "?{query} in one page");

        // The plan of each statement, first page and after a cursor.
        let filter = to_filter(combo, 7);
        // A cursor two thirds into the in-progress column.
        let column = expected(&all, &[("status", "in_progress".into())]);
        let deep = &column[column.len() * 2 / 3];
        let mid = all.iter().find(|t| t["id"] == deep.as_str()).map(|t| {
            (
                t["position"].as_f64().unwrap(),
                t["id"].as_str().unwrap().parse::<TaskId>().unwrap(),
            )
        });
        for status in Status::ALL {
            for after in [None, mid] {
                let statement = column_statement(&filter, &[fixed_column(status)], false, after, 8);
                let what = format!("?{query} ({status:?}, cursor {})", after.is_some());
                read_through_an_index(&mysql, &filter, &statement, &what);
                // Where a budget of 8 cards ends, without text (a read
                // by common words looks there first): the index alone.
                if filter.text.is_none() {
                    let range = Range {
                        after,
                        through: None,
                    };
                    let key = read_statement(
                        &filter,
                        &[fixed_column(status)],
                        false,
                        range,
                        Select::KeyAt(8),
                    );
                    let what = format!("{what}, the 8th card's key");
                    read_through_an_index(&mysql, &filter, &key, &what);
                    if !(filter.assignee.is_some() && filter.priority.is_some()) {
                        for row in explain(&mysql, "EXPLAIN", &key) {
                            let extra = field(&row, "Extra");
                            assert!(extra.contains("Using index"), "{what}: {extra}");
                        }
                    }
                }
            }
        }
    }
    assert!(nonempty >= 20, "the seed exercises the filters: {nonempty}");

    // A column of another board, under every filter: the same answers as
    // looking at its cards, through the same indexes.
    let mut nonempty = 0;
    for combo in combos
        .iter()
        .filter(|c| c.iter().all(|(k, _)| *k != "status"))
    {
        let query: String = combo
            .iter()
            .map(|(k, v)| format!("&{k}={}", urlencode(v)))
            .collect();
        let filter = to_filter(combo, 7);
        for column in &columns {
            let on_column = others
                .iter()
                .filter(|t| t["column_id"] == column.as_str() && t["archived"] != true);
            let want = matching(on_column, combo);
            nonempty += usize::from(!want.is_empty());
            let first = format!("{url}/api/boards/{board_id}/tasks?column={column}&limit=7{query}");
            assert_eq!(paged_at(&first, 7), want, "{first}");
            let column: taskraft::task::ColumnId = column.parse().unwrap();
            let mid = want.get(want.len() / 2).map(|id| {
                let t = others.iter().find(|t| t["id"] == id.as_str()).unwrap();
                (
                    t["position"].as_f64().unwrap(),
                    id.parse::<TaskId>().unwrap(),
                )
            });
            for after in [None, mid] {
                let statement = column_statement(&filter, &[column], false, after, 8);
                let what = format!(
                    "board ?{query} (column {column}, cursor {})",
                    after.is_some()
                );
                read_through_an_index(&mysql, &filter, &statement, &what);
            }
        }
    }
    assert!(
        nonempty >= 20,
        "the seed exercises the board's filters: {nonempty}"
    );
    // Filters take one column: on the archived cards of the whole board, a
    // 400 that says so.
    let r = get(&format!(
        "{url}/api/boards/{board_id}/tasks?archived=true&label=ops"
    ));
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"]["field"], "column", "{r:?}");
    let r = get(&format!(
        "{url}/api/boards/{board_id}/tasks?column={}&q=%2B%2B",
        columns[0]
    ));
    assert_eq!(r.status, 400, "a q with no word: {r:?}");

    // A common word (here: by fiat) is checked on the rows the filters'
    // index reads in board order, not through the FULLTEXT index: the same
    // answer, in index order.
    for combo in combos.iter().filter(|c| c.iter().any(|(k, _)| *k == "q")) {
        let mut filter = to_filter(combo, 1000);
        filter.common = 1;
        let mut got = Vec::new();
        for status in Status::ALL {
            if filter.status.is_some_and(|s| s != status) {
                continue;
            }
            let statement = column_statement(&filter, &[fixed_column(status)], false, None, 1000);
            for row in explain(&mysql, "EXPLAIN", &statement) {
                let described = format!("{combo:?} ({status:?}): {row:?}\n{}", statement.sql);
                assert!(
                    ["const", "eq_ref", "ref", "range"].contains(&field(&row, "type").as_str()),
                    "{described}"
                );
                assert!(!field(&row, "Extra").contains("filesort"), "{described}");
            }
            let rows: Vec<(String,)> = block_on(async {
                let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
                let rows = conn
                    .exec(
                        format!("SELECT t.id FROM ({}) t", statement.sql),
                        statement.params,
                    )
                    .await
                    .unwrap();
                conn.disconnect().await.unwrap();
                rows
            });
            got.extend(rows.into_iter().map(|(id,)| id));
        }
        assert_eq!(got, expected(&all, combo), "{combo:?}");
    }

    // The ranked search: the FULLTEXT index (on the rare words), or the
    // newest tasks by primary key (every word common), never a scan; the
    // boards the user sees in the statement.
    let words = Words::parse("deploy pipeline").unwrap();
    let oldest: String = all
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .min()
        .unwrap();
    let newest = Plan::Newest {
        from: oldest.parse().unwrap(),
        window: WINDOW,
    };
    let scopes = [
        Scope::All,
        Scope::Boards(vec![BoardId::default()]),
        Scope::Boards(vec![
            BoardId::default(),
            "0192f0c4-0000-7000-8000-00000000000b".parse().unwrap(),
        ]),
    ];
    for plan in [
        Plan::Fulltext { common: 0 },
        Plan::Fulltext { common: 1 },
        newest.clone(),
    ] {
        let cursor = RankCursor {
            score: 0.5,
            id: TaskId::generate(),
            plan: plan.clone(),
            comments: CommentPlan::default(),
        };
        for scope in &scopes {
            for after in [None, Some(&cursor)] {
                let (sql, params) = search_statement(&words, &plan, scope, after, 21);
                // Regression: sorting the matches with their text (MEDIUMTEXT:
                // an on-disk Aria temporary table) crashed MariaDB 10.11.19
                // under concurrent searches; only (id, score, where) is kept
                // and sorted, whatever the branches select.
                assert!(
                    sql.starts_with("SELECT id, MAX(s) AS score, MIN(c) AS comments_only FROM ("),
                    "{sql}"
                );
                let plan_rows = explain(&mysql, "EXPLAIN", &Statement { sql, params });
                // The cards' text through tasks_text, or the newest cards by
                // primary key; the comments through comments_text (read by
                // regular expression, the comments of the newest cards made a
                // search 33 times slower); a comment's card by its key.
                let reads: BTreeSet<(String, String, String)> = plan_rows
                    .iter()
                    .filter(|row| !field(row, "table").starts_with('<'))
                    .map(|row| (field(row, "table"), field(row, "type"), field(row, "key")))
                    .collect();
                let read = |table: &str, how: &str, key: &str| {
                    (table.to_string(), how.to_string(), key.to_string())
                };
                let want: BTreeSet<_> = if let Plan::Newest { .. } = plan {
                    [
                        read("tasks", "range", "PRIMARY"),
                        read("comments", "fulltext", "comments_text"),
                        read("tasks", "eq_ref", "PRIMARY"),
                    ]
                    .into()
                } else {
                    [
                        read("tasks", "fulltext", "tasks_text"),
                        read("comments", "fulltext", "comments_text"),
                        read("tasks", "eq_ref", "PRIMARY"),
                    ]
                    .into()
                };
                assert_eq!(reads, want, "{plan:?} {scope:?} {after:?}: {plan_rows:?}");
            }
        }
    }
    // Every plan answers every match (here every task is among the newest),
    // and pages through its order without gaps or repeats.
    for text in [
        "deploy pipeline",
        "invoice",
        "print data",
        "cache migration kubernetes",
    ] {
        let words = Words::parse(text).unwrap();
        // Every board's cards, archived ones too (they stay searchable).
        let want: BTreeSet<String> =
            matching(all.iter().chain(others.iter()), &[("q", text.to_string())])
                .into_iter()
                .collect();
        let n = words.as_slice().len();
        let mut plans = vec![Plan::Fulltext { common: 0 }, newest.clone()];
        if n > 1 {
            plans.push(Plan::Fulltext { common: 1 });
            plans.push(Plan::Fulltext {
                common: (1 << n) - 2,
            });
        }
        for plan in plans {
            assert!(plan.fits(&words));
            let mut seen: Vec<String> = Vec::new();
            let mut after: Option<RankCursor> = None;
            loop {
                let (sql, params) = search_statement(&words, &plan, &Scope::All, after.as_ref(), 4);
                let page: Vec<(String, f64, u8)> = block_on(async {
                    let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
                    let rows = conn.exec(sql, params).await.unwrap();
                    conn.disconnect().await.unwrap();
                    rows
                });
                if let (Some(a), Some(b)) = (&after, page.first()) {
                    assert!(b.1 <= a.score, "{text} {plan:?}: ordered across pages");
                }
                for pair in page.windows(2) {
                    assert!(pair[1].1 <= pair[0].1, "{text} {plan:?}: {page:?}");
                }
                seen.extend(page.iter().map(|(id, ..)| id.clone()));
                match page.last() {
                    Some((id, score, _)) if page.len() == 4 => {
                        after = Some(RankCursor {
                            score: *score,
                            id: id.parse().unwrap(),
                            plan: plan.clone(),
                            comments: CommentPlan::default(),
                        })
                    }
                    _ => break,
                }
            }
            let got: BTreeSet<String> = seen.iter().cloned().collect();
            assert_eq!(got.len(), seen.len(), "{text} {plan:?}: no repeats");
            assert_eq!(got, want, "{text} {plan:?}");
        }
    }
    // The plan: the index for few tasks; with small sizes, a word in every
    // task is common (the newest tasks, alone; a regular expression, with a
    // word in none).
    let mut ids: Vec<String> = all
        .iter()
        .chain(others.iter())
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let choose = |text: &str, sizes: Sizes| -> Plan {
        block_on(async {
            let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
            let plan = choose_plan(&mut conn, &Words::parse(text).unwrap(), sizes)
                .await
                .unwrap();
            conn.disconnect().await.unwrap();
            plan
        })
    };
    assert_eq!(
        choose("item", Sizes::DEFAULT),
        Plan::Fulltext { common: 0 },
        "330 tasks"
    );
    let small = Sizes {
        window: 100,
        probe: 50,
        common_matches: 40,
        newest_matches: 1000,
    };
    assert_eq!(
        choose("item", small),
        Plan::Newest {
            from: ids[ids.len() - 100].parse().unwrap(),
            window: 100,
        },
        "more matches wanted than the window holds: the whole window"
    );
    // "item" is in every task: 40 tasks hold 40 matches.
    let fitted = Sizes {
        newest_matches: 40,
        ..small
    };
    assert_eq!(
        choose("item", fitted),
        Plan::Newest {
            from: ids[ids.len() - 40].parse().unwrap(),
            window: 40,
        }
    );
    // For a user whose boards hold half the cards: twice the tasks.
    let on_half = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        let plan = Planner::new(fitted)
            .plan(&mut conn, &Words::parse("item").unwrap(), 0.5)
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        plan
    });
    assert_eq!(
        on_half,
        Plan::Newest {
            from: ids[ids.len() - 80].parse().unwrap(),
            window: 80,
        }
    );
    assert_eq!(choose("item zzzzz", small), Plan::Fulltext { common: 1 });
    assert_eq!(choose("zzzzz item", small), Plan::Fulltext { common: 2 });
    assert_eq!(choose("zzzzz", small), Plan::Fulltext { common: 0 });

    // The newest tasks only: none before `from`.
    let mut ids: Vec<String> = all
        .iter()
        .chain(others.iter())
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let from = ids[ids.len() / 2].clone();
    let (sql, params) = search_statement(
        &Words::parse("item").unwrap(),
        &Plan::Newest {
            from: from.parse().unwrap(),
            window: WINDOW,
        },
        &Scope::All,
        None,
        1000,
    );
    let page: Vec<(String, f64, u8)> = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        let rows = conn.exec(sql, params).await.unwrap();
        conn.disconnect().await.unwrap();
        rows
    });
    let got: BTreeSet<String> = page.into_iter().map(|(id, ..)| id).collect();
    let want: BTreeSet<String> = ids[ids.len() / 2..].iter().cloned().collect();
    assert_eq!(got, want);
    let ids: Vec<String> = all[..3]
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let (sql, params) = rows_statement(&ids);
    let plan = explain(&mysql, "EXPLAIN", &Statement { sql, params });
    assert_eq!(
        (field(&plan[0], "type"), field(&plan[0], "key")),
        ("range".to_string(), "PRIMARY".to_string())
    );

    // Regression: a burst of new cards without the word (an import, a
    // load test) must not make a word that most older cards have look
    // rare; the sample spread over the table still finds it common.
    for i in 0..60 {
        let r = create(&url, json!({ "title": format!("fresh card {i}") }));
        assert_eq!(r.status, 201, "{r:?}");
    }
    assert_eq!(
        choose("zzzzz item", small),
        Plan::Fulltext { common: 2 },
        "item: common in the table, absent from the newest"
    );

    // A node's planner measures a word once: a second search of the same
    // words asks MySQL nothing for its plan when a word is rare, and only
    // where the newest window starts when every word is common; a word it
    // has not seen is measured (and the burst above is still seen through).
    let planner = Planner::new(fitted);
    let planned = |text: &str| -> (Plan, u64) {
        block_on(async {
            let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
            let before = executed(&mut conn).await;
            let plan = planner
                .plan(&mut conn, &Words::parse(text).unwrap(), 1.0)
                .await
                .unwrap();
            let after = executed(&mut conn).await;
            conn.disconnect().await.unwrap();
            (plan, after - before)
        })
    };
    let (plan, first) = planned("zzzzz item");
    assert_eq!(plan, Plan::Fulltext { common: 2 });
    assert!(first >= 4, "measured: {first} statements");
    assert_eq!(planned("zzzzz item"), (Plan::Fulltext { common: 2 }, 0));
    assert_eq!(planned("item zzzzz"), (Plan::Fulltext { common: 1 }, 0));
    // The burst above holds no "item": its share of the newest tasks is 0,
    // so the whole window (100), whose start the measure read (at most
    // START_FOR ago: not read again; a slow machine may read it once).
    let (plan, asked) = planned("item");
    assert!(matches!(plan, Plan::Newest { window: 100, .. }), "{plan:?}");
    assert!(asked <= 1, "{asked} statements");
    // A list filtered by known words needs only which are common: nothing
    // is asked, not even where a window starts.
    let common = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        let before = executed(&mut conn).await;
        let common = planner
            .common(&mut conn, &Words::parse("item zzzzz").unwrap())
            .await
            .unwrap();
        let after = executed(&mut conn).await;
        conn.disconnect().await.unwrap();
        (common, after - before)
    });
    assert_eq!(common, (1, 0));
    let (plan, asked) = planned("zzzzz printer");
    assert_eq!(plan, choose("zzzzz printer", small));
    // "printer" measured: its shares of the newest tasks and of the spread
    // sample; where those lie was read for the first measure (at most
    // START_FOR ago; a slow machine reads them again).
    assert!(
        (2..=first).contains(&asked),
        "printer measured: {asked} statements"
    );

    // Every node's projection, label copies included, is the fold of the
    // events.
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// Prepared statements this connection has executed (read as text: not
/// one of them).
async fn executed(conn: &mut mysql_async::Conn) -> u64 {
    session_status(conn, "COM_STMT_EXECUTE").await
}

/// A counter of this connection's session status (`name`: a constant),
/// read as text, not as a prepared statement, so that reading
/// `COM_STMT_EXECUTE` does not count itself.
async fn session_status(conn: &mut mysql_async::Conn, name: &str) -> u64 {
    conn.query_first(format!(
        "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
         WHERE VARIABLE_NAME = '{name}'"
    ))
    .await
    .unwrap()
    .unwrap()
}

fn search(url: &str, query: &str) -> Response {
    get(&format!("{url}/api/search?{query}"))
}

#[test]
fn search_ranks_by_relevance_pages_through_ties_and_refuses_bad_text_with_4xx() {
    let cluster = Cluster::start(1);
    let url = cluster.url(1);
    let mk = |title: &str, description: &str| {
        let r = create(&url, json!({ "title": title, "description": description }));
        assert_eq!(r.status, 201, "{r:?}");
        r.body["id"].as_str().unwrap().to_string()
    };
    let strong = mk(
        "Kubernetes rollout",
        "kubernetes kubernetes kubernetes upgrade",
    );
    let weak = mk("Notes", "a line on kubernetes among many other words here");
    let unrelated = mk("Printer jam", "the printer on floor two");
    let accents = mk("Ünïcödé names", "émile and zoë");
    for _ in 0..30 {
        mk("filler task", "nothing to see");
    }

    let r = search(&url, "q=kubernetes");
    assert_eq!(r.status, 200, "{r:?}");
    let ids: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["task"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [strong.as_str(), weak.as_str()], "{r:?}");
    let scores: Vec<f64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] > scores[1], "{scores:?}");
    assert_eq!(r.body["words"], json!(["kubernetes"]));
    assert!(r.body["last_seq"].as_u64().unwrap() >= 34);

    // Every word, each as a word or its start, any case; operators are
    // separators.
    let only = |query: &str| -> Vec<String> {
        let r = search(&url, &format!("q={}", urlencode(query)));
        assert_eq!(r.status, 200, "{query}: {r:?}");
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["task"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(only("kubernetes rollout"), [strong.as_str()]);
    assert_eq!(only("KUBER"), [strong.as_str(), weak.as_str()]);
    assert_eq!(
        only("+kubernetes -rollout"),
        [strong.as_str()],
        "- is not NOT"
    );
    assert_eq!(only("\"printer jam\" ~@<>()*"), [unrelated.as_str()]);
    assert_eq!(only("🚀printer\\"), [unrelated.as_str()]);
    assert_eq!(only("unicode"), [accents.as_str()], "accents fold");
    assert_eq!(
        only("the printer"),
        [unrelated.as_str()],
        "stopwords dropped"
    );
    assert!(only("kubernetes printer").is_empty());

    // The list's filters combine with the ranking (both cards are to do,
    // medium, unlabelled, unassigned, on their board).
    let ranked = |query: &str| -> Vec<String> {
        let r = search(&url, &format!("q=kubernetes&{query}"));
        assert_eq!(r.status, 200, "{query}: {r:?}");
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["task"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let both = [strong.as_str(), weak.as_str()];
    assert_eq!(ranked("status=todo&priority=medium&archived=false"), both);
    for narrowing in [
        "status=done",
        "priority=high",
        "label=ops",
        "assignee=alice",
        "archived=true",
    ] {
        assert!(ranked(narrowing).is_empty(), "{narrowing}");
    }
    assert_eq!(search(&url, "q=kubernetes&status=nope").status, 400);

    // The list's q= filters the same way and keeps board order.
    let listed = get(&format!("{url}/api/tasks?q=kubernetes"));
    assert_eq!(listed.status, 200, "{listed:?}");
    let listed: BTreeSet<&str> = listed.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, BTreeSet::from([strong.as_str(), weak.as_str()]));

    // Pages through ties (30 equal scores) without gaps or repeats.
    let mut seen = Vec::new();
    let mut last = f64::INFINITY;
    let mut cursor: Option<String> = None;
    loop {
        let mut query = "q=filler&limit=7".to_string();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let r = search(&url, &query);
        assert_eq!(r.status, 200, "{r:?}");
        for hit in r.body["results"].as_array().unwrap() {
            let score = hit["score"].as_f64().unwrap();
            assert!(score <= last);
            last = score;
            seen.push(hit["task"]["id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 30, "no repeats");

    // Bad input: a JSON 4xx or an answer, never a 5xx.
    let long = "deploy ".repeat(1500);
    let hostile = [
        "",
        "   ",
        "+-*\"~@<>()",
        "\"",
        "(((",
        "🚀🎉",
        "\\",
        "\\\\\\",
        "a",
        "the with",
        "kub*",
        "@8 ~x",
        "'; DROP TABLE tasks; --",
        "%_",
        "\u{0}kubernetes",
        &long,
        &"x".repeat(10_000),
        &"word ".repeat(20),
    ];
    for q in hostile {
        for path in ["/api/search", "/api/tasks"] {
            let r = get(&format!("{url}{path}?q={}", urlencode(q)));
            let shown: String = q.chars().take(40).collect();
            assert!((200..500).contains(&r.status), "{path}?q={shown}…: {r:?}");
            if r.status >= 400 {
                assert!(r.error_code().is_some(), "{path}?q={shown}: {r:?}");
            }
        }
    }
    for (query, field) in [
        ("q=", "q"),
        ("", "q"),
        ("q=the", "q"),
        ("q=%2B-*", "q"),
        ("q=kubernetes&board=b1", "board"),
        ("q=kubernetes&limit=0", "limit"),
        ("q=kubernetes&limit=101", "limit"),
        ("q=kubernetes&cursor=todo~1~x", "cursor"),
        // A cursor of another query's plan: no word left for the index.
        (
            "q=kubernetes&cursor=r~1~0192f0c4-0000-7000-8000-000000000000~c1",
            "cursor",
        ),
    ] {
        let r = search(&url, query);
        assert_eq!(r.status, 400, "{query}: {r:?}");
        assert_eq!(r.error_code(), Some("validation_failed"), "{query}: {r:?}");
        assert!(
            r.body.to_string().contains(field),
            "{query}: names {field}: {r:?}"
        );
    }
}

#[test]
fn a_user_on_some_boards_gets_full_pages_of_the_hits_they_may_see() {
    use common::accounts::*;
    let mut cluster = start_auth(1, &[], |_| {});
    cluster.leader(std::time::Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(1);
    create_user(&url, &admin, "ana", "member");
    let ana = login(&url, "ana", "ana-password").unwrap();
    let board = |who: &Who, name: &str| -> (String, String) {
        let r = call(
            who,
            "POST",
            &format!("{url}/api/boards"),
            Some(&json!({ "name": name })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        let todo = r.body["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == "todo")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        (r.body["id"].as_str().unwrap().to_string(), todo)
    };
    let (hidden, hidden_todo) = board(&admin, "Hidden");
    let (hers, hers_todo) = board(&ana, "Hers");
    let mk = |who: &Who, column: Option<&str>, title: &str, description: &str| -> String {
        let mut body = json!({ "title": title, "description": description });
        if let Some(c) = column {
            body["column_id"] = json!(c);
        }
        let r = call(who, "POST", &format!("{url}/api/tasks"), Some(&body));
        assert_eq!(r.status, 201, "{r:?}");
        r.body["id"].as_str().unwrap().to_string()
    };
    // The best hits are on a board ana is not on: ranked and cut before
    // the visibility filter, her first pages came back empty.
    for _ in 0..12 {
        mk(
            &admin,
            Some(&hidden_todo),
            "Zebra zebra",
            "zebra zebra zebra zebra",
        );
    }
    let mut visible = BTreeSet::new();
    for _ in 0..5 {
        visible.insert(mk(&ana, Some(&hers_todo), "Zebra crossing", "paint it"));
    }
    for _ in 0..4 {
        visible.insert(mk(&ana, None, "Notes", "a zebra once"));
    }
    let pages = |who: &Who, query: &str, limit: usize| -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let mut q = format!("{url}/api/search?q=zebra&limit={limit}{query}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let r = call(who, "GET", &q, None);
            assert_eq!(r.status, 200, "{r:?}");
            pages.push(r.body["results"].as_array().unwrap().clone());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return pages,
            }
        }
        panic!("endless pages");
    };
    let ids = |pages: &[Vec<Value>]| -> Vec<String> {
        pages
            .iter()
            .flatten()
            .map(|h| h["task"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let hers_pages = pages(&ana, "", 3);
    let sizes: Vec<usize> = hers_pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 3], "full pages of what she may see");
    let got = ids(&hers_pages);
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), visible);
    assert_eq!(got.len(), 9, "no repeats");
    // Her board's cards rank above the default board's (zebra in the title).
    let on_hers: Vec<bool> = hers_pages
        .iter()
        .flatten()
        .map(|h| h["task"]["board_id"] == hers.as_str())
        .collect();
    assert_eq!(
        on_hers,
        [true, true, true, true, true, false, false, false, false]
    );

    // board= is part of the query too.
    let only = ids(&pages(&ana, &format!("&board={hers}"), 2));
    assert_eq!(only.len(), 5);
    assert!(only.iter().all(|id| visible.contains(id)));
    let r = call(
        &ana,
        "GET",
        &format!("{url}/api/search?q=zebra&board={hidden}"),
        None,
    );
    assert_eq!(r.status, 404, "{r:?}");

    // The site admin sees every board.
    let all = ids(&pages(&admin, "", 5));
    assert_eq!(all.len(), 21);
    let hidden_first: Vec<String> = ids(&pages(&admin, &format!("&board={hidden}"), 100));
    assert_eq!(
        all[..12].iter().cloned().collect::<BTreeSet<_>>(),
        hidden_first.into_iter().collect()
    );
}

/// A column whose first cards in board order lack a common word (400
/// cards of other words, then the 40 with it): a page filtered by the word
/// reads a budget of cards in board order, then takes the FULLTEXT index
/// when the word is in fewer tasks than the cards left (cost-weighted), and
/// otherwise reads on. Every way gives the same pages; only the rows read
/// differ (a column of 500,000 cards read whole took 0.7 s).
#[test]
fn a_column_without_the_word_at_its_start_is_not_read_whole_when_the_index_is_cheaper() {
    use taskraft::db::queries::{read_cards, Columns, ScanBudget};
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let mut expected = Vec::new();
    // Created first (the oldest), placed last in the column.
    for i in 0..40 {
        let body = json!({
            "title": format!("zebra crossing {i}"),
            "status": "todo",
            "position": 1_000_000.0 + i as f64,
        });
        let r = create(&url, body);
        assert_eq!(r.status, 201, "{r:?}");
        expected.push(r.body["id"].as_str().unwrap().to_string());
    }
    for i in 0..400 {
        let body = json!({
            "title": format!("filler item {i}"),
            "description": "nothing to see",
            "status": "todo",
            "position": 1.0 + i as f64,
        });
        assert_eq!(create(&url, body).status, 201);
    }
    let mysql = cluster.mysql_url(1);
    let ids = [fixed_column(Status::Todo)];
    let columns = Columns {
        ids: &ids,
        cards: 440,
        archived: false,
    };
    let filter = TaskFilter {
        text: Some(Words::parse("zebra").unwrap()),
        // Marked common: read in board order, checked by expression.
        common: 1,
        limit: 7,
        ..TaskFilter::default()
    };
    let budget = ScanBudget {
        cards: 50,
        match_cost: 2,
    };
    // (budget, the rarest word's estimated tasks, whether the index is taken)
    let ways = [
        (budget, Some((0, 40)), true),
        (budget, Some((0, 300)), false),
        (budget, None, false),
        (
            ScanBudget {
                cards: 1_000,
                ..budget
            },
            Some((0, 40)),
            false,
        ),
    ];
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        for (budget, rarest, indexed) in ways {
            let mut got: Vec<String> = Vec::new();
            let mut after = None;
            let mut first_page = None;
            loop {
                let before = rows_read(&mut conn).await;
                let mut tx = conn
                    .start_transaction(mysql_async::TxOpts::default())
                    .await
                    .unwrap();
                let rows = read_cards(&mut tx, &filter, columns, after, 7, budget, rarest)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                let read = rows_read(&mut conn).await - before;
                first_page.get_or_insert(read);
                let page: Vec<(String, f64)> = rows
                    .into_iter()
                    .map(|row| {
                        let task = taskraft::db::rows::task_from_row(row).unwrap();
                        (task.id.to_string(), task.position)
                    })
                    .collect();
                let Some((id, position)) = page.last().cloned() else {
                    break;
                };
                got.extend(page.into_iter().map(|(id, _)| id));
                after = Some((position, id.parse().unwrap()));
            }
            assert_eq!(
                got, expected,
                "{budget:?} {rarest:?}: every match, in board order"
            );
            // The first page: the budget's 50 cards twice (their keys, then
            // their rows) and the index's 40 matches (147 rows read when
            // written), or every filler and the page (407 to 457).
            let read = first_page.unwrap();
            if indexed {
                assert!(read < 300, "{budget:?} {rarest:?}: {read} rows read");
            } else {
                assert!(read >= 400, "{budget:?} {rarest:?}: {read} rows read");
            }
        }
        conn.disconnect().await.unwrap();
    });
}

/// Rows this connection has read (MariaDB's `Rows_read`).
async fn rows_read(conn: &mut mysql_async::Conn) -> u64 {
    session_status(conn, "ROWS_READ").await
}

/// The ids and `matched` of a search's results, as `who` on `url` gets them.
fn found(who: &common::accounts::Who, url: &str, query: &str) -> Vec<(String, String)> {
    let r = common::accounts::call(who, "GET", &format!("{url}/api/search?{query}"), None);
    r.ok(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| {
            (
                hit["task"]["id"].as_str().unwrap().to_string(),
                hit["matched"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_cards_comments_are_searched_with_it_on_every_node_for_those_on_its_board() {
    use common::accounts::*;
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(std::time::Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let urls = [cluster.url(1), cluster.url(2), cluster.url(3)];
    for name in ["ana", "eve"] {
        create_user(&urls[0], &admin, name, "member");
    }
    let ana = login(&urls[1], "ana", "ana-password").unwrap();
    let eve = login(&urls[2], "eve", "eve-password").unwrap();
    let board = |who: &Who, url: &str, name: &str| -> String {
        let r = call(
            who,
            "POST",
            &format!("{url}/api/boards"),
            Some(&json!({ "name": name })),
        );
        r.ok(201)["columns"][0]["id"].as_str().unwrap().to_string()
    };
    let ops = board(&ana, &urls[1], "Ops");
    let eves = board(&eve, &urls[2], "Eve's");
    let card = |who: &Who, url: &str, column: &str, title: &str| -> String {
        let r = call(
            who,
            "POST",
            &format!("{url}/api/tasks"),
            Some(&json!({ "title": title, "column_id": column })),
        );
        r.ok(201)["id"].as_str().unwrap().to_string()
    };
    let comment = |who: &Who, url: &str, task: &str, body: &str| -> String {
        let r = call(
            who,
            "POST",
            &format!("{url}/api/tasks/{task}/comments"),
            Some(&json!({ "body": body })),
        );
        r.ok(201)["id"].as_str().unwrap().to_string()
    };
    let titled = card(&ana, &urls[0], &ops, "Zeppelin hangar checklist");
    let discussed = card(&ana, &urls[1], &ops, "Rollout plan");
    let quiet = card(&ana, &urls[2], &ops, "Printer jam");
    let hers = card(&eve, &urls[2], &eves, "Eve's notes");
    // A hostile body: 10,000 characters of backslashes, quotes and emoji,
    // the word once in the middle.
    let noise = "\\\\ \"quoted\" 'single' 🚀🧪 ".repeat(200);
    let body = format!("{noise} ask about the zeppelin slot {noise}");
    let body: String = body.chars().take(10_000).collect();
    assert!(body.contains("zeppelin"));
    let long = comment(&ana, &urls[1], &discussed, &body);
    comment(&ana, &urls[2], &quiet, "nothing of note here");
    comment(&eve, &urls[0], &hers, "My zeppelin model");

    // Every node answers the same, linearizably: the card by its title,
    // the other by its comment, and none of Eve's board.
    let mut want = vec![
        (titled.clone(), "card".to_string()),
        (discussed.clone(), "comments".to_string()),
    ];
    want.sort();
    for url in &urls {
        let mut got = found(&ana, url, "q=zeppelin");
        got.sort();
        assert_eq!(got, want, "{url}");
        assert_eq!(
            found(&eve, url, "q=zeppelin"),
            [(hers.clone(), "comments".to_string())],
            "{url}: Eve sees only her board's"
        );
    }
    // A card found by its text and by a comment is one hit, "card".
    comment(&ana, &urls[0], &titled, "the zeppelin is booked");
    let got = found(&ana, &urls[2], "q=zeppelin");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.contains(&(titled.clone(), "card".to_string())),
        "{got:?}"
    );
    // Every word in one text: the card's, or one comment's.
    assert_eq!(
        found(&ana, &urls[0], "q=zeppelin+slot"),
        [(discussed.clone(), "comments".to_string())]
    );
    assert!(found(&ana, &urls[0], "q=rollout+zeppelin").is_empty());
    // Combined with the filters, which are the card's.
    assert!(found(&ana, &urls[1], "q=zeppelin&archived=true").is_empty());
    assert!(found(&ana, &urls[1], "q=zeppelin&status=done").is_empty());
    assert_eq!(
        found(&ana, &urls[1], "q=slot&status=todo"),
        [(discussed.clone(), "comments".to_string())]
    );

    // Many comments on many cards: each card once, paged without gaps or
    // repeats.
    let mut many: Vec<String> = Vec::new();
    for i in 0..6 {
        let task = card(&ana, &urls[i % 3], &ops, &format!("Card {i}"));
        for j in 0..3 {
            comment(
                &ana,
                &urls[j % 3],
                &task,
                &format!("walrus sighting {j} of card {i}"),
            );
        }
        many.push(task);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = "q=walrus&limit=4".to_string();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let r = call(
            &ana,
            "GET",
            &format!("{}/api/search?{query}", urls[2]),
            None,
        )
        .ok(200);
        for hit in r["results"].as_array().unwrap() {
            assert_eq!(hit["matched"], "comments");
            seen.push(hit["task"]["id"].as_str().unwrap().to_string());
        }
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
    assert_eq!(unique, many.iter().collect::<BTreeSet<_>>());

    // With every word common (the newest cards only), a comment of one of
    // those cards is still found, through the comments' index; a card
    // older than the window is not.
    let mysql = cluster.mysql_url(1);
    let mut ids = many.clone();
    ids.sort();
    let newest = |from: &str| Plan::Newest {
        from: from.parse().unwrap(),
        window: WINDOW,
    };
    let newest_hits = |plan: &Plan| -> BTreeSet<String> {
        let (sql, params) = search_statement(
            &Words::parse("walrus").unwrap(),
            plan,
            &Scope::All,
            None,
            100,
        );
        block_on(async {
            let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
            let rows: Vec<(String, f64, u8)> = conn.exec(sql, params).await.unwrap();
            conn.disconnect().await.unwrap();
            assert!(
                rows.iter().all(|(_, score, c)| *score > 0.0 && *c == 1),
                "{rows:?}"
            );
            rows.into_iter().map(|(id, ..)| id).collect()
        })
    };
    assert_eq!(newest_hits(&newest(&ids[0])), ids.iter().cloned().collect());
    assert_eq!(
        newest_hits(&newest(&ids[3])),
        ids[3..].iter().cloned().collect()
    );

    // Editing the comment drops the word; deleting the card drops its
    // comments; on every node.
    let r = call(
        &ana,
        "PATCH",
        &format!("{}/api/comments/{long}", urls[2]),
        Some(&json!({ "body": "never mind" })),
    );
    r.ok(200);
    let r = call(
        &admin,
        "DELETE",
        &format!("{}/api/tasks/{titled}", urls[0]),
        None,
    );
    assert!(r.status == 200 || r.status == 204, "{r:?}");
    for url in &urls {
        assert!(found(&ana, url, "q=zeppelin").is_empty(), "{url}");
    }

    // A database from before V20 (comments, no index on them) gets the
    // index when its node starts, and finds the comments it already had.
    let mysql = cluster.mysql_url(3);
    cluster.kill(3);
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        conn.query_drop("ALTER TABLE comments DROP INDEX comments_text")
            .await
            .unwrap();
        conn.query_drop("DELETE FROM schema_migrations WHERE version = 20")
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
    });
    cluster.restart(3);
    let got: BTreeSet<String> = found(&ana, &urls[2], "q=walrus")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, many.iter().cloned().collect());
    let r = call(
        &ana,
        "GET",
        &format!("{}/api/search?q=walrus", urls[0]),
        None,
    );
    assert_eq!(
        r.ok(200)["searched"],
        json!({ "tasks": "all", "comments": "all" })
    );

    // A word in most comments (small sizes: 10 comments are many) is read
    // among the newest comments only, by regular expression; a word in
    // none of them goes through the index.
    let mysql = cluster.mysql_url(1);
    let small = Sizes {
        window: 10,
        probe: 10,
        common_matches: 5,
        newest_matches: 1000,
    };
    let (walrus, zeppelin, newest) = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        let planner = Planner::new(small);
        let walrus = planner
            .comment_plan(&mut conn, &Words::parse("walrus").unwrap(), 1.0)
            .await
            .unwrap();
        let zeppelin = planner
            .comment_plan(&mut conn, &Words::parse("zeppelin").unwrap(), 1.0)
            .await
            .unwrap();
        let newest: Vec<(String, String, String)> = conn
            .query("SELECT id, task_id, body FROM comments ORDER BY id DESC LIMIT 10")
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        (walrus, zeppelin, newest)
    });
    assert_eq!(
        walrus,
        CommentPlan::Newest {
            from: newest[9].0.clone(),
            window: 10
        }
    );
    assert_eq!(zeppelin, CommentPlan::Index { common: 0 });
    // Fewer comments than a window: the index whatever the words, and the
    // planner remembers a while that there are few, so a search of a new
    // word asks MySQL nothing before its page.
    let (plans, statements) = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        let planner = Planner::new(Sizes::DEFAULT);
        let first = planner
            .comment_plan(&mut conn, &Words::parse("walrus").unwrap(), 1.0)
            .await
            .unwrap();
        let before = executed(&mut conn).await;
        let second = planner
            .comment_plan(&mut conn, &Words::parse("zeppelin").unwrap(), 1.0)
            .await
            .unwrap();
        let statements = executed(&mut conn).await - before;
        conn.disconnect().await.unwrap();
        ((first, second), statements)
    });
    assert_eq!(plans, (CommentPlan::default(), CommentPlan::default()));
    assert_eq!(statements, 0, "few comments, remembered");

    // A word in most comments but in none of the newest (a burst of other
    // comments) is common all the same: a sample spread over the comments
    // says so, and the newest comments are read rather than every comment
    // with the word ranked. In a database of its own, to place the ids
    // (their time) evenly: 150 comments with the word, then 50 without.
    let id = |i: u32| format!("{i:08x}-0000-7000-8000-{i:012x}");
    let scratch = format!("spread_{}", std::process::id());
    let spread = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        conn.query_drop(format!(
            "CREATE DATABASE {scratch}; CREATE TABLE {scratch}.comments LIKE comments"
        ))
        .await
        .unwrap();
        let rows: Vec<(String, String)> = (0..200)
            .map(|i| {
                let body = if i < 150 {
                    "walrus sighting"
                } else {
                    "lighthouse log"
                };
                (id(i), format!("{body} {i}"))
            })
            .collect();
        conn.exec_batch(
            format!(
                "INSERT INTO {scratch}.comments (id, task_id, author_id, author_name, body, \
                 version, created_at, updated_at) VALUES (?, ?, 'ana', 'Ana', ?, 1, NOW(3), NOW(3))"
            ),
            rows.iter().map(|(id, body)| (id, id, body)),
        )
        .await
        .unwrap();
        conn.query_drop(format!("ANALYZE TABLE {scratch}.comments; USE {scratch}"))
            .await
            .unwrap();
        let plan = Planner::new(small)
            .comment_plan(&mut conn, &Words::parse("walrus").unwrap(), 1.0)
            .await
            .unwrap();
        conn.query_drop(format!("DROP DATABASE {scratch}"))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        plan
    });
    assert_eq!(
        spread,
        CommentPlan::Newest {
            from: id(190),
            window: 10
        }
    );
    let want: BTreeSet<String> = newest
        .iter()
        .filter(|(_, _, body)| body.contains("walrus"))
        .map(|(_, task, _)| task.clone())
        .collect();
    assert!(!want.is_empty() && want.len() < many.len(), "{want:?}");
    let words = Words::parse("walrus").unwrap();
    for plan in [
        Plan::Fulltext { common: 0 },
        Plan::Newest {
            from: "00000000-0000-0000-0000-000000000000".parse().unwrap(),
            window: WINDOW,
        },
    ] {
        let (sql, params) = filtered_statement(
            &words,
            &[],
            &plan,
            &walrus,
            &Scope::All,
            &SearchFilter::default(),
            None,
            100,
        );
        let explained = explain(
            &mysql,
            "EXPLAIN",
            &Statement {
                sql: sql.clone(),
                params: params.clone(),
            },
        );
        assert!(
            explained
                .iter()
                .any(|row| (field(row, "table"), field(row, "key"))
                    == ("comments".to_string(), "PRIMARY".to_string())),
            "the newest comments by primary key: {explained:?}"
        );
        let rows: Vec<(String, f64, u8)> = block_on(async {
            let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
            let rows = conn.exec(sql, params).await.unwrap();
            conn.disconnect().await.unwrap();
            rows
        });
        let got: BTreeSet<String> = rows.into_iter().map(|(id, ..)| id).collect();
        assert_eq!(got, want, "{plan:?}");
    }
}
