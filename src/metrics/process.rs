//! The standard `process_*` metrics, read from `/proc` when `/metrics` is
//! scraped (the names and meanings of Prometheus's client libraries).
//! Off Linux they stay at zero.

use std::sync::LazyLock;

use prometheus::{register_counter, register_gauge, Counter, Gauge};

pub static CPU_SECONDS: LazyLock<Counter> = LazyLock::new(|| {
    register_counter!(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds"
    )
    .expect("metric registers")
});

static RESIDENT: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "process_resident_memory_bytes",
        "Resident memory size in bytes"
    )
    .expect("metric registers")
});

static VIRTUAL: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes"
    )
    .expect("metric registers")
});

static OPEN_FDS: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!("process_open_fds", "Number of open file descriptors")
        .expect("metric registers")
});

static MAX_FDS: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!("process_max_fds", "Maximum number of open file descriptors")
        .expect("metric registers")
});

static START_TIME: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds"
    )
    .expect("metric registers")
});

/// What `/proc/self/stat` says, in the units the metrics use.
#[derive(Debug, PartialEq)]
pub struct Stat {
    pub cpu_seconds: f64,
    /// Seconds after boot.
    pub start_after_boot: f64,
    pub virtual_bytes: f64,
    pub resident_bytes: f64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may hold spaces, so fields are counted after its closing one.
pub fn parse_stat(text: &str, ticks_per_second: f64, page_size: f64) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        start_after_boot: field(22)? / ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
    })
}

/// The boot time from `/proc/stat` (`btime`), in seconds since the epoch.
pub fn parse_boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit from `/proc/self/limits`' "Max open files" line.
pub fn parse_max_fds(text: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

pub(super) fn refresh() {
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if ticks <= 0 || page <= 0 {
        return;
    }
    if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| parse_stat(&text, ticks as f64, page as f64))
    {
        let counted = CPU_SECONDS.get();
        if stat.cpu_seconds > counted {
            CPU_SECONDS.inc_by(stat.cpu_seconds - counted);
        }
        RESIDENT.set(stat.resident_bytes);
        VIRTUAL.set(stat.virtual_bytes);
        if START_TIME.get() == 0.0 {
            if let Some(boot) = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|text| parse_boot_time(&text))
            {
                START_TIME.set(boot + stat.start_after_boot);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of the entries.
        OPEN_FDS.set(entries.count().saturating_sub(1) as f64);
    }
    if let Some(max) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_max_fds(&text))
    {
        MAX_FDS.set(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_command_name_with_spaces() {
        let line =
            "4242 (tas kraft) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 \
                    104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line, 100.0, 4096.0).expect("a valid stat line parses");
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.0,
                start_after_boot: 10.0,
                virtual_bytes: 104857600.0,
                resident_bytes: 2560.0 * 4096.0,
            }
        );
    }

    #[test]
    fn boot_time_and_fd_limit_are_read_from_their_lines() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000.0)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
    }

    #[test]
    fn this_process_reports_memory_and_cpu() {
        refresh();
        assert!(RESIDENT.get() > 0.0, "resident memory read from /proc");
        assert!(START_TIME.get() > 1_600_000_000.0, "start time after 2020");
    }
}
