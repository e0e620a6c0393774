//! The operating-system pieces: commands run inside a network namespace,
//! the monotonic clock, and the Ctrl-C flag. (Signals to our own children
//! are the shared harness's: `taskraft::mysqld::Process`.)
//!
//! A child joins its namespace with `setns(2)` between `fork` and `exec`,
//! so its PID is the real server's (SIGSTOP reaches the server, not a
//! wrapper). A thread of the harness can join one too ([`in_netns`]), to
//! reach a server that listens on the namespace's own loopback.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds since the harness started: the one clock of every history.
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whether we run as root (namespaces and iptables need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The file that names network namespace `ns` (as `ip netns` makes it).
pub fn netns_path(ns: &str) -> PathBuf {
    Path::new("/var/run/netns").join(ns)
}

/// Makes `command` start inside network namespace `ns` (if any).
pub fn enter_netns(command: &mut Command, ns: Option<&str>) {
    let Some(ns) = ns else { return };
    let path =
        std::ffi::CString::new(netns_path(ns).to_string_lossy().as_bytes()).unwrap_or_default();
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (open, setns, close), on memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let joined = libc::setns(fd, libc::CLONE_NEWNET);
            libc::close(fd);
            if joined != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `f` on a fresh thread that has joined namespace `ns` (or stayed in
/// the root namespace for `None`). Only that thread moves.
pub fn in_netns<T: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let ns = ns.map(str::to_string);
    std::thread::spawn(move || {
        if let Some(ns) = &ns {
            let file = std::fs::File::open(netns_path(ns)).map_err(|e| format!("{ns}: {e}"))?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns on an open namespace file; it only affects this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
            }
        }
        Ok(f())
    })
    .join()
    .map_err(|_| "a namespace thread panicked".to_string())?
}

/// Runs a command to completion; an error names it and says what it printed.
pub fn run(command: &mut Command) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{:?} {:?}: {}{}{}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `ip ARGS...`, failing with its message.
pub fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args)).map(|_| ())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// After this, SIGINT and SIGTERM only set [`interrupted`]: the run ends
/// early and still cleans up (processes, namespaces, rules).
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

/// Whether Ctrl-C (or SIGTERM) arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps `d` in small steps, returning early (false) once `stop` says so.
pub fn sleep_unless(d: Duration, stop: &dyn Fn() -> bool) -> bool {
    let deadline = Instant::now() + d;
    loop {
        if stop() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}
