//! `taskraft status`: the cluster as one node sees it, as a table, and
//! whether that node can serve (for scripts: the exit status).

use std::time::Duration;

use serde_json::Value;

/// How one look at a node went.
pub enum Health {
    /// It knows a leader and `/readyz` says ready.
    Serving,
    /// It answered, but has no leader or is not ready.
    NotServing,
}

/// Prints the node's view once, or every `watch` until interrupted.
/// Exits (the caller does) non-zero when the last look found no leader or
/// the node not ready; an unreachable node is an error.
pub fn run(url: &str, watch: Option<Duration>) -> Result<Health, String> {
    let url = url.trim_end_matches('/');
    let Some(every) = watch else {
        let (text, health) = look(url)?;
        print!("{text}");
        return Ok(health);
    };
    loop {
        let text = match look(url) {
            Ok((text, _)) => text,
            // Watching goes on through a node's restart.
            Err(e) => format!("{e}\n"),
        };
        // Clear the screen and go home, as `watch` does.
        print!(
            "\x1b[2J\x1b[H{} — every {}s, Ctrl-C to stop\n\n{text}",
            url,
            every.as_secs_f64()
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::thread::sleep(every);
    }
}

fn look(url: &str) -> Result<(String, Health), String> {
    let agent = crate::peer_http::agent_builder()
        .timeout(Duration::from_secs(5))
        .build();
    // With auth on, `/api/cluster` needs a token: a personal one in
    // TASKRAFT_TOKEN, or the service token in TASKRAFT_API_TOKEN.
    let mut request = agent.get(&format!("{url}/api/cluster"));
    if let Some(token) = ["TASKRAFT_TOKEN", "TASKRAFT_API_TOKEN"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|t| !t.is_empty()))
    {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = request.call().map_err(|e| format!("{url}: {e}"))?;
    let view: Value = response.into_json().map_err(|e| format!("{url}: {e}"))?;
    // 503 carries the reasons in its body: ureq reports it as an error.
    let ready: Value = match agent.get(&format!("{url}/readyz")).call() {
        Ok(r) => r.into_json().unwrap_or(Value::Null),
        Err(ureq::Error::Status(_, r)) => r.into_json().unwrap_or(Value::Null),
        Err(e) => return Err(format!("{url}/readyz: {e}")),
    };
    let mut out = render(&view);
    let serving = !view["leader_id"].is_null() && ready["ready"] == Value::Bool(true);
    if serving {
        out.push_str("\nready\n");
    } else {
        out.push_str("\nNOT READY");
        for problem in ready["problems"].as_array().into_iter().flatten() {
            out.push_str(&format!("\n  - {}", text(problem)));
        }
        out.push('\n');
    }
    Ok((
        out,
        if serving {
            Health::Serving
        } else {
            Health::NotServing
        },
    ))
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn render(view: &Value) -> String {
    let mut out = format!(
        "node {} ({}) is {} in term {}; leader: {}\ncommit index {}, applied index {}, last index {}\nversion {} (commit {}), cluster version {}\n",
        text(&view["node_id"]),
        text(&view["url"]),
        text(&view["role"]),
        text(&view["term"]),
        text(&view["leader_id"]),
        text(&view["commit_index"]),
        text(&view["applied_index"]),
        text(&view["last_index"]),
        text(&view["version"]),
        text(&view["commit"]),
        text(&view["cluster_version"]),
    );
    if let Some(error) = view["apply_error"].as_str() {
        if error.starts_with("applier stopped") {
            out.push_str(&format!("{error}\n"));
        } else {
            out.push_str(&format!("applier retrying after: {error}\n"));
        }
    }
    out.push_str(&format!(
        "\n{:<4} {:<8} {:<7} {:<22} {:<28} {:<10} {}\n",
        "id", "role", "leader", "raft_addr", "url", "reachable", "match_index"
    ));
    for member in view["members"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<4} {:<8} {:<7} {:<22} {:<28} {:<10} {}\n",
            text(&member["id"]),
            text(&member["role"]),
            if member["is_leader"] == Value::Bool(true) {
                "*"
            } else {
                ""
            },
            text(&member["raft_addr"]),
            text(&member["url"]),
            if member["reachable"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            },
            text(&member["match_index"]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_every_member_and_the_leader() {
        let view = serde_json::json!({
            "node_id": 2, "url": "http://127.0.0.1:8082", "role": "follower", "term": 3,
            "leader_id": 1, "commit_index": 10, "applied_index": 9, "last_index": 10, "apply_error": null,
            "version": "0.1.0", "commit": "0123456789ab", "cluster_version": "0.1.0",
            "members": [
                {"id": 1, "role": "voter", "is_leader": true, "raft_addr": "127.0.0.1:9081", "url": "http://127.0.0.1:8081", "reachable": true, "match_index": null},
                {"id": 2, "role": "voter", "is_leader": false, "raft_addr": "127.0.0.1:9082", "url": "http://127.0.0.1:8082", "reachable": true, "match_index": null}
            ]
        });
        let table = render(&view);
        assert!(
            table.starts_with("node 2 (http://127.0.0.1:8082) is follower in term 3; leader: 1"),
            "{table}"
        );
        assert!(
            table.contains("version 0.1.0 (commit 0123456789ab), cluster version 0.1.0"),
            "{table}"
        );
        assert_eq!(table.lines().filter(|l| l.contains("voter")).count(), 2);
        assert!(table
            .lines()
            .any(|l| l.starts_with("1 ") && l.contains('*')));
    }
}
