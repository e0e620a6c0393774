//! The `taskraft` command line: parses arguments and calls the library.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taskraft::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

/// mimalloc asks the kernel for transparent huge pages on its arenas, and
/// a 2 MB page is resident as soon as one byte of it is touched: 45 of a
/// node's 135 MB were such pages. With 4 kB pages a node is charged for
/// what it uses (after the same load, 118–126 MB instead of 143–157, at
/// no cost in creates/s: `loadtest/ab-binaries`). Set for `serve` only,
/// as it would be inherited by whatever the process starts.
fn small_pages_only() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; a kernel without it fails the call, and nothing changes.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// mimalloc (v3) gives memory freed back to the kernel a second after it
/// was freed, and only once the thread that freed it allocates again: a
/// thread idle after a burst keeps what the burst left. A follower that
/// had copied 20,000 entries held 109–137 MB; purging at once, 67–97 MB
/// (`MIMALLOC_PURGE_DELAY=0`, two runs each of `SIZES=10000
/// CATCHUP_FROM=10000 CATCHUP_EVENTS=20000 loadtest/growth`). Set for
/// `serve` only, unless `MIMALLOC_PURGE_DELAY` says otherwise.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mimalloc's own setter for one of its options, given an
    // option it has and a value it documents (0: purge at once).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (v2 and v3; the
/// crate builds v3): its Rust bindings do not name it.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

#[derive(Parser)]
#[command(
    name = "taskraft",
    version,
    about = "A kanban task board replicated with Raft and stored in MySQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node.
    Serve {
        /// A TOML file of settings; TASKRAFT_* environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a whole local cluster: a private MySQL/MariaDB server and N nodes.
    Demo {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Node 1's HTTP port; node i uses PORT+i-1, and PORT+1000+i-1 for Raft.
        #[arg(long, default_value_t = 8080)]
        http_port: u16,
        /// Where the demo keeps its data between runs.
        #[arg(long, default_value = "taskraft-demo")]
        dir: PathBuf,
        /// Start from empty data.
        #[arg(long)]
        fresh: bool,
        /// The Raft lab: a relay on every peer link, and a page to kill,
        /// pause, partition and heal nodes (printed as `lab  URL`).
        #[arg(long)]
        lab: bool,
    },
    /// Apply the sql/ migrations to the node's database and exit.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rebuild the projection from the event table.
    Rebuild {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only compare, and exit non-zero on any difference.
        #[arg(long)]
        check: bool,
    },
    /// Make this stopped, surviving node the only voter of its cluster,
    /// keeping its data (after losing a majority for good). Run with the
    /// settings it serves with; then start it, and let new nodes join it.
    Recover {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Required: says you mean it (the other members are dropped).
        #[arg(long)]
        force_new_cluster: bool,
    },
    /// Prepare this fresh node (empty data_dir, empty database) from a
    /// backup, as the first member of a new cluster; then start it with
    /// `serve`, and let new nodes join it.
    Restore {
        /// The backup file (it is verified whole before anything is written).
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Keep the events 1..=N only (point-in-time restore).
        #[arg(long, value_name = "N", conflicts_with = "until")]
        until_seq: Option<u64>,
        /// Keep the events up to the first one after TIME (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the cluster as seen from a node.
    Status {
        /// The node's URL (default: TASKRAFT_URL, else the configured advertise_url).
        #[arg(long)]
        url: Option<String>,
        /// Refresh every SECONDS (default 2) until interrupted.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
        watch: Option<f64>,
        /// A CA (PEM) to trust for https besides the public roots
        /// (default: TASKRAFT_PEER_TLS_CA_FILE, the cluster CA, if set).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Take a consistent online backup from a node (admin), or check one
    /// (`taskraft backup verify FILE`).
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        verify: Option<BackupCmd>,
        /// The node's URL.
        #[arg(long)]
        url: Option<String>,
        /// An admin's API token (default: TASKRAFT_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// Where to write the backup (written to FILE.partial, then renamed).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// A CA (PEM) to trust for https besides the public roots
        /// (default: TASKRAFT_PEER_TLS_CA_FILE, the cluster CA, if set).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BackupCmd {
    /// Check a backup file without restoring it; exit non-zero on any fault.
    Verify { file: PathBuf },
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn settings(config: Option<&PathBuf>) -> Result<Settings, String> {
    Settings::load(config.map(PathBuf::as_path)).map_err(|e| e.to_string())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix::System::new().block_on(future)
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Cmd::Serve { config } => {
            small_pages_only();
            purge_freed_memory_at_once();
            let settings = settings(config.as_ref())?;
            init_logging(settings.log_format);
            block_on(taskraft::server::serve(settings)).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo {
            nodes,
            http_port,
            dir,
            fresh,
            lab,
        } => {
            taskraft::demo::run(taskraft::demo::DemoOptions {
                nodes,
                http_port,
                dir,
                fresh,
                lab,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Migrate { config } => {
            let settings = settings(config.as_ref())?;
            init_logging(settings.log_format);
            let applied =
                block_on(taskraft::server::migrate_only(&settings)).map_err(|e| e.to_string())?;
            println!("applied {applied} migration(s)");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Rebuild { config, check } => {
            let settings = settings(config.as_ref())?;
            init_logging(settings.log_format);
            let report = block_on(async {
                let pool = taskraft::db::connect(&settings.mysql_url, 2).await?;
                let report = if check {
                    taskraft::db::rebuild::check(&pool).await
                } else {
                    taskraft::db::rebuild::rebuild(&pool).await
                };
                pool.disconnect().await.ok();
                report
            })
            .map_err(|e| e.to_string())?;
            println!("{} events, {} tasks", report.events, report.tasks);
            if report.differences.is_empty() {
                println!("the projection matches the event table");
                Ok(ExitCode::SUCCESS)
            } else {
                for difference in &report.differences {
                    println!("DIFFERENT: {difference}");
                }
                Ok(ExitCode::from(1))
            }
        }
        Cmd::Recover {
            config,
            force_new_cluster,
        } => {
            if !force_new_cluster {
                return Err("recover drops every other member of the cluster: \
                            say so with --force-new-cluster"
                    .into());
            }
            let settings = settings(config.as_ref())?;
            init_logging(settings.log_format);
            let recovery = block_on(taskraft::server::recover::force_new_cluster(&settings))
                .map_err(|e| e.to_string())?;
            println!(
                "node {} is now the only voter of cluster {} (was {}; removed {:?}); \
                 log kept up to {}, committed through {} in term {}. Start it with `serve`, \
                 then let new nodes join it with empty data.",
                recovery.node_id,
                recovery.cluster_id,
                recovery.previous_cluster_id,
                recovery
                    .previous_voters
                    .iter()
                    .chain(&recovery.previous_learners)
                    .filter(|id| **id != recovery.node_id)
                    .collect::<Vec<_>>(),
                recovery.previous_last_index,
                recovery.commit,
                recovery.term
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore {
            input,
            until_seq,
            until,
            config,
        } => {
            use taskraft::backup::restore::Until;
            let until = match (until_seq, until) {
                (Some(seq), _) => Some(Until::Seq(seq)),
                (None, Some(time)) => Some(Until::Time(
                    taskraft::time::Timestamp::parse_rfc3339(&time).ok_or_else(|| {
                        format!("--until {time:?} is not an RFC 3339 time (2026-11-24T10:00:00Z)")
                    })?,
                )),
                (None, None) => None,
            };
            let settings = settings(config.as_ref())?;
            init_logging(settings.log_format);
            let restored = block_on(taskraft::backup::restore::restore(&settings, &input, until))
                .map_err(|e| e.to_string())?;
            let header = &restored.header;
            println!(
                "restored {} of {} events (last at {}), {} idempotency keys ({} dropped by the \
                 cut), {} users, from cluster {} at log index {}",
                restored.last_seq,
                header.last_seq,
                restored
                    .last_event_at
                    .map_or("-".to_string(), |at| at.to_string()),
                restored.keys_kept,
                restored.keys_dropped,
                restored.users,
                header.cluster_id,
                header.applied_index
            );
            println!(
                "node {} is the first member of the new cluster {}. Start it with `serve`, then \
                 let new nodes join it with empty data.",
                restored.node_id, restored.cluster_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status {
            url,
            watch,
            ca_file,
        } => {
            let ca_file = ca_file.or_else(|| env_path("TASKRAFT_PEER_TLS_CA_FILE"));
            taskraft::peer_http::set_trust(ca_file).map_err(|e| e.to_string())?;
            let url = match url.or_else(|| std::env::var("TASKRAFT_URL").ok()) {
                Some(url) => url,
                None => settings(None)?.advertise_url,
            };
            let watch = match watch {
                Some(s) if !(0.1..=3600.0).contains(&s) => {
                    return Err("--watch takes 0.1 to 3600 seconds".into())
                }
                other => other.map(std::time::Duration::from_secs_f64),
            };
            // 1: the node answered but cannot serve (no leader, not ready);
            // 2 (an Err): it did not answer.
            match taskraft::status::run(&url, watch)? {
                taskraft::status::Health::Serving => Ok(ExitCode::SUCCESS),
                taskraft::status::Health::NotServing => Ok(ExitCode::from(1)),
            }
        }
        Cmd::Backup {
            verify: Some(BackupCmd::Verify { file }),
            ..
        } => match taskraft::backup::client::verify_file(&file) {
            Ok(summary) => {
                print!("{}", taskraft::backup::client::describe(&summary));
                println!("OK");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("taskraft: backup refused: {e}");
                Ok(ExitCode::from(1))
            }
        },
        Cmd::Backup {
            verify: None,
            url,
            token,
            out,
            ca_file,
        } => {
            let (Some(url), Some(out)) = (url, out) else {
                return Err(
                    "backup needs --url URL and --out FILE (or: backup verify FILE)".into(),
                );
            };
            let ca_file = ca_file.or_else(|| env_path("TASKRAFT_PEER_TLS_CA_FILE"));
            taskraft::peer_http::set_trust(ca_file).map_err(|e| e.to_string())?;
            let token = token.or_else(|| {
                std::env::var("TASKRAFT_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
            });
            let summary = taskraft::backup::client::download(&url, token.as_deref(), &out)?;
            print!("{}", taskraft::backup::client::describe(&summary));
            println!("written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("taskraft: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_mimallocs_purge_delay_unless_the_environment_sets_it() {
        // Its default, 1,000 ms in mimalloc v3, names the option.
        let given = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        let before = given.as_deref().map_or(1_000, |v| v.parse().unwrap());
        // SAFETY: mimalloc's getter and setter of its own options.
        unsafe {
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), before);
            purge_freed_memory_at_once();
            let after = if given.is_some() { before } else { 0 };
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), after);
        }
    }
}
