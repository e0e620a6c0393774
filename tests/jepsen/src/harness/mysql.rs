//! One private MariaDB server per node, inside the node's namespace.
//!
//! The server runs with the node, in its network namespace, on that
//! namespace's own 127.0.0.1:3306 (loopback mode: a free port each). Its
//! data directory is copied from a template initialized once
//! (`target/jepsen/.mysql-template`, made under a file lock), which saves
//! the few seconds `mariadb-install-db` takes per server. The nemesis
//! kills it (`kill -9`, then a restart on the same data) or stops it
//! (SIGSTOP/SIGCONT); the node must ride both out.
//!
//! The harness reads the event table through the `mariadb` client run in
//! the same namespace, with payloads in hex, so the convergence check
//! compares stored bytes, not a re-serialization.
//!
//! Not here: MySQL 8 (`--initialize-insecure`); the product's own
//! `taskraft::mysqld` supports it, this harness only looks for MariaDB.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::os;

/// The database each node uses on its own server.
pub const DATABASE: &str = "taskraft";

/// A node's MariaDB server.
pub struct Mysql {
    /// Its data directory (and socket, pid file, error log).
    pub datadir: PathBuf,
    /// Its TCP port on the namespace's loopback.
    pub port: u16,
    /// The namespace it runs in (none in loopback mode).
    ns: Option<String>,
    /// `mariadbd`.
    binary: PathBuf,
    /// The running server, if any.
    child: Option<Child>,
    /// Whether it is stopped with SIGSTOP.
    paused: bool,
}

fn find(names: &[&str], dirs: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| Path::new(d).join(n)))
        .find(|p| p.is_file())
}

/// Makes (once, under a lock) and returns the template data directory.
pub fn template(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(".mysql-template");
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let lock = std::fs::File::create(root.join(".mysql-template.lock"))
        .map_err(|e| format!("template lock: {e}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file we hold open; released when it closes.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if dir.join("mysql").is_dir() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let install = find(
        &["mariadb-install-db", "mysql_install_db"],
        &["/usr/bin", "/usr/sbin", "/usr/local/bin"],
    )
    .ok_or("mariadb-install-db not found: apt-get install mariadb-server")?;
    let mut command = Command::new(install);
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db");
    if os::is_root() {
        command.arg("--user=root");
    }
    os::run(&mut command).map_err(|e| format!("initializing the MariaDB template: {e}"))?;
    Ok(dir)
}

impl Mysql {
    /// Copies the template into `datadir` if it is new, starts the server
    /// in `ns` on `port` and waits until it answers.
    pub fn start(
        template: &Path,
        datadir: &Path,
        ns: Option<String>,
        port: u16,
    ) -> Result<Mysql, String> {
        let binary = find(&["mariadbd", "mysqld"], &["/usr/sbin", "/usr/bin"])
            .ok_or("no mariadbd: apt-get install mariadb-server")?;
        if !datadir.join("mysql").is_dir() {
            std::fs::create_dir_all(datadir.parent().unwrap_or(Path::new(".")))
                .map_err(|e| e.to_string())?;
            os::run(Command::new("cp").arg("-a").arg(template).arg(datadir))?;
        }
        let mut server = Mysql {
            datadir: datadir.to_path_buf(),
            port,
            ns,
            binary,
            child: None,
            paused: false,
        };
        server.spawn()?;
        Ok(server)
    }

    /// `mysql://root@127.0.0.1:PORT/taskraft`, valid inside the namespace.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The server's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server (on its existing data) and waits until it answers.
    pub fn spawn(&mut self) -> Result<(), String> {
        let d = &self.datadir;
        let mut command = Command::new(&self.binary);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg("--innodb-buffer-pool-size=128M")
            .arg("--innodb-flush-log-at-trx-commit=1")
            .arg("--skip-log-bin")
            .arg("--skip-name-resolve")
            .arg("--max-connections=300")
            .arg("--character-set-server=utf8mb4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if os::is_root() {
            command.arg("--user=root");
        }
        os::enter_netns(&mut command, self.ns.as_deref());
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        self.paused = false;
        self.wait_ready(Duration::from_secs(90))
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let port = self.port;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "mariadbd exited ({status}); see {}",
                    self.datadir.join("error.log").display()
                ));
            }
            let answered = os::in_netns(self.ns.as_deref(), move || handshake(port))?;
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "mariadbd did not answer within {within:?}; see {}",
                    self.datadir.join("error.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            os::kill_child(&mut child);
        }
        self.paused = false;
    }

    /// SIGSTOP: the server hangs, its connections stay open.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            os::signal(pid, libc::SIGSTOP);
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            os::signal(pid, libc::SIGCONT);
        }
        self.paused = false;
    }

    /// Whether the server process is alive (running or stopped).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Stops the server cleanly (SIGTERM; SIGKILL after `within`).
    pub fn stop(&mut self, within: Duration) {
        if let Some(mut child) = self.child.take() {
            os::signal(child.id(), libc::SIGCONT);
            os::signal(child.id(), libc::SIGTERM);
            os::reap(&mut child, within);
        }
    }

    /// Runs `sql` with the `mariadb` client inside the namespace; tab
    /// separated rows, no headers.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let client = find(&["mariadb", "mysql"], &["/usr/bin", "/usr/local/bin"])
            .ok_or("no mariadb client: apt-get install mariadb-client")?;
        let mut command = Command::new(client);
        command
            .args(["--no-defaults", "-h", "127.0.0.1", "-u", "root", "-N", "-B"])
            .arg(format!("-P{}", self.port))
            .arg("--max-allowed-packet=256M")
            .args(["-e", sql, DATABASE]);
        os::enter_netns(&mut command, self.ns.as_deref());
        let output = os::run(&mut command)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Mysql {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// Whether a MySQL handshake (protocol version 10) arrives on the port.
fn handshake(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).is_ok() && header[4] == 10
}
