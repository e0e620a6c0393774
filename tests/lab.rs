//! The lab of `taskraft demo --lab`, through its API, on real processes:
//! it exists there and nowhere else, and its faults are real ones.

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

/// A base port whose block (HTTP, Raft at +1000, the lab at +90) is free.
fn free_base() -> u16 {
    for _ in 0..200 {
        let base = 20000 + (uuid::Uuid::new_v4().as_u128() % 20000) as u16;
        let ports = [
            base,
            base + 1,
            base + 2,
            base + 90,
            base + 1000,
            base + 1001,
            base + 1002,
        ];
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
    let mut child = Command::new(BIN)
        .args(["demo", "--lab", "--fresh", "--nodes", "3", "--http-port"])
        .arg(free_base().to_string())
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .env_remove("TASKRAFT_MYSQL_URL")
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
    Demo {
        child,
        lab: lab.trim_end_matches("/lab").to_string(),
        _dir: dir,
    }
}

fn lab_state(demo: &Demo) -> Value {
    let state = get(&format!("{}/lab/state", demo.lab));
    assert_eq!(state.status, 200, "{:?}", state.body);
    state.body
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
    let state = lab_state(&demo);
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
    assert_eq!(
        post(&demo, &format!("/lab/nodes/{follower}/restart"), None).status,
        202
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = node(&lab_state(&demo), follower);
        if n["state"] == "running" && n["answering"] == true && n["role"] == "follower" {
            break;
        }
        assert!(Instant::now() < deadline, "{n}");
        std::thread::sleep(Duration::from_millis(200));
    }
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
