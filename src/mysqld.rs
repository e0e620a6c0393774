//! A private MySQL or MariaDB server: its own data directory, socket and
//! port, started from the server binaries installed on the machine, stopped
//! by PID. The one launcher of the project: `taskraft demo` uses it, and so
//! do the integration tests, the browser tests and the fault tests (through
//! `tests/testbed`, which adds nothing to how a server starts).
//!
//! What the tests need besides the demo: a data directory copied from a
//! [`template`] initialized once (a copy takes a fraction of the seconds
//! `mariadb-install-db` takes), a [`CommandHook`] run on the server's
//! command before it starts (the fault tests join a network namespace
//! there), and SIGSTOP/SIGCONT ([`PrivateMysql::pause`]). Readiness is the
//! server's handshake on its Unix socket, which is reachable from this
//! process whatever network the server lives in. [`Process`], the child
//! process signalled and stopped by PID, is the testbed's node process too.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Something done to a child's [`Command`] before it is spawned (e.g.
/// making it join a network namespace between fork and exec).
#[derive(Clone)]
pub struct CommandHook(pub Arc<dyn Fn(&mut Command) + Send + Sync>);

impl CommandHook {
    pub fn new(hook: impl Fn(&mut Command) + Send + Sync + 'static) -> CommandHook {
        CommandHook(Arc::new(hook))
    }

    pub fn apply(&self, command: &mut Command) {
        (self.0)(command)
    }
}

impl std::fmt::Debug for CommandHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandHook")
    }
}

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
    pub max_connections: u32,
    pub extra_args: Vec<String>,
    /// A data directory made by [`template`], copied into a new data
    /// directory instead of initializing it.
    pub template: Option<PathBuf>,
    /// Run on the server's command before each start.
    pub hook: Option<CommandHook>,
    /// How long a start may take before it counts as failed.
    pub ready_within: Duration,
}

impl ServerOptions {
    pub fn on_port(port: u16) -> ServerOptions {
        ServerOptions {
            port,
            buffer_pool: "256M".into(),
            flush_at_commit: 1,
            max_connections: 500,
            extra_args: Vec::new(),
            template: None,
            hook: None,
            ready_within: Duration::from_secs(60),
        }
    }
}

pub struct PrivateMysql {
    process: Process,
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
            match &options.template {
                Some(template) => copy_dir(template, &datadir)?,
                None => initialize(&binary, mariadb, &datadir)?,
            }
        }
        let mut server = PrivateMysql {
            process: Process::default(),
            port: options.port,
            datadir,
            binary,
            options,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts the server on its data directory and waits until it accepts
    /// connections (after [`PrivateMysql::kill`] or [`PrivateMysql::stop`]).
    pub fn spawn(&mut self) -> Result<(), String> {
        let d = &self.datadir;
        // Its own tmpdir: MariaDB deletes every `#sql*` file of its tmpdir
        // when it starts, which in a shared `/tmp` took the temporary
        // tables of every other private server running (tests side by
        // side, a demo beside them).
        let tmpdir = tmpdir_of(d);
        std::fs::create_dir_all(&tmpdir)
            .map_err(|e| format!("creating {}: {e}", tmpdir.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--tmpdir={}", tmpdir.display()))
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
            .arg(format!(
                "--max-connections={}",
                self.options.max_connections
            ))
            .arg("--character-set-server=utf8mb4")
            .args(&self.options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            command.arg("--user=root");
        }
        if let Some(hook) = &self.options.hook {
            hook.apply(&mut command);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        self.process = Process::new(child);
        self.wait_ready(self.options.ready_within)
    }

    /// The server's Unix socket (in its data directory).
    pub fn socket(&self) -> PathBuf {
        self.datadir.join("mysqld.sock")
    }

    /// Waits for the server's handshake packet on its socket: the server
    /// opens its TCP port and its socket before it accepts either.
    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let socket = self.socket();
        loop {
            if !self.process.is_running() {
                let status = self
                    .process
                    .take_exit()
                    .map_or("?".to_string(), |s| s.to_string());
                return Err(format!(
                    "the MySQL server exited ({status}); see {}",
                    self.datadir.join("error.log").display()
                ));
            }
            if let Ok(mut stream) = UnixStream::connect(&socket) {
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
        self.process.pid()
    }

    /// Whether the server process is alive (running or stopped).
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGSTOP: the server hangs, its connections stay open.
    pub fn pause(&mut self) {
        self.process.pause();
    }

    /// SIGCONT, after [`PrivateMysql::pause`].
    pub fn resume(&mut self) {
        self.process.resume();
    }

    /// Whether the server is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.process.is_paused()
    }

    /// Stops the server cleanly (SIGTERM, after a SIGCONT in case it is
    /// paused), killing it after `within`.
    pub fn stop(&mut self, within: Duration) {
        self.process.terminate(within);
    }

    /// Kills the server at once (a crash, for fault tests).
    pub fn kill(&mut self) {
        self.process.kill();
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

/// The temporary files' directory of the server on `datadir`: beside it,
/// not in it, where MariaDB would take it for a database.
fn tmpdir_of(datadir: &Path) -> PathBuf {
    let mut name = datadir.file_name().unwrap_or_default().to_os_string();
    name.push("-tmp");
    datadir.with_file_name(name)
}

/// An initialized data directory under `root` to copy new servers from
/// ([`ServerOptions::template`]): made once per server version, under a
/// file lock (concurrent test processes wait for the first).
pub fn template(root: &Path) -> Result<PathBuf, String> {
    use std::os::fd::AsRawFd;
    let (binary, mariadb) = find_server()?;
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // FNV-1a of the version line: a new server version, a new template.
    let hash = version.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let dir = root.join(format!("mysql-template-{hash:016x}"));
    let lock = std::fs::File::create(root.join(format!("mysql-template-{hash:016x}.lock")))
        .map_err(|e| format!("the template's lock: {e}"))?;
    // SAFETY: flock on a file we hold open; released when it closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "locking the template: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Written once the directory is whole: an initialization that failed
    // half-way (its `mysql` directory made, its tables not) is made again
    // rather than copied by every server after it.
    let done = root.join(format!("mysql-template-{hash:016x}.done"));
    if dir.join("mysql").is_dir() && done.exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_file(&done);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    initialize(&binary, mariadb, &dir)?;
    std::fs::write(&done, b"").map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(dir)
}

/// Copies what is in `from` into the directory `to` (`cp -a`).
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let output = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .output()
        .map_err(|e| format!("cp: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "copying {} to {}: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
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

/// A child process of ours, signalled and stopped by its PID: the server
/// here, and the test harness's node processes.
#[derive(Debug, Default)]
pub struct Process {
    child: Option<Child>,
    /// How the last child ended, if it ended on its own.
    exited: Option<ExitStatus>,
    paused: bool,
}

impl Process {
    pub fn new(child: Child) -> Process {
        Process {
            child: Some(child),
            exited: None,
            paused: false,
        }
    }

    /// The PID while the process is ours (running, stopped or not reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is alive (running or stopped); one that exited is reaped
    /// and its status kept for [`Process::take_exit`].
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            result => {
                self.exited = result.ok().flatten();
                self.child = None;
                self.paused = false;
                false
            }
        }
    }

    /// How it exited on its own, once (not after a kill or a terminate).
    pub fn take_exit(&mut self) -> Option<ExitStatus> {
        self.exited.take()
    }

    /// Whether it is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// SIGSTOP.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGSTOP);
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGCONT);
        }
        self.paused = false;
    }

    /// SIGKILL (a stopped process too), and reaps it.
    pub fn kill(&mut self) {
        self.paused = false;
        self.exited = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (after a SIGCONT, in case it is stopped) and waits for the
    /// exit; SIGKILL after `within`, which returns `None`.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        self.paused = false;
        self.exited = None;
        let mut child = self.child.take()?;
        signal(child.id(), libc::SIGCONT);
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits up to `within` for it to exit on its own; its status, or
    /// `None` if it still runs (or was not running).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if !self.is_running() {
                return self.take_exit();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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

/// `url` with its database replaced by `database` (each demo node gets its
/// own database on the same server).
pub fn with_database(url: &str, database: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("TASKRAFT_MYSQL_URL is not a mysql:// URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let options = rest.find('?').map(|at| &rest[at..]).unwrap_or("");
    Ok(format!("{scheme}://{authority}/{database}{options}"))
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
