//! What an operator scrapes: every metric the README's Metrics table
//! documents, on every node of a real cluster, with its type and labels;
//! the access log; `taskraft status` as a check scripts can rely on.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;

/// One row of the README's Metrics table.
#[derive(Debug)]
struct Documented {
    name: String,
    kind: String,
    labels: BTreeSet<String>,
}

/// The rows of the table under "## Metrics and alerts" in README.md.
fn documented() -> Vec<Documented> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Metrics and alerts")
        .nth(1)
        .expect("the README has a Metrics and alerts section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let code = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let rows: Vec<Documented> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            Documented {
                name: code(cells[1]).remove(0),
                kind: cells[2].to_string(),
                labels: code(cells[3]).into_iter().collect(),
            }
        })
        .collect();
    assert!(
        rows.len() >= 20,
        "the README's metrics table was read: {rows:?}"
    );
    rows
}

/// A metric family as scraped: its `# TYPE` and the label names of its
/// samples (`le` and `quantile` aside).
#[derive(Debug, Default)]
struct Family {
    kind: String,
    label_sets: BTreeSet<BTreeSet<String>>,
    samples: Vec<(BTreeMap<String, String>, f64)>,
}

/// Parses the Prometheus text format (what `promtool check metrics` would
/// accept; enough of it for our own output: no escaped quotes in values).
fn parse(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            families.entry(name.to_string()).or_default().kind = kind.to_string();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels: BTreeMap<String, String> = labels
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("label=value");
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        // Histogram samples belong to the family without their suffix.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (families.get(base)?.kind == "histogram").then_some(base)
            })
            .unwrap_or(name);
        let entry = families.entry(family.to_string()).or_default();
        entry.label_sets.insert(
            labels
                .keys()
                .filter(|k| *k != "le" && *k != "quantile")
                .cloned()
                .collect(),
        );
        entry.samples.push((labels, value));
    }
    families
}

fn scrape(url: &str) -> BTreeMap<String, Family> {
    let response = get(&format!("{url}/metrics"));
    assert_eq!(response.status, 200, "{url}/metrics answers");
    let text = response
        .body
        .as_str()
        .expect("metrics are text")
        .to_string();
    parse(&text)
}

fn value(families: &BTreeMap<String, Family>, name: &str) -> f64 {
    let family = families
        .get(name)
        .unwrap_or_else(|| panic!("{name} is exported"));
    assert_eq!(family.samples.len(), 1, "{name} has one series");
    family.samples[0].1
}

#[test]
fn every_documented_metric_is_exported_by_every_node_with_its_type_and_labels() {
    let cluster = Cluster::start(3);
    let urls = cluster.urls();
    // Traffic on every node, so the request families have series.
    for (i, url) in urls.iter().enumerate() {
        let created = create_titled(url, &format!("scraped {i}"));
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_str().unwrap();
        assert_eq!(get(&format!("{url}/api/tasks/{id}")).status, 200);
        assert_eq!(get(&format!("{url}/api/cluster")).status, 200);
    }
    let documented = documented();
    for url in &urls {
        let families = scrape(url);
        for metric in &documented {
            let family = families.get(&metric.name).unwrap_or_else(|| {
                panic!(
                    "{url} exports {}; it exports {:?}",
                    metric.name,
                    families.keys().collect::<Vec<_>>()
                )
            });
            assert_eq!(
                family.kind, metric.kind,
                "{url}: {} is a {} as documented",
                metric.name, metric.kind
            );
            assert!(
                !family.label_sets.is_empty(),
                "{url}: {} has at least one series",
                metric.name
            );
            for labels in &family.label_sets {
                assert_eq!(
                    labels, &metric.labels,
                    "{url}: {} carries exactly the documented labels",
                    metric.name
                );
            }
        }

        // Values that say something about this cluster, not just names.
        assert_eq!(value(&families, "taskraft_server_has_leader"), 1.0);
        assert_eq!(value(&families, "taskraft_server_ready"), 1.0);
        assert!(value(&families, "process_resident_memory_bytes") > 1e6);
        assert!(value(&families, "process_open_fds") > 0.0);
        assert!(value(&families, "taskraft_server_proposals_committed_total") >= 3.0);
        let build = &families["taskraft_build_info"].samples[0].0;
        assert_eq!(build["version"], env!("CARGO_PKG_VERSION"));
        assert!(!build["commit"].is_empty(), "the build names its commit");
        let peers: BTreeSet<&str> = families["taskraft_network_peer_sent_failures_total"]
            .samples
            .iter()
            .map(|(labels, _)| labels["peer"].as_str())
            .collect();
        assert_eq!(
            peers.len(),
            2,
            "{url}: one series per other member: {peers:?}"
        );
        // Bounded cardinality: the route is the pattern, never the path.
        let routes: BTreeSet<&str> = families["taskraft_http_request_duration_seconds"]
            .samples
            .iter()
            .map(|(labels, _)| labels["route"].as_str())
            .collect();
        assert!(
            routes.contains("/api/tasks/{id}") && routes.contains("/api/tasks"),
            "{url}: routes by pattern: {routes:?}"
        );
        assert!(
            routes.iter().all(|r| r.starts_with('/') || *r == "other"),
            "{url}: {routes:?}"
        );
        assert!(
            routes.iter().all(|r| !r.contains('-')),
            "{url}: no task id in a route label: {routes:?}"
        );
    }
    let leaders: f64 = urls
        .iter()
        .map(|url| value(&scrape(url), "taskraft_server_is_leader"))
        .sum();
    assert_eq!(leaders, 1.0, "exactly one node says it is the leader");
}

#[test]
fn the_leader_times_round_trips_to_each_peer() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let families = scrape(&cluster.url(leader));
        let counts: Vec<f64> = families["taskraft_network_peer_round_trip_time_seconds"]
            .samples
            .iter()
            .filter(|(labels, _)| !labels.contains_key("le"))
            .filter(|(_, v)| *v > 0.0)
            .map(|(_, v)| *v)
            .collect();
        // _sum and _count for each of two peers, once each has answered.
        if counts.len() >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "heartbeats answered by both followers are timed: {:?}",
            families["taskraft_network_peer_round_trip_time_seconds"].samples
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_request_writes_one_json_access_log_line() {
    let cluster = Cluster::start_with(1, &[("TASKRAFT_LOG_FORMAT", "json")]);
    let url = cluster.url(1);
    let marker = "/api/tasks/00000000-0000-7000-8000-00000000abcd";
    assert_eq!(get(&format!("{url}{marker}")).status, 404);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&cluster.node(1).log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter(|line| line.contains(marker))
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("a JSON log line ({e}): {line}"))
            })
            .collect();
        if let Some(line) = lines.first() {
            assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
            assert_eq!(line["target"], "taskraft::access", "{line}");
            let fields = &line["fields"];
            assert_eq!(fields["method"], "GET", "{line}");
            assert_eq!(fields["route"], "/api/tasks/{id}", "{line}");
            assert_eq!(fields["status"], 404, "{line}");
            assert!(fields["duration_ms"].as_f64().is_some(), "{line}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the request shows in the log:\n{}",
            tail(&cluster.node(1).log, 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(url: &str) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["status", "--url", url])
        .output()
        .expect("taskraft status runs")
}

#[test]
fn status_exits_non_zero_once_the_node_has_no_leader() {
    let mut cluster = Cluster::start(3);
    let out = status(&cluster.url(1));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a serving node: exit 0\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));
    cluster.kill(2);
    cluster.kill(3);
    // Node 1 alone cannot keep or elect a leader; it notices within a few
    // election timeouts (check_quorum), whatever it was.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = status(&cluster.url(1));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.code() == Some(1) {
            assert!(text.contains("NOT READY"), "{text}");
            break;
        }
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            Instant::now() < deadline,
            "status still exits 0 with no quorum:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let families = scrape(&cluster.url(1));
    assert_eq!(value(&families, "taskraft_server_has_leader"), 0.0);
    assert_eq!(value(&families, "taskraft_server_ready"), 0.0);
    cluster.kill(1);
    let out = status(&cluster.url(1));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreachable node: exit 2 ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}
