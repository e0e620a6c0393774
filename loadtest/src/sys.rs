//! The little the tool needs from the OS: enough file descriptors for many
//! sockets, and its own CPU time (to tell how much of the machine the client
//! itself took: on 2 cores it competes with the cluster it measures).

/// Raises the soft `RLIMIT_NOFILE` to at least `need` (up to the hard
/// limit). Returns a note for the user when it changed something or could
/// not reach `need`.
pub fn raise_fd_limit(need: u64) -> Option<String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Some("could not read the open-files limit (getrlimit)".into());
    }
    if limit.rlim_cur >= need {
        return None;
    }
    let old = limit.rlim_cur;
    let wanted = need.min(limit.rlim_max);
    limit.rlim_cur = wanted;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Some(format!(
            "open-files limit is {old} and could not be raised (setrlimit); {need} wanted"
        ));
    }
    if wanted < need {
        Some(format!(
            "open-files limit raised from {old} to the hard limit {wanted}, below the {need} wanted: \
             raise the hard limit (ulimit -Hn) for this many sockets"
        ))
    } else {
        Some(format!(
            "open-files limit raised from {old} to {wanted} (setrlimit)"
        ))
    }
}

/// User + system CPU seconds this process has used so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Resident memory of this process in KiB (VmRSS), when /proc says.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
