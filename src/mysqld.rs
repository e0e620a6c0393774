//! A private MySQL or MariaDB server: its own data directory, socket and
//! port, started from the server binaries installed on the machine. Used by
//! `taskraft demo` and by the integration tests; stopped by PID.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options for a private server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub port: u16,
    /// InnoDB buffer pool, e.g. "256M". Timings swing widely below ~256 MB.
    pub buffer_pool: String,
    /// `innodb_flush_log_at_trx_commit`: 1 fsyncs every COMMIT; 2 leaves it
    /// to the OS. 2 is safe for taskraft (see README, Storage): a write is
    /// acknowledged only once it is fsynced in the Raft log of a majority,
    /// and a node replays its log from MySQL's applied index.
    pub flush_at_commit: u8,
    pub extra_args: Vec<String>,
}

impl ServerOptions {
    pub fn on_port(port: u16) -> ServerOptions {
        ServerOptions {
            port,
            buffer_pool: "256M".into(),
            flush_at_commit: 1,
            extra_args: Vec::new(),
        }
    }
}

pub struct PrivateMysql {
    child: Option<Child>,
    pub port: u16,
    pub datadir: PathBuf,
    binary: PathBuf,
    options: ServerOptions,
}

/// The server binary and what kind of server it is.
fn find_server() -> Result<(PathBuf, bool), String> {
    let dirs = [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/bin",
        "/usr/local/mysql/bin",
        "/usr/libexec",
    ];
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in ["mariadbd", "mysqld"] {
        for dir in path_dirs
            .iter()
            .map(PathBuf::as_path)
            .chain(dirs.iter().map(Path::new))
        {
            let candidate = dir.join(name);
            if candidate.is_file() {
                let version = Command::new(&candidate)
                    .arg("--version")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).to_lowercase())
                    .unwrap_or_default();
                return Ok((candidate, version.contains("mariadb")));
            }
        }
    }
    Err(
        "no MySQL or MariaDB server binary found (mariadbd or mysqld); \
         install one (Debian: apt-get install mariadb-server) or set TASKRAFT_MYSQL_URL"
            .into(),
    )
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl PrivateMysql {
    /// Initializes `datadir` if it is new, then starts the server and waits
    /// until it accepts connections.
    pub fn start(datadir: &Path, options: ServerOptions) -> Result<PrivateMysql, String> {
        let (binary, mariadb) = find_server()?;
        std::fs::create_dir_all(datadir)
            .map_err(|e| format!("creating {}: {e}", datadir.display()))?;
        let datadir = datadir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", datadir.display()))?;
        if !datadir.join("mysql").exists() {
            initialize(&binary, mariadb, &datadir)?;
        }
        let mut server = PrivateMysql {
            child: None,
            port: options.port,
            datadir,
            binary,
            options,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
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
            .arg(format!(
                "--innodb-buffer-pool-size={}",
                self.options.buffer_pool
            ))
            .arg(format!(
                "--innodb-flush-log-at-trx-commit={}",
                self.options.flush_at_commit
            ))
            .arg("--skip-log-bin")
            .arg("--skip-name-resolve")
            .arg("--max-connections=500")
            .arg("--character-set-server=utf8mb4")
            .args(&self.options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            command.arg("--user=root");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60))
    }

    /// Waits for the server's handshake packet on the TCP port.
    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "the MySQL server exited ({status}); see {}",
                        self.datadir.join("error.log").display()
                    ));
                }
            }
            if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let mut header = [0u8; 5];
                // A handshake starts with a 4-byte header and protocol version 10.
                if stream.read_exact(&mut header).is_ok() && header[4] == 10 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the MySQL server did not accept connections within {within:?}; see {}",
                    self.datadir.join("error.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `mysql://root@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server cleanly (SIGTERM), killing it after `within`.
    pub fn stop(&mut self, within: Duration) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server at once (a crash, for fault tests).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop(Duration::from_secs(30));
        self.spawn()
    }
}

impl Drop for PrivateMysql {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(30));
    }
}

fn initialize(binary: &Path, mariadb: bool, datadir: &Path) -> Result<(), String> {
    let output = if mariadb {
        let install = ["mariadb-install-db", "mysql_install_db"]
            .iter()
            .flat_map(|name| {
                [
                    "/usr/bin",
                    "/usr/sbin",
                    "/usr/local/bin",
                    "/usr/local/mysql/scripts",
                ]
                .map(|d| Path::new(d).join(name))
            })
            .find(|p| p.is_file())
            .ok_or("mariadb-install-db not found")?;
        let mut command = Command::new(install);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if running_as_root() {
            command.arg("--user=root");
        }
        command.output()
    } else {
        let mut command = Command::new(binary);
        command
            .arg("--no-defaults")
            .arg("--initialize-insecure")
            .arg(format!("--datadir={}", datadir.display()));
        if running_as_root() {
            command.arg("--user=root");
        }
        command.output()
    };
    let output = output.map_err(|e| format!("initializing {}: {e}", datadir.display()))?;
    if !output.status.success() {
        return Err(format!(
            "initializing {} failed: {}{}",
            datadir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Sends `sig` to process `pid` (ours: a child we started).
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a PID of a child we spawned and a valid signal.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}
