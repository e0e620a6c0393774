//! `taskraft demo`: a whole local cluster from one command.
//!
//! A private MySQL/MariaDB server (unless `TASKRAFT_MYSQL_URL` names one),
//! then N nodes as child processes of this binary, each with its own
//! database, data directory and log file. The data directory is kept
//! between runs (so is the board); `--fresh` starts from nothing. Ctrl-C
//! stops the nodes (SIGTERM, so leadership is handed over) and the server.
//! The nodes share a `cluster_secret`: `TASKRAFT_CLUSTER_SECRET` if set,
//! else one made at the first run and kept in `<dir>/cluster-secret`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mysqld::{self, PrivateMysql, ServerOptions};

pub struct DemoOptions {
    pub nodes: usize,
    /// Node i serves HTTP on `http_port + i - 1` and Raft on that + 1000.
    pub http_port: u16,
    pub dir: PathBuf,
    pub fresh: bool,
}

struct Node {
    id: usize,
    child: Child,
    url: String,
    log: PathBuf,
    /// The exit already reported, so it is reported once.
    reported: bool,
}

pub fn run(options: DemoOptions) -> Result<(), String> {
    if options.nodes == 0 || options.nodes > 9 {
        return Err("--nodes must be 1 to 9".into());
    }
    if options.fresh && options.dir.exists() {
        std::fs::remove_dir_all(&options.dir)
            .map_err(|e| format!("removing {}: {e}", options.dir.display()))?;
    }
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;

    let (server, mysql_base) = match std::env::var("TASKRAFT_MYSQL_URL") {
        Ok(url) if !url.is_empty() => {
            println!(
                "MySQL: using TASKRAFT_MYSQL_URL ({})",
                crate::config::redact(&url)
            );
            (None, url)
        }
        _ => {
            let port = mysqld::free_port();
            let mut server_options = ServerOptions::on_port(port);
            server_options.buffer_pool = "512M".into();
            // 2: see README, Storage (safe because the Raft log is fsynced).
            server_options.flush_at_commit = std::env::var("TASKRAFT_DEMO_MYSQL_FLUSH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2);
            print!("MySQL: starting a private server on 127.0.0.1:{port} … ");
            let server = PrivateMysql::start(&options.dir.join("mysql"), server_options)?;
            println!("ready (data in {})", server.datadir.display());
            (Some(server), format!("mysql://root@127.0.0.1:{port}/"))
        }
    };

    let secret = match std::env::var("TASKRAFT_CLUSTER_SECRET") {
        Ok(secret) if !secret.is_empty() => secret,
        _ => cluster_secret(&options.dir)?,
    };
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    // The nodes share this machine's cores: one HTTP worker each per core's
    // share, not one per core each (fewer threads, fewer context switches).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = std::env::var("TASKRAFT_HTTP_WORKERS")
        .unwrap_or_else(|_| (cores / options.nodes).max(1).to_string());
    let ids = 1..=options.nodes;
    let raft_port = |i: usize| options.http_port + 1000 + i as u16 - 1;
    let http_port = |i: usize| options.http_port + i as u16 - 1;
    let peers = ids
        .clone()
        .map(|i| format!("{i}=127.0.0.1:{}", raft_port(i)))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = Vec::new();
    for i in ids {
        let log = options.dir.join(format!("n{i}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let url = format!("http://127.0.0.1:{}", http_port(i));
        let child = Command::new(&exe)
            .arg("serve")
            .env("TASKRAFT_NODE_ID", i.to_string())
            .env("TASKRAFT_HTTP_ADDR", format!("127.0.0.1:{}", http_port(i)))
            .env("TASKRAFT_RAFT_ADDR", format!("127.0.0.1:{}", raft_port(i)))
            .env("TASKRAFT_PEERS", &peers)
            .env(
                "TASKRAFT_MYSQL_URL",
                with_database(&mysql_base, &format!("taskraft_demo_n{i}"))?,
            )
            .env("TASKRAFT_DATA_DIR", options.dir.join(format!("n{i}")))
            .env("TASKRAFT_HTTP_WORKERS", &workers)
            .env("TASKRAFT_CLUSTER_SECRET", &secret)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting node {i}: {e}"))?;
        nodes.push(Node {
            id: i,
            child,
            url,
            log,
            reported: false,
        });
    }

    let result = wait_ready(&mut nodes, Duration::from_secs(60)).map(|()| {
        println!("\ntaskraft is running: {} nodes, one Raft cluster.\n", nodes.len());
        for node in &nodes {
            println!("  node {}  board  {}/", node.id, node.url);
        }
        println!("\n  cluster  {}/api/cluster", nodes[0].url);
        println!("  logs     {}/n*.log", options.dir.display());
        println!("\nTry stopping a node (kill -9 its PID) and watch the others carry on. Ctrl-C stops everything.");
        for node in &nodes {
            println!("  node {} pid {}", node.id, node.child.id());
        }
        supervise(&mut nodes);
    });

    println!("\nstopping the nodes …");
    for node in &nodes {
        mysqld::signal(node.child.id(), libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for node in &mut nodes {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = node.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
    if let Some(mut server) = server {
        println!("stopping MySQL …");
        server.stop(Duration::from_secs(30));
    }
    println!(
        "stopped; the data stays in {} (use --fresh to start over)",
        options.dir.display()
    );
    result
}

/// `url` with its database replaced by `database`, options kept.
/// The demo's cluster secret: read from `<dir>/cluster-secret`, or made
/// (256 random bits) and written there, readable by this user only.
fn cluster_secret(dir: &Path) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("cluster-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        if !secret.trim().is_empty() {
            return Ok(secret.trim().to_string());
        }
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(secret.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secret)
}

fn with_database(url: &str, database: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("TASKRAFT_MYSQL_URL is not a mysql:// URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let options = rest.find('?').map(|at| &rest[at..]).unwrap_or("");
    Ok(format!("{scheme}://{authority}/{database}{options}"))
}

fn wait_ready(nodes: &mut [Node], within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    for node in nodes.iter_mut() {
        loop {
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(format!(
                    "node {} exited ({status}) during start-up:\n{}",
                    node.id,
                    tail(&node.log, 20)
                ));
            }
            let ready = ureq::get(&format!("{}/readyz", node.url))
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok();
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {} not ready after {within:?}:\n{}",
                    node.id,
                    tail(&node.log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM, reporting nodes that exit meanwhile.
fn supervise(nodes: &mut [Node]) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot wait for signals: {e}");
            return;
        }
    };
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = poll.tick() => {
                    for node in nodes.iter_mut() {
                        if let Ok(Some(status)) = node.child.try_wait() {
                            if !node.reported {
                                node.reported = true;
                                println!("node {} exited ({status}); the others carry on. Log: {}", node.id, node.log.display());
                            }
                        }
                    }
                }
            }
        }
    });
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_gets_its_own_database_on_the_same_server() {
        assert_eq!(
            with_database("mysql://root@db:3306/x?prefer_socket=false", "n1").unwrap(),
            "mysql://root@db:3306/n1?prefer_socket=false"
        );
        assert_eq!(
            with_database("mysql://u:p@127.0.0.1:3307", "n2").unwrap(),
            "mysql://u:p@127.0.0.1:3307/n2"
        );
    }
}
