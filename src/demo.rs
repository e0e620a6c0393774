//! `taskraft demo`: a whole local cluster from one command.
//!
//! A private MySQL/MariaDB server (unless `TASKRAFT_MYSQL_URL` names one),
//! then N nodes as child processes of this binary, each with its own
//! database, data directory and log file. The data directory is kept
//! between runs (so is the board); `--fresh` starts from nothing. Ctrl-C
//! stops the nodes (SIGTERM, so leadership is handed over) and the server.
//! The nodes share a `cluster_secret`: `TASKRAFT_CLUSTER_SECRET` if set,
//! else one made at the first run and kept in `<dir>/cluster-secret`.
//! With `--lab`, every peer link runs through a relay and the lab's page
//! and API are served on a port of their own (see [`crate::lab`]).
//!
//! Accounts are on: the first admin is `admin` with a random password made
//! at the first run and kept in `<dir>/admin-password` (printed with the
//! board's URLs), and the nodes share an admin-level service `api_token`
//! (`<dir>/api-token`) that the lab drives membership with.
//! `TASKRAFT_AUTH=off taskraft demo` runs them without accounts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::lab::{self, Lab};
use crate::mysqld::{self, PrivateMysql, ServerOptions};

pub struct DemoOptions {
    pub nodes: usize,
    /// Node i serves HTTP on `http_port + i - 1` and Raft on that + 1000.
    pub http_port: u16,
    pub dir: PathBuf,
    pub fresh: bool,
    /// Put a relay on every peer link and serve the lab (see [`crate::lab`]).
    pub lab: bool,
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
            // Extra server options, for measuring MariaDB's own settings.
            if let Ok(args) = std::env::var("TASKRAFT_DEMO_MYSQL_ARGS") {
                server_options.extra_args = args.split_whitespace().map(String::from).collect();
            }
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
    let ids = 1..=options.nodes as u64;

    // The lab: its port first (the nodes are told it), then a relay in
    // front of every node's Raft port; each node knows every member (itself
    // included) by its relay's address.
    let lab_listener = if options.lab {
        let listener = std::net::TcpListener::bind(("127.0.0.1", options.http_port + 90))
            .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("the lab's port: {e}"))?;
        Some(listener)
    } else {
        None
    };
    let lab_url = match &lab_listener {
        Some(l) => Some(format!(
            "http://127.0.0.1:{}",
            l.local_addr().map_err(|e| e.to_string())?.port()
        )),
        None => None,
    };
    let auth = std::env::var("TASKRAFT_AUTH").map_or(true, |v| v != "off");
    // 18 random characters from an alphabet without look-alikes.
    let admin_password = kept_secret(&options.dir, "admin-password", || {
        let alphabet = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789";
        let mut bytes = [0u8; 18];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        bytes
            .iter()
            .map(|b| alphabet[*b as usize % alphabet.len()] as char)
            .collect()
    })?;
    let api_token = kept_secret(&options.dir, "api-token", crate::accounts::random_secret)?;
    let template = lab::NodeTemplate {
        dir: options.dir.clone(),
        mysql_base,
        secret,
        api_token,
        bootstrap_admin: auth.then(|| format!("admin:{admin_password}")),
        http_workers: workers,
        lab_url: lab_url.clone(),
        http_base: options.http_port,
    };
    let lab = std::sync::Arc::new(Lab::new(exe.clone(), template));
    let port = |what: &str, p: Option<u16>| p.ok_or(format!("--http-port is too high for {what}"));
    let raft_addr = |i: u64| -> Result<std::net::SocketAddr, String> {
        Ok(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            port("the Raft ports", lab.template().raft_port(i))?,
        )))
    };
    let mut peers = Vec::new();
    for i in ids.clone() {
        let dial = if options.lab {
            lab.add_relay(i, raft_addr(i)?)?
        } else {
            raft_addr(i)?
        };
        peers.push(format!("{i}={dial}"));
    }
    let peers = peers.join(",");

    for i in ids {
        let http = port("the HTTP ports", lab.template().http_port(i))?;
        let mut node = lab.template().node(
            i,
            http,
            raft_addr(i)?,
            vec![
                ("TASKRAFT_PEERS".into(), peers.clone()),
                // The demo runs on one machine: a webhook's receiver there
                // is a local one (a `nc -l`, a script), which the default
                // guard refuses.
                (
                    "TASKRAFT_WEBHOOK_ALLOW_PRIVATE".into(),
                    std::env::var("TASKRAFT_WEBHOOK_ALLOW_PRIVATE")
                        .unwrap_or_else(|_| "true".into()),
                ),
            ],
        )?;
        node.spawn(&exe)?;
        lab.nodes().push(node);
    }

    let result = wait_ready(&lab, Duration::from_secs(60)).and_then(|()| {
        if let (Some(listener), Some(lab_url)) = (lab_listener, &lab_url) {
            lab::start_polling(lab.clone());
            lab::serve(lab.clone(), listener).map_err(|e| format!("serving the lab: {e}"))?;
            lab.record(
                "fault",
                "the lab started: every peer link runs through a relay".into(),
            );
            let _ = lab_url;
        }
        let nodes = lab.nodes();
        println!("\ntaskraft is running: {} nodes, one Raft cluster.\n", nodes.len());
        for node in nodes.iter() {
            println!("  node {}  board  {}/", node.id, node.url);
        }
        if auth {
            println!("\n  login    user admin  password {admin_password}");
            println!("           (kept in {}/admin-password)", options.dir.display());
        } else {
            println!("\n  auth is off (TASKRAFT_AUTH=off): no login");
        }
        println!("\n  cluster  {}/api/cluster", nodes[0].url);
        println!("  charts   {}/cluster", nodes[0].url);
        println!("  logs     {}/n*.log", options.dir.display());
        if let Some(lab_url) = &lab_url {
            println!("\nlab  {lab_url}/lab");
            println!("\nThe lab: kill, pause, partition and heal nodes from the page; every peer link runs through a relay.");
        } else {
            println!("\nTry stopping a node (kill -9 its PID) and watch the others carry on. Ctrl-C stops everything.");
        }
        for node in nodes.iter() {
            println!("  node {} pid {}", node.id, node.pid().unwrap_or(0));
        }
        drop(nodes);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        supervise(&lab);
        Ok(())
    });

    println!("\nstopping the nodes …");
    let mut nodes = lab.nodes();
    for node in nodes.iter_mut() {
        if let Some(pid) = node.pid() {
            // A paused node must run to handle its SIGTERM.
            mysqld::signal(pid, libc::SIGCONT);
            mysqld::signal(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for node in nodes.iter_mut() {
        let Some(child) = node.child.as_mut() else {
            continue;
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(nodes);
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

/// The demo's cluster secret: read from `<dir>/cluster-secret`, or made
/// (256 random bits) and written there, readable by this user only.
fn cluster_secret(dir: &Path) -> Result<String, String> {
    kept_secret(dir, "cluster-secret", || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    })
}

/// A secret kept in `<dir>/<name>`: read, or made by `make` and written
/// there, readable by this user only.
fn kept_secret(dir: &Path, name: &str, make: impl FnOnce() -> String) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        if !secret.trim().is_empty() {
            return Ok(secret.trim().to_string());
        }
    }
    let secret = make();
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

fn wait_ready(lab: &Lab, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let targets: Vec<(u64, String, PathBuf)> = lab
        .nodes()
        .iter()
        .map(|n| (n.id, n.url.clone(), n.log.clone()))
        .collect();
    for (id, url, log) in targets {
        loop {
            let exited = lab
                .nodes()
                .iter_mut()
                .find(|n| n.id == id)
                .and_then(|n| n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if let Some(status) = exited {
                return Err(format!(
                    "node {id} exited ({status}) during start-up:\n{}",
                    tail(&log, 20)
                ));
            }
            let ready = ureq::get(&format!("{url}/readyz"))
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok();
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {id} not ready after {within:?}:\n{}",
                    tail(&log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM, reporting nodes that exit meanwhile (the
/// lab's kills are its own, and not reported).
fn supervise(lab: &Lab) {
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
                    let mut exited = Vec::new();
                    for node in lab.nodes().iter_mut() {
                        if let Some(Ok(Some(status))) = node.child.as_mut().map(|c| c.try_wait()) {
                            if !node.reported {
                                node.reported = true;
                                exited.push((node.id, status, node.log.clone()));
                            }
                        }
                    }
                    for (id, status, log) in exited {
                        println!("node {id} exited ({status}); the others carry on. Log: {}", log.display());
                        lab.record("fault", format!("node {id} exited ({status})"));
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
