//! `testbed-cluster`: a testbed [`Cluster`] driven over stdin/stdout, for
//! test runners that are not Rust (the browser tests' `lib/cluster.mjs`).
//!
//! ```text
//! testbed-cluster [--nodes N] [--bin PATH] [--auth PASSWORD] [--env KEY=VALUE]...
//! ```
//!
//! In an `--env` value, `{url}` stands for each node's own URL (e.g.
//! `TASKRAFT_OIDC_REDIRECT_URL={url}/auth/oidc/callback`).
//!
//! Nodes run with `auth = "off"` unless `--auth PASSWORD` is given: then
//! with accounts on, the first admin `admin` with that password, and the
//! ready line also carries `"admin": {"username", "password"}` and
//! `"api_token"` (an admin-level service token).
//!
//! Starts a private MariaDB and N nodes of `PATH` (default: `TASKRAFT_BIN`,
//! else the `taskraft` beside this binary) with the settings `taskraft
//! demo` gives its nodes, waits for an agreed leader, and prints one JSON
//! line: `{"ready":true,"dir":…,"nodes":[{"id":1,"url":…,"pid":…},…]}`.
//! Then it reads one command a line and answers each with one JSON line
//! (`{"ok":true,"id":…,"pid":…}` or `{"ok":false,"error":…}`):
//!
//! - `kill ID` (`kill -9`), `terminate ID` (SIGTERM), `pause ID`
//!   (SIGSTOP), `resume ID` (SIGCONT);
//! - `restart ID`: starts the node again on its data (whoever stopped it:
//!   a node killed by PID a moment ago is given 5 s to die) and answers
//!   once it is ready;
//! - `stop`, or the end of its input: stops everything and exits.
//!
//! Every process it starts dies with it (`PR_SET_PDEATHSIG`), so a runner
//! that is killed leaves nothing behind.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use testbed::mysqld::CommandHook;
use testbed::{Cluster, Options};

fn main() {
    if let Err(e) = run() {
        eprintln!("testbed-cluster: {e}");
        std::process::exit(2);
    }
}

/// Makes a child die (SIGKILL) when this process does.
fn die_with_parent() -> CommandHook {
    CommandHook::new(|command| {
        // SAFETY: prctl is async-signal-safe; it only sets this child's
        // parent-death signal, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

fn run() -> Result<(), String> {
    let mut nodes = 3usize;
    let mut binary = std::env::var_os("TASKRAFT_BIN").map(PathBuf::from);
    let mut env = Vec::new();
    let mut auth: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--nodes" => {
                nodes = value()?.parse().map_err(|e| format!("--nodes: {e}"))?;
            }
            "--bin" => binary = Some(PathBuf::from(value()?)),
            "--auth" => auth = Some(value()?),
            "--env" => {
                let pair = value()?;
                let (k, v) = pair
                    .split_once('=')
                    .ok_or(format!("--env {pair}: KEY=VALUE"))?;
                env.push((k.to_string(), v.to_string()));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if nodes == 0 || nodes > 9 {
        return Err("--nodes must be 1 to 9".into());
    }
    let binary = match binary {
        Some(binary) => binary,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("taskraft"),
    };
    if !binary.is_file() {
        return Err(format!("no taskraft binary at {}", binary.display()));
    }

    let mut options = Options::new(binary);
    options.prefix = "taskraft-board-".into();
    // What `taskraft demo` gives its nodes and its server: a share of the
    // cores each, a 512 MB buffer pool, no fsync at every commit.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    options.env.push((
        "TASKRAFT_HTTP_WORKERS".into(),
        (cores / nodes).max(1).to_string(),
    ));
    let api_token = testbed::new_secret();
    if let Some(password) = &auth {
        options = options.with_auth(password, &api_token);
    }
    // Values naming the node's own URL are set per node below.
    let (per_node, shared): (Vec<_>, Vec<_>) =
        env.into_iter().partition(|(_, v)| v.contains("{url}"));
    options.env.extend(shared);
    options.mysql.buffer_pool = "512M".into();
    options.mysql.flush_at_commit = 2;
    options.mysql.hook = Some(die_with_parent());
    let hook = die_with_parent();
    let mut cluster = Cluster::launch_after(nodes, options, |cluster| {
        for node in &mut cluster.nodes {
            node.spec.hook = Some(hook.clone());
            let url = node.spec.url();
            for (k, v) in &per_node {
                node.spec.set_env(k, &v.replace("{url}", &url));
            }
        }
    });

    let mut ready = json!({
        "ready": true,
        "dir": cluster.dir.path(),
        "nodes": cluster
            .nodes
            .iter()
            .map(|n| json!({ "id": n.id, "url": n.url(), "pid": n.pid() }))
            .collect::<Vec<_>>(),
    });
    if let Some(password) = &auth {
        // The nodes create the first admin a moment after a leader exists;
        // a user made before that (with the service token) would stop them
        // for good, so "ready" means the admin exists.
        wait_for_admin(&cluster.nodes[0].url(), &api_token)?;
        ready["admin"] = json!({ "username": "admin", "password": password });
        ready["api_token"] = json!(api_token);
    }
    say(&ready);

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"stop") {
            break;
        }
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            command(&mut cluster, &words)
        }))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            Err(message)
        });
        say(&match answer {
            Ok(value) => value,
            Err(error) => json!({ "ok": false, "error": error }),
        });
    }
    for node in &mut cluster.nodes {
        node.terminate(Duration::from_secs(15));
    }
    Ok(())
}

fn command(cluster: &mut Cluster, words: &[&str]) -> Result<Value, String> {
    let (verb, id) = match words {
        [verb, id] => (*verb, id.parse::<u64>().map_err(|e| format!("{id}: {e}"))?),
        _ => return Err(format!("not a command: {}", words.join(" "))),
    };
    if id == 0 || id as usize > cluster.nodes.len() {
        return Err(format!("no node {id}"));
    }
    match verb {
        "kill" => cluster.kill(id),
        "terminate" => {
            cluster.terminate(id, Duration::from_secs(15));
        }
        "pause" => cluster.pause(id),
        "resume" => cluster.resume(id),
        "restart" => {
            // A node the runner just killed by PID may not have died yet.
            let node = cluster.node_mut(id);
            node.wait_exit(Duration::from_secs(5));
            if node.is_running() {
                return Err(format!("node {id} is running; kill it first"));
            }
            cluster.restart(id);
        }
        other => return Err(format!("unknown command {other}")),
    }
    Ok(json!({ "ok": true, "id": id, "pid": cluster.node(id).pid() }))
}

/// Waits (up to a minute) until `GET /api/users` on `url` lists `admin`.
fn wait_for_admin(url: &str, api_token: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = testbed::get_with(
            &format!("{url}/api/users"),
            Duration::from_secs(5),
            Some(api_token),
        );
        let listed = body["users"]
            .as_array()
            .is_some_and(|users| users.iter().any(|u| u["username"] == "admin"));
        if listed {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "the bootstrap admin did not appear within 60 s (last: {status} {body})"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn say(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
