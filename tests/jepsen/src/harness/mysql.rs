//! One private MariaDB server per node, inside the node's namespace: the
//! project's launcher (`taskraft::mysqld`, through the testbed) with the
//! fault tests' settings and a hook that starts the server in the node's
//! network namespace.
//!
//! The server runs with the node, in its network namespace, on that
//! namespace's own 127.0.0.1:3306 (loopback mode: a free port each). Its
//! data directory is copied from a template initialized once
//! ([`mysqld::template`] under `target/jepsen`), which saves the few
//! seconds `mariadb-install-db` takes per server. The nemesis kills it
//! (`kill -9`, then a restart on the same data) or stops it
//! (SIGSTOP/SIGCONT); the node must ride both out.
//!
//! The harness reads the event table through the `mariadb` client on the
//! server's Unix socket (reachable from any namespace), with payloads in
//! hex, so the convergence check compares stored bytes, not a
//! re-serialization.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testbed::mysqld::{self, CommandHook, PrivateMysql, ServerOptions};

use super::os;

/// The database each node uses on its own server.
pub const DATABASE: &str = "taskraft";

/// A node's MariaDB server.
pub type Mysql = PrivateMysql;

/// Makes (once, under a lock) and returns the template data directory.
pub fn template(root: &Path) -> Result<PathBuf, String> {
    mysqld::template(root)
}

/// A hook that makes a command start inside namespace `ns` (if any).
pub fn in_namespace(ns: Option<String>) -> Option<CommandHook> {
    ns.map(|ns| CommandHook::new(move |command| os::enter_netns(command, Some(&ns))))
}

/// Copies the template into `datadir` if it is new, starts the server in
/// `ns` on `port` and waits until it answers.
pub fn start(
    template: &Path,
    datadir: &Path,
    ns: Option<String>,
    port: u16,
) -> Result<Mysql, String> {
    let mut options = ServerOptions::on_port(port);
    options.buffer_pool = "128M".into();
    options.flush_at_commit = 1;
    options.max_connections = 300;
    options.template = Some(template.to_path_buf());
    options.hook = in_namespace(ns);
    options.ready_within = Duration::from_secs(90);
    PrivateMysql::start(datadir, options)
}

/// `mysql://root@127.0.0.1:PORT/taskraft`, valid inside the namespace.
pub fn url(server: &Mysql) -> String {
    server.url(DATABASE)
}

/// Runs `sql` with the `mariadb` client on the server's socket; tab
/// separated rows, no headers.
pub fn query(server: &Mysql, sql: &str) -> Result<String, String> {
    let client = ["mariadb", "mysql"]
        .iter()
        .flat_map(|n| ["/usr/bin", "/usr/local/bin"].map(|d| Path::new(d).join(n)))
        .find(|p| p.is_file())
        .ok_or("no mariadb client: apt-get install mariadb-client")?;
    let mut command = Command::new(client);
    command
        .args(["--no-defaults", "-u", "root", "-N", "-B"])
        .arg(format!("--socket={}", server.socket().display()))
        .arg("--max-allowed-packet=256M")
        .args(["-e", sql, DATABASE]);
    let output = os::run(&mut command)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
