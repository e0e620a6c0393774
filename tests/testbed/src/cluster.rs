//! N nodes on loopback over one private MariaDB: what the integration
//! tests and the browser tests run against. Each node has its own
//! database on the server, its own data directory and log under one
//! temporary directory, and the nodes share a secret made for the cluster.
//!
//! A failure to start (the server, a node, no leader) panics with the
//! nodes' log tails, as a test wants; on drop every node is killed and the
//! server stopped, and with `TASKRAFT_TEST_KEEP` set the directory is kept.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use taskraft::mysqld::{self, PrivateMysql, ServerOptions};

use crate::node::{Node, NodeSpec};

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// The node build to run.
    pub binary: PathBuf,
    /// Environment for every node (a `TASKRAFT_CLUSTER_SECRET` here wins
    /// over the one made for the cluster).
    pub env: Vec<(String, String)>,
    /// The private server's options (its port is chosen here); ignored when
    /// `TASKRAFT_TEST_MYSQL_URL` names a server.
    pub mysql: ServerOptions,
    /// Copy the server's data directory from [`mysqld::template`] under
    /// this folder rather than initializing it (`None`: initialize).
    pub template_root: Option<PathBuf>,
    /// Prefix of the temporary directory.
    pub prefix: String,
}

impl Options {
    /// `binary`, no extra environment, a 256 MB buffer pool, the server's
    /// data copied from the template under [`crate::template_root`].
    pub fn new(binary: impl Into<PathBuf>) -> Options {
        Options {
            binary: binary.into(),
            env: Vec::new(),
            mysql: ServerOptions::on_port(0),
            template_root: Some(crate::template_root()),
            prefix: "taskraft-test-".into(),
        }
    }

    /// Nodes run with `auth = "on"`: the first admin is `admin` with
    /// `admin_password`, and `api_token` (the admin-level service token)
    /// is what the harness itself reads `/api/cluster` with.
    pub fn with_auth(mut self, admin_password: &str, api_token: &str) -> Options {
        for (k, v) in [
            ("TASKRAFT_AUTH", "on".to_string()),
            (
                "TASKRAFT_BOOTSTRAP_ADMIN",
                format!("admin:{admin_password}"),
            ),
            ("TASKRAFT_API_TOKEN", api_token.to_string()),
        ] {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v));
        }
        self
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    mysql: Option<PrivateMysql>,
    /// `mysql://user@host:port` (no database).
    mysql_base: String,
    /// Database names are `<unique>_n<id>`.
    unique: String,
    pub nodes: Vec<Node>,
    /// The build `rebuild --check` runs (nodes may run another).
    binary: PathBuf,
    /// The CA of [`Cluster::enable_tls`], once called.
    tls: Option<crate::certs::Ca>,
}

impl Cluster {
    /// Starts the server and `n` nodes, and waits until a leader serves.
    pub fn launch(n: usize, options: Options) -> Cluster {
        Cluster::launch_after(n, options, |_| {})
    }

    /// Like [`Cluster::launch`], running `setup` once the server is up and
    /// before any node starts (to create accounts, set per-node env…).
    pub fn launch_after(n: usize, options: Options, setup: impl FnOnce(&mut Cluster)) -> Cluster {
        let mut cluster = Cluster::prepare(n, options);
        setup(&mut cluster);
        for id in 1..=n as u64 {
            cluster.spawn(id);
        }
        for id in 1..=n as u64 {
            cluster.wait_ready(id, Duration::from_secs(60));
        }
        cluster.leader(Duration::from_secs(30));
        cluster
    }

    /// The server up and `n` nodes described; none started.
    pub fn prepare(n: usize, options: Options) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix(&options.prefix)
            .tempdir()
            .expect("a temp dir");
        let unique = dir
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .replace(['-', '.'], "_");
        let (mysql, mysql_base) = match std::env::var("TASKRAFT_TEST_MYSQL_URL") {
            Ok(url) if !url.is_empty() => (None, url.trim_end_matches('/').to_string()),
            _ => {
                let mut server_options = options.mysql.clone();
                server_options.port = mysqld::free_port();
                if let Some(root) = &options.template_root {
                    server_options.template =
                        Some(mysqld::template(root).expect("a MariaDB template data directory"));
                }
                let server = PrivateMysql::start(&dir.path().join("mysql"), server_options)
                    .expect("a private MySQL server starts");
                let base = format!("mysql://root@127.0.0.1:{}", server.port);
                (Some(server), base)
            }
        };
        let mut env = options.env.clone();
        if !env.iter().any(|(k, _)| k == "TASKRAFT_CLUSTER_SECRET") {
            env.push(("TASKRAFT_CLUSTER_SECRET".into(), crate::new_secret()));
        }
        let ports = crate::free_ports(2 * n);
        let peers = (0..n)
            .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[n + i]))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| {
                let id = i as u64 + 1;
                Node::new(NodeSpec {
                    id,
                    binary: options.binary.clone(),
                    host: "127.0.0.1".into(),
                    http_port: ports[i],
                    raft_port: ports[n + i],
                    peers: peers.clone(),
                    mysql_url: format!("{mysql_base}/{unique}_n{id}"),
                    data_dir: dir.path().join(format!("n{id}")),
                    log: dir.path().join(format!("n{id}.log")),
                    env: env.clone(),
                    hook: None,
                })
            })
            .collect();
        Cluster {
            dir,
            mysql,
            mysql_base,
            unique,
            nodes,
            binary: options.binary,
            tls: None,
        }
    }

    /// Turns on TLS for every node's next start (call before they start, as
    /// in [`Cluster::launch_after`]'s `setup`): a CA is made, and for each
    /// node a certificate naming `node-<id>`, 127.0.0.1 and localhost, used
    /// for HTTP and for mutual TLS between peers. The CA is written to
    /// [`Cluster::tls_dir`]`/ca.crt` and trusted by this process's clients;
    /// node `id`'s files are `n<id>.crt` and `n<id>.key` beside it.
    /// Nodes added later ([`Cluster::add_joining_node`]) get theirs too.
    pub fn enable_tls(&mut self) {
        let dir = self.tls_dir();
        std::fs::create_dir_all(&dir).expect("a TLS directory");
        let ca = crate::certs::Ca::new("taskraft test cluster CA");
        ca.write(&dir.join("ca.crt"));
        crate::trust_ca(&dir.join("ca.crt"));
        for id in 1..=self.nodes.len() as u64 {
            self.tls_files_for(id, &ca, id);
        }
        self.tls = Some(ca);
    }

    /// The CA of [`Cluster::enable_tls`].
    pub fn tls_ca(&self) -> Option<&crate::certs::Ca> {
        self.tls.as_ref()
    }

    /// Issues node `id` a certificate (serial `serial`) from `ca`, writes it
    /// to its files and points its environment at them.
    pub fn tls_files_for(&mut self, id: u64, ca: &crate::certs::Ca, serial: u64) {
        let dir = self.tls_dir();
        let (cert, key) = (
            dir.join(format!("n{id}.crt")),
            dir.join(format!("n{id}.key")),
        );
        ca.leaf(
            &[&format!("node-{id}"), "127.0.0.1", "localhost"],
            serial,
            2099,
        )
        .write(&cert, &key);
        let ca_file = dir.join("ca.crt");
        for (k, v) in [
            ("TASKRAFT_TLS_CERT_FILE", &cert),
            ("TASKRAFT_TLS_KEY_FILE", &key),
            ("TASKRAFT_PEER_TLS_CA_FILE", &ca_file),
            ("TASKRAFT_PEER_TLS_CERT_FILE", &cert),
            ("TASKRAFT_PEER_TLS_KEY_FILE", &key),
        ] {
            self.set_env(id, k, &v.to_string_lossy());
        }
    }

    /// Where [`Cluster::enable_tls`] keeps its files.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// `mysql://root@host:port` of the server the nodes use (no database).
    pub fn mysql_base(&self) -> &str {
        &self.mysql_base
    }

    /// The private server, unless `TASKRAFT_TEST_MYSQL_URL` named one.
    pub fn mysql(&mut self) -> Option<&mut PrivateMysql> {
        self.mysql.as_mut()
    }

    /// The `cluster_secret` the nodes share (the first of the list).
    pub fn secret(&self) -> String {
        self.nodes[0]
            .env
            .iter()
            .find(|(k, _)| k == "TASKRAFT_CLUSTER_SECRET")
            .map(|(_, v)| v.split(',').next().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[id as usize - 1]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    pub fn url(&self, id: u64) -> String {
        self.node(id).url()
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    pub fn mysql_url(&self, id: u64) -> String {
        self.node(id).mysql_url.clone()
    }

    /// Sets an environment variable for node `id`'s next start.
    pub fn set_env(&mut self, id: u64, key: &str, value: &str) {
        self.node_mut(id).spec.set_env(key, value);
    }

    /// Runs node `id` from another build from its next start on.
    pub fn set_binary(&mut self, id: u64, binary: &Path) {
        self.node_mut(id).spec.binary = binary.to_path_buf();
    }

    /// Starts node `id`'s process (on its existing data, if any).
    pub fn spawn(&mut self, id: u64) {
        self.node_mut(id)
            .start(&[], "")
            .unwrap_or_else(|e| panic!("node {id}: {e}"));
    }

    /// Waits until node `id` answers `/readyz` with 200.
    pub fn wait_ready(&mut self, id: u64, within: Duration) {
        if let Err(e) = self.node_mut(id).wait_ready(within) {
            panic!("{e}");
        }
    }

    /// Starts a stopped node again on its data and waits until it is ready.
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
        self.wait_ready(id, Duration::from_secs(60));
    }

    /// `kill -9`.
    pub fn kill(&mut self, id: u64) {
        self.node_mut(id).kill();
    }

    /// SIGTERM, then wait for the exit; returns the exit status.
    pub fn terminate(&mut self, id: u64, within: Duration) -> Option<ExitStatus> {
        self.node_mut(id).terminate(within)
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: u64) {
        self.node_mut(id).pause();
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: u64) {
        self.node_mut(id).resume();
    }

    /// Waits for node `id`'s process to exit; returns its status.
    pub fn wait_exit(&mut self, id: u64, within: Duration) -> Option<ExitStatus> {
        self.node_mut(id).wait_exit(within)
    }

    /// Adds node `n + 1`, which joins the running cluster through the
    /// current members; waits until it answers `/readyz`.
    pub fn add_joining_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let ports = crate::free_ports(2);
        let join = self.urls().join(",");
        let mut spec = self.nodes[0].spec.clone();
        spec.id = id;
        spec.http_port = ports[0];
        spec.raft_port = ports[1];
        spec.mysql_url = format!("{}/{}_n{id}", self.mysql_base, self.unique);
        spec.data_dir = self.dir.path().join(format!("n{id}"));
        spec.log = self.dir.path().join(format!("n{id}.log"));
        spec.env.push(("TASKRAFT_JOIN".into(), join));
        self.nodes.push(Node::new(spec));
        if let Some(ca) = self.tls.take() {
            self.tls_files_for(id, &ca, id);
            self.tls = Some(ca);
        }
        self.spawn(id);
        self.wait_ready(id, Duration::from_secs(60));
        id
    }

    /// The leader's id, once every running node agrees on a running leader
    /// and has heard every other's version (until then a node counts a
    /// voter it has not heard as the oldest version, and refuses commands
    /// newer than that: a login right after start-up would get 503).
    pub fn leader(&mut self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            let mut running = Vec::new();
            let mut versions = Vec::new();
            for node in &mut self.nodes {
                if !node.is_running() {
                    continue;
                }
                running.push(node.id);
                let view = view(&node.url(), &node.spec);
                seen.push(view["leader_id"].as_u64());
                versions.push((view["version"].clone(), view["cluster_version"].clone()));
            }
            if let Some(Some(leader)) = seen.first() {
                if running.contains(leader)
                    && seen.iter().all(|s| *s == Some(*leader))
                    && versions_known(&versions)
                {
                    return *leader;
                }
            }
            if Instant::now() > deadline {
                panic!("no agreed leader after {within:?}: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `/api/cluster` on node `on` shows the voters and learners given.
    pub fn wait_membership(
        &self,
        on: u64,
        voters: &[u64],
        learners: &[u64],
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let view = view(&self.url(on), &self.node(on).spec);
            let ids = |role: &str| -> Vec<u64> {
                let mut ids: Vec<u64> = view["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["role"] == role)
                    .filter_map(|m| m["id"].as_u64())
                    .collect();
                ids.sort();
                ids
            };
            if ids("voter") == voters && ids("learner") == learners {
                return view;
            }
            if Instant::now() > deadline {
                panic!("node {on}: wanted voters {voters:?} learners {learners:?}, got {view}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until node `id` has applied everything the leader has committed.
    pub fn wait_caught_up(&mut self, id: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let leader = self.leader(within);
            let commit = view(&self.url(leader), &self.node(leader).spec)["commit_index"].as_u64();
            let applied = view(&self.url(id), &self.node(id).spec)["applied_index"].as_u64();
            if let (Some(commit), Some(applied)) = (commit, applied) {
                if applied >= commit {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("node {id} did not catch up: applied {applied:?}, leader commit {commit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `taskraft <args>` with node `id`'s settings (as `serve` has
    /// them), to its end.
    pub fn run_as(&self, id: u64, args: &[&str]) -> Output {
        let node = self.node(id);
        let mut command = node.spec.command(args[0]);
        command.args(&args[1..]).env("RUST_LOG", "warn");
        if let Some(hook) = &node.spec.hook {
            hook.apply(&mut command);
        }
        command.output().expect("taskraft runs")
    }

    /// Runs `taskraft rebuild --check` against node `id`'s database.
    pub fn rebuild_check(&self, id: u64) -> Output {
        Command::new(&self.binary)
            .args(["rebuild", "--check"])
            .env("TASKRAFT_NODE_ID", id.to_string())
            .env("TASKRAFT_MYSQL_URL", self.mysql_url(id))
            .env("RUST_LOG", "warn")
            .output()
            .expect("taskraft rebuild runs")
    }

    /// The last 40 lines of every node's log.
    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "---- node {} ({}) ----\n{}",
                    n.id,
                    n.log.display(),
                    crate::tail(&n.log, 40)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `/api/cluster` of the node at `url` (`null` if it did not answer),
/// with the node's `api_token` if it has one (needed with auth on).
fn view(url: &str, spec: &NodeSpec) -> Value {
    crate::get_with(
        &format!("{url}/api/cluster"),
        Duration::from_secs(15),
        spec.api_token().as_deref(),
    )
    .1
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        for node in &mut self.nodes {
            node.kill();
        }
        if let Some(mut mysql) = self.mysql.take() {
            mysql.stop(Duration::from_secs(30));
        }
        if std::env::var_os("TASKRAFT_TEST_KEEP").is_some() {
            if let Ok(replacement) = tempfile::tempdir() {
                let kept = std::mem::replace(&mut self.dir, replacement).keep();
                eprintln!("kept the test directory: {}", kept.display());
            }
        }
    }
}

/// Every node's `cluster_version` is the lowest `version` of the nodes
/// (each `(version, cluster_version)` as `/api/cluster` shows them); true
/// for builds that show neither.
fn versions_known(views: &[(Value, Value)]) -> bool {
    let parse = |v: &Value| -> Option<Vec<u64>> {
        v.as_str()?
            .split('.')
            .map(|part| part.parse().ok())
            .collect()
    };
    let Some(lowest) = views.iter().filter_map(|(v, _)| parse(v)).min() else {
        return true;
    };
    views
        .iter()
        .all(|(v, cluster)| parse(v).is_none() || parse(cluster).as_ref() == Some(&lowest))
}
