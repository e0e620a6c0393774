//! The lab of `taskraft demo --lab`, through its API, on real processes:
//! it exists there and nowhere else, and its faults are real ones; a node
//! it adds joins as a voter behind relays of its own, and goes when removed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn a_node_started_by_serve_has_no_lab_routes() {
    let cluster = Cluster::start(1);
    let url = cluster.url(1);
    for (method, path) in [
        ("GET", "/lab/state"),
        ("POST", "/lab/heal"),
        ("POST", "/lab/isolate/1"),
        ("POST", "/lab/nodes/1/kill"),
        ("POST", "/lab/links"),
        ("POST", "/lab/nodes"),
        ("DELETE", "/lab/nodes/1"),
    ] {
        let response = send(method, &format!("{url}{path}"), &[], Some(&json!({})));
        assert_eq!(response.status, 404, "{method} {path}: {:?}", response.body);
        assert_eq!(response.error_code(), Some("not_found"), "{method} {path}");
    }
    assert_eq!(get(&format!("{url}/api/cluster")).body.get("lab_url"), None);
}

/// `taskraft demo --lab`, stopped (SIGTERM, by PID) on drop.
struct Demo {
    child: Child,
    lab: String,
    /// `--http-port`: node i's Raft port is `base + 1000 + i - 1`.
    base: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        taskraft::mysqld::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base port whose block (HTTP, Raft at +1000, the relays at +2000, for
/// four nodes; the lab at +90) is free.
fn free_base() -> u16 {
    for _ in 0..200 {
        let base = 20000 + (uuid::Uuid::new_v4().as_u128() % 20000) as u16;
        let mut ports = vec![base + 90];
        for i in 0..4 {
            ports.extend([base + i, base + 1000 + i, base + 2000 + i]);
        }
        if ports
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        {
            return base;
        }
    }
    panic!("no free block of ports");
}

fn start_demo() -> Demo {
    let dir = tempfile::tempdir().expect("a temp dir");
    let base = free_base();
    let mut child = Command::new(BIN)
        .args(["demo", "--lab", "--fresh", "--nodes", "3", "--http-port"])
        .arg(base.to_string())
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .env_remove("TASKRAFT_MYSQL_URL")
        .env_remove("TASKRAFT_AUTH")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("taskraft demo starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("lab  ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let lab = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the demo prints `lab  URL` once the cluster is ready");
    assert!(lab.ends_with("/lab"), "{lab}");
    // Accounts are on: this test reads and writes the nodes with the
    // service token the demo gives them (and keeps in its directory).
    let token =
        std::fs::read_to_string(dir.path().join("demo/api-token")).expect("the demo's api-token");
    use_token(token.trim());
    Demo {
        child,
        base,
        lab: lab.trim_end_matches("/lab").to_string(),
        _dir: dir,
    }
}

fn lab_state(demo: &Demo) -> Value {
    let state = get(&format!("{}/lab/state", demo.lab));
    assert_eq!(state.status, 200, "{:?}", state.body);
    state.body
}

/// The lab's state once it has heard from every node.
fn wait_all_answering(demo: &Demo) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = lab_state(demo);
        if state["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().all(|n| n["answering"] == true))
        {
            return state;
        }
        assert!(Instant::now() < deadline, "not every node answers: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The leader the running nodes agree on, once they do.
fn wait_leader(demo: &Demo, not: Option<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = lab_state(demo);
        let answering: Vec<&Value> = state["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["answering"] == true)
            .collect();
        let leaders: Vec<u64> = answering
            .iter()
            .filter(|n| n["role"] == "leader")
            .map(|n| n["id"].as_u64().unwrap())
            .collect();
        if let [leader] = leaders[..] {
            let agreed = answering
                .iter()
                .filter(|n| n["leader_id"].as_u64() == Some(leader))
                .count();
            if Some(leader) != not && agreed >= 2 {
                return leader;
            }
        }
        assert!(Instant::now() < deadline, "no new leader: {state}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn post(demo: &Demo, path: &str, body: Option<Value>) -> Response {
    send("POST", &format!("{}{path}", demo.lab), &[], body.as_ref())
}

#[test]
fn the_lab_isolates_heals_kills_and_restarts_real_nodes() {
    let demo = start_demo();
    // The demo prints its lab URL once the nodes are ready; the lab's own
    // poll of their `/api/cluster` (every 300 ms) may not have run yet.
    let state = wait_all_answering(&demo);
    assert_eq!(state["nodes"].as_array().unwrap().len(), 3, "{state}");
    assert_eq!(state["links"].as_array().unwrap().len(), 6, "{state}");
    for node in state["nodes"].as_array().unwrap() {
        for field in ["id", "pid", "state", "url", "role", "term", "commit_index"] {
            assert!(!node[field].is_null(), "a node shows {field}: {node}");
        }
        assert_eq!(node["state"], "running");
        let view = get(&format!("{}/api/cluster", node["url"].as_str().unwrap()));
        assert_eq!(
            view.body["lab_url"],
            format!("{}/lab", demo.lab),
            "the board can link to the lab"
        );
    }
    let page = get(&format!("{}/lab", demo.lab));
    assert_eq!(page.status, 200);
    assert!(page.body.as_str().unwrap().contains("taskraft lab"));

    // Bad input: 4xx with the JSON error body.
    assert_eq!(post(&demo, "/lab/nodes/9/kill", None).status, 404);
    assert_eq!(post(&demo, "/lab/nodes/1/explode", None).status, 404);
    assert_eq!(post(&demo, "/lab/isolate/9", None).status, 404);
    let bad = post(
        &demo,
        "/lab/links",
        Some(json!({"from": 1, "to": 2, "state": "maybe"})),
    );
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(bad.error_code().is_some());
    assert_eq!(
        post(
            &demo,
            "/lab/links",
            Some(json!({"from": 1, "to": 1, "state": "cut"}))
        )
        .status,
        404
    );

    // Messages flow both ways between the leader and each follower (the
    // followers have nothing to say to each other).
    let leader = wait_leader(&demo, None);
    let quiet_leader_links = |state: &Value| -> usize {
        state["links"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["from"] == leader || l["to"] == leader)
            .filter(|l| l["messages"] == 0)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while quiet_leader_links(&lab_state(&demo)) > 0 {
        assert!(Instant::now() < deadline, "{}", lab_state(&demo));
        std::thread::sleep(Duration::from_millis(200));
    }

    // Isolate the leader: the others elect a new one and keep writing.
    assert_eq!(
        post(&demo, &format!("/lab/isolate/{leader}"), None).status,
        202
    );
    let state = lab_state(&demo);
    for link in state["links"].as_array().unwrap() {
        let touches = link["from"] == leader || link["to"] == leader;
        assert_eq!(link["state"], if touches { "cut" } else { "ok" }, "{link}");
    }
    let next = wait_leader(&demo, Some(leader));
    let next_url = format!("http://{}", url_of(&demo, next));
    let created = create_titled(&next_url, "written on the majority");
    assert_eq!(created.status, 201, "{:?}", created.body);
    let isolated_url = format!("http://{}", url_of(&demo, leader));
    let refused = create_titled(&isolated_url, "written on the minority");
    assert!(
        [503, 504].contains(&refused.status),
        "an isolated node cannot commit: {} {:?}",
        refused.status,
        refused.body
    );

    // Heal: it rejoins as a follower and has the write.
    assert_eq!(post(&demo, "/lab/heal", None).status, 202);
    let id = created.body["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let task = get(&format!("{isolated_url}/api/tasks/{id}"));
        let view = get(&format!("{isolated_url}/api/cluster"));
        if task.status == 200 && view.body["role"] == "follower" {
            break;
        }
        assert!(Instant::now() < deadline, "{:?} {:?}", task.body, view.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = lab_state(&demo)["events"].to_string();
    assert!(
        events.contains("isolated") && events.contains("healed"),
        "{events}"
    );

    // Kill and restart a follower.
    let follower = (1..=3).find(|id| *id != next).unwrap();
    assert_eq!(
        post(&demo, &format!("/lab/nodes/{follower}/kill"), None).status,
        202
    );
    let node = |state: &Value, id: u64| -> Value {
        state["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(node(&lab_state(&demo), follower)["state"], "killed");
    assert_eq!(
        post(&demo, &format!("/lab/nodes/{follower}/kill"), None).status,
        409,
        "a killed node cannot be killed again"
    );
    // A killed node's log: the lab says it does not answer (a 5xx here
    // is what the Lab page's browser logged as an error during the tour).
    let log = get(&format!("{}/lab/nodes/{follower}/log", demo.lab));
    assert_eq!(log.status, 200, "{:?}", log.body);
    assert_eq!(log.body["answering"], false, "{:?}", log.body);
    assert_eq!(
        post(&demo, &format!("/lab/nodes/{follower}/restart"), None).status,
        202
    );
    // From the restart on, through the moments before the node listens
    // and while it catches up, the lab answers its log without a 5xx.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut silent = 0;
    loop {
        let log = get(&format!("{}/lab/nodes/{follower}/log", demo.lab));
        assert_eq!(
            log.status, 200,
            "the log of a restarting node: {:?}",
            log.body
        );
        if log.body["answering"] == false {
            silent += 1;
        } else {
            assert!(log.body["entries"].is_array(), "{:?}", log.body);
        }
        let n = node(&lab_state(&demo), follower);
        if n["state"] == "running" && n["answering"] == true && n["role"] == "follower" {
            break;
        }
        assert!(Instant::now() < deadline, "{n}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        silent > 0,
        "asked right after the restart, the node did not answer yet at least once"
    );
}

fn url_of(demo: &Demo, id: u64) -> String {
    lab_state(demo)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .and_then(|n| n["url"].as_str())
        .unwrap()
        .trim_start_matches("http://")
        .to_string()
}

/// A lab call that may take a while (a removal waits for the cluster).
fn lab_call(demo: &Demo, method: &str, path: &str) -> (u16, Value) {
    let answer = ureq::request(method, &format!("{}{path}", demo.lab))
        .timeout(Duration::from_secs(90))
        .call();
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    (status, response.into_json().unwrap_or(Value::Null))
}

fn node_of(state: &Value, id: u64) -> Option<Value> {
    state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .cloned()
}

fn link_of(state: &Value, from: u64, to: u64) -> Value {
    state["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["from"] == from && l["to"] == to)
        .cloned()
        .unwrap_or_else(|| panic!("no link {from} → {to}: {state}"))
}

fn messages(state: &Value, from: u64, to: u64) -> u64 {
    link_of(state, from, to)["messages"].as_u64().unwrap()
}

/// Writes a card through whichever node takes it (retrying 503/504 while
/// the cluster settles), the same card each time (an idempotency key).
fn write_card(demo: &Demo, title: &str) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = lab_state(demo);
        for node in state["nodes"].as_array().unwrap() {
            if node["answering"] != true {
                continue;
            }
            let url = node["url"].as_str().unwrap();
            let created = send(
                "POST",
                &format!("{url}/api/tasks"),
                &[("Idempotency-Key", key.as_str())],
                Some(&json!({ "title": title })),
            );
            if [200, 201].contains(&created.status) {
                return created.body["id"].as_str().unwrap().to_string();
            }
        }
        assert!(Instant::now() < deadline, "no node took {title:?}: {state}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until the links `stopped` carry nothing more while `flowing`
/// carries at least `more` messages, twice over (the first round lets
/// what was in flight at the cut land).
fn assert_links_stopped(demo: &Demo, stopped: &[(u64, u64)], flowing: (u64, u64)) {
    let mut before: Option<Vec<u64>> = None;
    for _round in 0..2 {
        let start = messages(&lab_state(demo), flowing.0, flowing.1);
        let deadline = Instant::now() + Duration::from_secs(60);
        let state = loop {
            let state = lab_state(demo);
            if messages(&state, flowing.0, flowing.1) >= start + 20 {
                break state;
            }
            assert!(
                Instant::now() < deadline,
                "no traffic on {flowing:?}: {state}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let now: Vec<u64> = stopped
            .iter()
            .map(|(f, t)| messages(&state, *f, *t))
            .collect();
        for (from, to) in stopped {
            assert_eq!(link_of(&state, *from, *to)["state"], "cut", "{state}");
        }
        if let Some(before) = &before {
            assert_eq!(
                before, &now,
                "a cut link carries nothing while {flowing:?} carries on: {stopped:?}"
            );
        }
        before = Some(now);
    }
}

/// Every running node has applied the same index and holds the same rows.
fn wait_converged(demo: &Demo, ids: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state = lab_state(demo);
        let applied: Vec<Option<u64>> = ids
            .iter()
            .map(|id| node_of(&state, *id).and_then(|n| n["applied_index"].as_u64()))
            .collect();
        let commits: Vec<Option<u64>> = ids
            .iter()
            .map(|id| node_of(&state, *id).and_then(|n| n["commit_index"].as_u64()))
            .collect();
        let same = applied.iter().all(|a| a.is_some() && *a == applied[0])
            && commits.iter().all(|c| *c == applied[0]);
        if same {
            let rows: Vec<Vec<String>> = ids
                .iter()
                .map(|id| {
                    let url = node_of(&state, *id).unwrap()["url"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    let mut rows: Vec<String> = all_tasks(&url, "local")
                        .iter()
                        .map(|t| format!("{}:{}:{}", t["id"], t["title"], t["version"]))
                        .collect();
                    rows.sort();
                    rows
                })
                .collect();
            if rows.iter().all(|r| *r == rows[0]) && !rows[0].is_empty() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nodes {ids:?} did not converge: applied {applied:?}, commit {commits:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_lab_adds_a_node_that_joins_behind_relays_and_removes_it() {
    let demo = start_demo();
    wait_leader(&demo, None);
    for i in 0..5 {
        write_card(&demo, &format!("before the new node {i}"));
    }
    assert_eq!(lab_call(&demo, "DELETE", "/lab/nodes/9").0, 404);

    // Add: a fourth process, joining through the leader as a learner and
    // promoting itself once caught up.
    let (status, added) = lab_call(&demo, "POST", "/lab/nodes");
    assert_eq!(status, 202, "{added}");
    let id = added["id"].as_u64().unwrap();
    assert_eq!(id, 4, "the next unused id: {added}");
    // One membership change at a time: node 4 is not a voter yet (its
    // process has only just started), so no other node comes or goes.
    let refused = |answer: (u16, Value), why: &str| {
        assert_eq!(answer.0, 409, "{}", answer.1);
        let message = answer.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{}", answer.1);
    };
    refused(
        lab_call(&demo, "POST", "/lab/nodes"),
        "node 4 is not a voter yet",
    );
    refused(
        lab_call(&demo, "DELETE", "/lab/nodes/1"),
        "node 4 is not a voter yet",
    );
    let state = lab_state(&demo);
    assert_eq!(state["nodes"].as_array().unwrap().len(), 4, "{state}");
    assert_eq!(
        state["links"].as_array().unwrap().len(),
        12,
        "a link each way with each node: {state}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = lab_state(&demo);
        let node = node_of(&state, id).unwrap();
        if node["member"] == "voter" && node["answering"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} never became a voter: {state}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let url = added["url"].as_str().unwrap().to_string();
    let view = get(&format!("{url}/api/cluster")).body;
    let voters = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "voter")
        .count();
    assert_eq!(voters, 4, "{view}");
    // Every node knows every member by the same address, its relay's, not
    // its Raft port: node 4's peer traffic runs through the lab too.
    let addresses = |url: &str| -> Vec<(u64, String)> {
        get(&format!("{url}/api/cluster")).body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["id"].as_u64().unwrap(),
                    m["raft_addr"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let known = addresses(&url);
    assert_eq!(known.len(), 4, "{known:?}");
    for n in 1..=3 {
        assert_eq!(addresses(&format!("http://{}", url_of(&demo, n))), known);
    }
    for (member, addr) in &known {
        let raft_port = demo.base + 1000 + *member as u16 - 1;
        assert!(
            !addr.ends_with(&format!(":{raft_port}")),
            "node {member} is known by its Raft port, around the relay: {known:?}"
        );
    }
    wait_event(&demo, "node 4 added");
    wait_event(&demo, "node 4 joined the membership as a learner");
    wait_event(&demo, "node 4 is now a voter");

    // It replicates: same applied index, same rows.
    for i in 0..5 {
        write_card(&demo, &format!("with the new node {i}"));
    }
    wait_converged(&demo, &[1, 2, 3, 4]);
    let leader = wait_leader(&demo, None);
    // The link to cut: the leader's to node 4 (or node 1's, if node 4 leads);
    // the one to watch carry on: the leader's to another node.
    let peer = if leader == id { 1 } else { leader };
    let flowing = if leader == id {
        (id, 2)
    } else {
        (leader, (1..=3).find(|n| *n != leader).unwrap())
    };
    for (from, to) in [(peer, id), (id, peer)] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while messages(&lab_state(&demo), from, to) == 0 {
            assert!(Instant::now() < deadline, "nothing on {from} → {to}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Its links cut like the others: peer ↔ 4 carries nothing more while
    // the leader's link to another node carries on; a card written
    // meanwhile reaches node 4 once healed.
    let cut = post(
        &demo,
        "/lab/links",
        Some(json!({"from": peer, "to": id, "state": "cut", "both": true})),
    );
    assert_eq!(cut.status, 202, "{:?}", cut.body);
    assert_links_stopped(&demo, &[(peer, id), (id, peer)], flowing);
    let during = write_card(&demo, "while a link of node 4 is cut");
    let healed = post(
        &demo,
        "/lab/links",
        Some(json!({"from": peer, "to": id, "state": "ok", "both": true})),
    );
    assert_eq!(healed.status, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&format!("{url}/api/tasks/{during}")).status != 200 {
        assert!(
            Instant::now() < deadline,
            "node 4 never got the card written during the cut"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Isolate works on it too: all six of its links.
    assert_eq!(post(&demo, &format!("/lab/isolate/{id}"), None).status, 202);
    let state = lab_state(&demo);
    let mine: Vec<(u64, u64)> = (1..=3).flat_map(|n| [(n, id), (id, n)]).collect();
    for (from, to) in &mine {
        assert_eq!(link_of(&state, *from, *to)["state"], "cut", "{state}");
    }
    let leader = wait_leader(&demo, Some(id));
    let other = (1..=3).find(|n| *n != leader).unwrap();
    assert_links_stopped(&demo, &mine, (leader, other));
    assert_eq!(post(&demo, "/lab/heal", None).status, 202);
    wait_converged(&demo, &[1, 2, 3, 4]);

    // Remove it while it leads: leadership is handed away first.
    let handed = post(&demo, "/lab/leader", Some(json!({ "to": id })));
    assert_eq!(handed.status, 202, "{:?}", handed.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    while wait_leader(&demo, None) != id {
        assert!(Instant::now() < deadline, "node {id} never led");
        let again = post(&demo, "/lab/leader", Some(json!({ "to": id })));
        assert!([202, 409].contains(&again.status), "{:?}", again.body);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, removed) = lab_call(&demo, "DELETE", &format!("/lab/nodes/{id}"));
    assert_eq!(status, 200, "{removed}");
    let state = lab_state(&demo);
    assert_eq!(state["nodes"].as_array().unwrap().len(), 3, "{state}");
    assert_eq!(state["links"].as_array().unwrap().len(), 6, "{state}");
    assert!(node_of(&state, id).is_none());
    assert_eq!(
        get(&format!("{url}/healthz")).status,
        0,
        "the removed node's process is stopped"
    );
    let leader = wait_leader(&demo, Some(id));
    let view = get(&format!("http://{}/api/cluster", url_of(&demo, leader))).body;
    let members: Vec<(u64, String)> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        members,
        (1..=3)
            .map(|n| (n, "voter".to_string()))
            .collect::<Vec<_>>(),
        "back to three voters"
    );
    write_card(&demo, "after node 4 left");
    wait_converged(&demo, &[1, 2, 3]);
    wait_event(&demo, "node 4 left the membership");
    wait_event(&demo, "node 4 removed from the cluster and stopped");

    // A removal that would leave the voters without a majority up is
    // refused before anything is asked of the cluster: with one of three
    // killed, removing a running one would leave one of two.
    let down = (1..=3).find(|n| *n != leader).unwrap();
    assert_eq!(
        post(&demo, &format!("/lab/nodes/{down}/kill"), None).status,
        202
    );
    refused(
        lab_call(&demo, "DELETE", &format!("/lab/nodes/{leader}")),
        "not a majority",
    );
    let view = get(&format!("http://{}/api/cluster", url_of(&demo, leader))).body;
    assert_eq!(view["members"].as_array().unwrap().len(), 3, "{view}");
}

/// Waits for the lab's timeline to show `text` (what the nodes report is
/// polled, so it lands a moment after the change).
fn wait_event(demo: &Demo, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = lab_state(demo)["events"].to_string();
        if events.contains(text) {
            return;
        }
        assert!(Instant::now() < deadline, "no {text:?} in {events}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
