//! Node configuration: built-in defaults, then a TOML file, then
//! `TASKRAFT_<KEY>` environment variables, layered with the `config` crate.
//!
//! Every value is checked here, at start-up, and a bad one stops the node
//! with a message that names the key and where it came from; nothing later
//! has to wonder whether a setting makes sense.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

pub use self::statefulset::StatefulSet;

mod statefulset;

/// Every key the node understands, for refusing typos in a config file.
const KEYS: &[&str] = &[
    "node_id",
    "http_addr",
    "raft_addr",
    "peers",
    "advertise_url",
    "mysql_url",
    "mysql_migrate_url",
    "data_dir",
    "election_tick",
    "heartbeat_tick",
    "tick_ms",
    "join",
    "api_token",
    "auth",
    "bootstrap_admin",
    "cluster_secret",
    "request_timeout_ms",
    "log_format",
    "ws_backlog",
    "static_dir",
    "lab_url",
    "http_workers",
    "pod_name",
    "peer_service",
    "initial_cluster_size",
    "raft_advertise_addr",
    "initial_cluster_token",
    "snapshot_count",
    "snapshot_catchup_entries",
    "apply_gather_ms",
    "cors_origins",
    "max_connections",
    "max_connections_per_address",
    "idempotency_retention",
    "auto_archive_interval",
    "due_reminder_interval",
    "webhook_allow_private",
    "webhook_retry_max",
    "tls_cert_file",
    "tls_key_file",
    "peer_tls_ca_file",
    "peer_tls_cert_file",
    "peer_tls_key_file",
    "metrics_addr",
    "auth_proxy_header",
    "auth_proxy_trusted",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_redirect_url",
    "oidc_default_role",
];

/// `idempotency_retention` unless configured: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses a retention such as `7d`, `12h`, `30m`, `45s` or `500ms`: a
/// positive whole number and one unit, at least 1 s and at most 10 years.
pub fn parse_retention(text: &str) -> Result<Duration, BadRetention> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shape = || BadRetention::Shape(text.to_string());
    let n: u64 = number.parse().map_err(|_| shape())?;
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(shape()),
    };
    let millis = n.checked_mul(millis_per).ok_or_else(shape)?;
    let duration = Duration::from_millis(millis);
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(10 * 365 * 86_400) {
        return Err(BadRetention::OutOfRange(text.to_string()));
    }
    Ok(duration)
}

/// Why a retention does not parse (the text as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRetention {
    #[error("{0:?} is not a duration like 7d, 12h, 30m, 45s or 500ms")]
    Shape(String),
    #[error("{0:?} must be from 1s to 3650d")]
    OutOfRange(String),
}

/// The longest URL a node accepts as a member's address (its own
/// `advertise_url`, a peer's hello, a membership request).
pub const MAX_URL_LEN: usize = 512;
/// The shortest `cluster_secret` accepted: it is all that keeps strangers
/// off the Raft port.
pub const MIN_SECRET_LEN: usize = 16;
/// How to make a secret, for messages.
const MAKE_A_SECRET: &str = "make one with `openssl rand -hex 32` (or \
     `head -c 32 /dev/urandom | base64`) and give the same value to every node";

/// A node's settings, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// This node's Raft id: positive, unique in the cluster.
    pub node_id: u64,
    /// Where clients reach the REST API, the WebSocket, the board and metrics.
    pub http_addr: SocketAddr,
    /// Where peers reach this node's Raft transport; never served to clients.
    pub raft_addr: SocketAddr,
    /// The initial voters' Raft addresses, this node included.
    pub peers: BTreeMap<u64, String>,
    /// How peers reach this node's Raft port (told to the cluster on join).
    pub raft_advertise_addr: String,
    /// How browsers and peers reach this node's HTTP side.
    pub advertise_url: String,
    /// This node's own database; created if missing. Its account needs no
    /// DDL rights once the schema is migrated (see `mysql_migrate_url`).
    pub mysql_url: String,
    /// A stronger account for the same database, used only to create it and
    /// run migrations when the schema lacks some (`taskraft migrate` uses it
    /// too). Unset: the node's own account migrates.
    pub mysql_migrate_url: Option<String>,
    /// Where the Raft log lives.
    pub data_dir: PathBuf,
    /// Ticks without a leader before a follower campaigns (randomised up to 2×).
    pub election_tick: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_tick: usize,
    /// Milliseconds per Raft tick.
    pub tick_ms: u64,
    /// Running members to ask for admission instead of bootstrapping.
    pub join: Vec<String>,
    /// Names the cluster at bootstrap, with the voter ids (the cluster id);
    /// peers of another cluster are refused.
    pub initial_cluster_token: String,
    /// Other initial members' HTTP URLs, when they can be derived (in a
    /// StatefulSet): used to notice that a cluster already exists before
    /// bootstrapping on an empty volume.
    pub peer_urls: Vec<String>,
    /// An admin-level service token (`Authorization: Bearer <token>`);
    /// with `auth = "off"`, what `/api` writes need.
    pub api_token: Option<String>,
    /// `auth = "on"` (the default): every route but health, readiness,
    /// the board's files and logging in needs a session or a token.
    pub auth: bool,
    /// `name:password`: the first admin, created while the cluster has no
    /// users.
    pub bootstrap_admin: Option<(String, String)>,
    /// Peers must prove they know the first; any is accepted (rotation).
    /// Empty: this node accepts no peer (a cluster of one).
    pub cluster_secrets: Vec<String>,
    /// Origins, besides the cluster's own members, whose pages may call
    /// the API from a browser (CORS): `scheme://host[:port]`, no wildcard.
    pub cors_origins: Vec<String>,
    /// HTTP connections in all; the excess is closed when accepted.
    pub max_connections: usize,
    /// HTTP connections from one client address.
    pub max_connections_per_address: usize,
    /// How long a request may wait for consensus before it fails.
    pub request_timeout: Duration,
    pub log_format: LogFormat,
    /// Recent events each node keeps in memory for WebSocket clients that
    /// resume; a client further behind reloads (`resync`).
    pub ws_backlog: usize,
    /// Serve the board from this directory instead of the copy compiled
    /// into the binary (for working on the board without rebuilding).
    pub static_dir: Option<PathBuf>,
    /// Set by `taskraft demo --lab` only: where its lab page is, so the
    /// board can link to it. The node serves no lab routes itself.
    pub lab_url: Option<String>,
    /// HTTP worker threads (default: one per CPU).
    pub http_workers: usize,
    /// How long an idempotency key is honoured after its first use
    /// (default 7 days); the leader expires older ones through the log.
    pub idempotency_retention: Duration,
    /// How often the leader archives the cards of auto-archiving columns
    /// that are due (`crate::archiver`; default 10 min).
    pub auto_archive_interval: Duration,
    /// How often the leader proposes the due reminders of cards due today
    /// or tomorrow (`crate::reminders`; default 5 min).
    pub due_reminder_interval: Duration,
    /// Whether webhooks may reach loopback, private, link-local and other
    /// local addresses (`crate::webhooks::guard`; default false: nothing
    /// inside the cluster's networks).
    pub webhook_allow_private: bool,
    /// The longest wait between two tries of one webhook delivery (the
    /// wait doubles from 1 s up to it; default 60 s).
    pub webhook_retry_max: Duration,
    /// Applied entries beyond `snapshot_catchup_entries` that the Raft log
    /// may hold before it is compacted (etcd's `--snapshot-count`).
    pub snapshot_count: u64,
    /// Applied entries kept after a compaction, for followers a little
    /// behind: they catch up from the log instead of from a snapshot.
    pub snapshot_catchup_entries: u64,
    /// How long a node nobody waits on (a follower with no request of its
    /// own pending) may wait to gather committed entries into a larger
    /// MySQL transaction (default 5 ms; 0: apply at once).
    pub apply_gather: Duration,
    /// HTTP and the WebSocket over TLS: `tls_cert_file` (PEM chain, leaf
    /// first) and `tls_key_file`, reloaded when they change.
    pub tls: Option<HttpTlsFiles>,
    /// Mutual TLS between peers on the Raft port (`peer_tls_*`); the CA
    /// is also trusted by the node's own HTTP client.
    pub peer_tls: Option<crate::tls::PeerTlsFiles>,
    /// A second, plain-HTTP listener serving only `/metrics`, `/healthz`
    /// and `/readyz`, without credentials: for Prometheus in the pod
    /// network, while the main listener's `/metrics` needs a token.
    pub metrics_addr: Option<SocketAddr>,
    /// `auth_proxy_header` and `auth_proxy_trusted`: a reverse proxy at a
    /// trusted address names the signed-in user in a header.
    pub auth_proxy: Option<crate::accounts::proxy::ProxyAuth>,
    /// OpenID Connect sign-on (`oidc_*`), if configured.
    pub oidc: Option<OidcSettings>,
}

/// `oidc_issuer`, `oidc_client_id`, `oidc_client_secret`,
/// `oidc_redirect_url` and `oidc_default_role`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// The provider's issuer URL; its discovery document is
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// This node's `/auth/oidc/callback` as the provider redirects to it
    /// (registered with the provider).
    pub redirect_url: String,
    /// The role of a user created at their first sign-in.
    pub default_role: crate::accounts::Role,
}

/// `tls_cert_file` and `tls_key_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that could not be used, named by key.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration: {}", self.message)
        } else {
            write!(
                f,
                "configuration key `{}` (env TASKRAFT_{}): {}",
                self.key,
                self.key.to_uppercase(),
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn error(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

impl Settings {
    /// Loads the settings from `file` (if any) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load_from(file, std::env::vars().collect())
    }

    /// Loads the settings from `file` and the given environment variables.
    pub fn load_from(
        file: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(error(
                    "",
                    format!("config file {} not found", path.display()),
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| error("", format!("cannot read {}: {e}", path.display())))?;
            refuse_unknown_keys(&text, path)?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TASKRAFT_"))
            .collect();
        builder = builder.add_source(Environment::with_prefix("TASKRAFT").source(Some(env)));
        let layered = builder.build().map_err(|e| error("", e.to_string()))?;
        Layers(layered).settings()
    }

    /// Timing for the Raft core, derived from the tick settings.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms)
    }
}

fn refuse_unknown_keys(text: &str, path: &Path) -> Result<(), ConfigError> {
    let table: toml_table::Table = toml_table::parse(text)
        .map_err(|e| error("", format!("{} is not valid TOML: {e}", path.display())))?;
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(error(
                key,
                format!(
                    "unknown key in {}; known keys: {}",
                    path.display(),
                    KEYS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The top-level keys of a TOML document, read through the `config` crate
/// so that no second TOML parser is needed.
mod toml_table {
    pub type Table = config::Map<String, config::Value>;

    pub fn parse(text: &str) -> Result<Table, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()
    }
}

/// The layered sources, read one typed key at a time so errors name the key.
struct Layers(Config);

impl Layers {
    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.0.get::<T>(key) {
            Ok(value) => Ok(Some(value)),
            Err(config::ConfigError::NotFound(_)) => Ok(None),
            Err(e) => Err(error(key, strip_key_suffix(&e.to_string()))),
        }
    }

    /// A string key that must parse as `T`, with a default when absent.
    fn parsed<T>(&self, key: &str, default: &str, what: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
    {
        let text = self
            .get::<String>(key)?
            .unwrap_or_else(|| default.to_string());
        text.trim()
            .parse()
            .map_err(|_| error(key, format!("`{text}` is not {what}")))
    }

    fn number<T>(
        &self,
        key: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + PartialOrd + fmt::Display + Copy,
    {
        let value = self.get::<T>(key)?.unwrap_or(default);
        if !range.contains(&value) {
            return Err(error(
                key,
                format!(
                    "{value} is out of range ({}..={})",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(value)
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.get::<String>(key)?.filter(|s| !s.is_empty()))
    }

    fn settings(&self) -> Result<Settings, ConfigError> {
        let node_id: u64 = self.number("node_id", 1, 1..=u64::MAX >> 1)?;
        let http_addr: SocketAddr = self.parsed(
            "http_addr",
            "127.0.0.1:8081",
            "an address like 127.0.0.1:8081",
        )?;
        let raft_addr: SocketAddr = self.parsed(
            "raft_addr",
            "127.0.0.1:9081",
            "an address like 127.0.0.1:9081",
        )?;
        let join = self
            .optional_string("join")?
            .map(|list| parse_join(&list))
            .transpose()?
            .unwrap_or_default();
        let statefulset = match self.optional_string("pod_name")? {
            Some(pod) => {
                let service = self
                    .optional_string("peer_service")?
                    .ok_or_else(|| error("peer_service", "is required with pod_name"))?;
                let size = self
                    .get::<u64>("initial_cluster_size")?
                    .ok_or_else(|| error("initial_cluster_size", "is required with pod_name"))?;
                if !(1..=99).contains(&size) {
                    return Err(error(
                        "initial_cluster_size",
                        format!("{size} is out of range (1..=99)"),
                    ));
                }
                Some(StatefulSet::derive(
                    &pod,
                    &service,
                    size,
                    http_addr.port(),
                    raft_addr.port(),
                )?)
            }
            None => None,
        };
        let node_id = match (&statefulset, self.get::<u64>("node_id")?) {
            (Some(sts), Some(explicit)) if explicit != sts.node_id => {
                return Err(error(
                    "node_id",
                    format!(
                        "{explicit} contradicts pod_name, which makes it {}",
                        sts.node_id
                    ),
                ))
            }
            (Some(sts), _) => sts.node_id,
            (None, _) => node_id,
        };
        let peers = match (self.optional_string("peers")?, &statefulset) {
            (Some(text), _) => parse_peers(&text)?,
            (None, Some(sts)) => sts.peers.clone(),
            (None, None) => BTreeMap::from([(node_id, raft_addr.to_string())]),
        };
        let tls_on = self.optional_string("tls_cert_file")?.is_some();
        let join = match (&statefulset, join.is_empty()) {
            (Some(sts), true) if !sts.initial => sts
                .peer_urls
                .iter()
                .map(|url| match tls_on {
                    true => url.replacen("http://", "https://", 1),
                    false => url.clone(),
                })
                .collect(),
            _ => join,
        };
        let tls = self.http_tls()?;
        let peer_tls = self.peer_tls()?;
        let metrics_addr = self
            .optional_string("metrics_addr")?
            .map(|text| {
                text.trim().parse::<SocketAddr>().map_err(|_| {
                    error(
                        "metrics_addr",
                        format!("`{text}` is not an address like 0.0.0.0:9090"),
                    )
                })
            })
            .transpose()?;
        if let Some(addr) = metrics_addr {
            if addr.port() != 0 && (addr == http_addr || addr == raft_addr) {
                return Err(error(
                    "metrics_addr",
                    format!("{addr} is already http_addr or raft_addr; give it a port of its own"),
                ));
            }
        }
        // Under TLS the derived URLs are https.
        let scheme = |url: &str| match &tls {
            Some(_) => url.replacen("http://", "https://", 1),
            None => url.to_string(),
        };
        let advertise_url = match (self.optional_string("advertise_url")?, &statefulset) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(sts)) => scheme(&sts.advertise_url),
            (None, None) => scheme(&format!("http://{http_addr}")),
        };
        check_http_url(&advertise_url).map_err(|e| error("advertise_url", e.to_string()))?;
        let raft_advertise_addr = match (self.optional_string("raft_advertise_addr")?, &statefulset)
        {
            (Some(addr), _) => addr,
            (None, Some(sts)) => sts.raft_advertise_addr.clone(),
            (None, None) => peers
                .get(&node_id)
                .cloned()
                .unwrap_or_else(|| raft_addr.to_string()),
        };
        if !join.is_empty() && raft_advertise_addr.starts_with("0.0.0.0") {
            return Err(error(
                "raft_advertise_addr",
                "must be set to an address peers can reach when joining (raft_addr is 0.0.0.0)",
            ));
        }
        let initial_cluster_token =
            match (self.optional_string("initial_cluster_token")?, &statefulset) {
                (Some(token), _) => token,
                (None, Some(sts)) => sts.token.clone(),
                (None, None) => "taskraft".to_string(),
            };
        let peer_urls = statefulset
            .as_ref()
            .map(|sts| sts.peer_urls.iter().map(|url| scheme(url)).collect())
            .unwrap_or_default();
        let mysql_url = self
            .optional_string("mysql_url")?
            .unwrap_or_else(|| format!("mysql://root@127.0.0.1:3306/taskraft_n{node_id}"));
        check_mysql_url(&mysql_url)?;
        refuse_placeholder_password("mysql_url", &mysql_url)?;
        let mysql_migrate_url = self.optional_string("mysql_migrate_url")?;
        if let Some(url) = &mysql_migrate_url {
            check_mysql_url(url).map_err(|e| ConfigError {
                key: "mysql_migrate_url".into(),
                ..e
            })?;
            refuse_placeholder_password("mysql_migrate_url", url)?;
        }
        let api_token = self.optional_string("api_token")?;
        if let Some(token) = &api_token {
            refuse_placeholder("api_token", token)?;
        }
        let data_dir = self
            .optional_string("data_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("./data/n{node_id}")));
        let heartbeat_tick = self.number("heartbeat_tick", 2, 1..=1000)?;
        let election_tick = self.number("election_tick", 12, 2..=10_000)?;
        if election_tick <= heartbeat_tick {
            return Err(error(
                "election_tick",
                format!("must be greater than heartbeat_tick ({heartbeat_tick})"),
            ));
        }
        let tick_ms = self.number("tick_ms", 50, 1..=10_000)?;
        let request_timeout_ms = self.number("request_timeout_ms", 5_000u64, 100..=600_000)?;
        let ws_backlog = self.number("ws_backlog", 10_000usize, 1..=1_000_000)?;
        let cluster_secrets = self
            .optional_string("cluster_secret")?
            .map(|list| parse_secrets(&list))
            .transpose()?
            .unwrap_or_default();
        let multi_node = peers.len() > 1
            || !join.is_empty()
            || statefulset
                .as_ref()
                .is_some_and(|sts| sts.peers.len() > 1 || !sts.initial);
        if multi_node && cluster_secrets.is_empty() {
            return Err(error(
                "cluster_secret",
                format!(
                    "is required for a cluster of more than one node: peers prove it to each \
                     other, and without it anyone who reaches the Raft port could join the \
                     cluster or depose its leader; {MAKE_A_SECRET}"
                ),
            ));
        }
        let cors_origins = self
            .optional_string("cors_origins")?
            .map(|list| parse_origins(&list))
            .transpose()?
            .unwrap_or_default();
        let max_connections = self.number("max_connections", 8_192usize, 16..=1_000_000)?;
        let auth = match self.optional_string("auth")?.as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(error(
                    "auth",
                    format!("`{other}` is neither `on` nor `off`"),
                ))
            }
        };
        let auth_proxy = self.auth_proxy()?;
        let oidc = self.oidc()?;
        let bootstrap_admin = self
            .optional_string("bootstrap_admin")?
            .map(|text| parse_bootstrap_admin(&text))
            .transpose()?;
        let log_format = match self.get::<String>("log_format")?.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(error(
                    "log_format",
                    format!("`{other}` is neither `text` nor `json`"),
                ))
            }
        };
        Ok(Settings {
            node_id,
            http_addr,
            raft_addr,
            peers,
            raft_advertise_addr,
            advertise_url,
            mysql_url,
            mysql_migrate_url,
            data_dir,
            election_tick,
            heartbeat_tick,
            tick_ms,
            join,
            peer_urls,
            initial_cluster_token,
            api_token,
            auth,
            bootstrap_admin,
            cluster_secrets,
            cors_origins,
            max_connections,
            max_connections_per_address: self.number(
                "max_connections_per_address",
                1_024usize.min(max_connections),
                1..=max_connections,
            )?,
            request_timeout: Duration::from_millis(request_timeout_ms),
            log_format,
            ws_backlog,
            static_dir: self.optional_string("static_dir")?.map(PathBuf::from),
            lab_url: self.optional_string("lab_url")?,
            http_workers: self.number(
                "http_workers",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                1..=256,
            )?,
            snapshot_count: self.number("snapshot_count", 10_000u64, 1..=1_000_000_000)?,
            snapshot_catchup_entries: self.number(
                "snapshot_catchup_entries",
                5_000u64,
                0..=1_000_000_000,
            )?,
            apply_gather: Duration::from_millis(self.number(
                "apply_gather_ms",
                5u64,
                0..=10_000,
            )?),
            idempotency_retention: match self.optional_string("idempotency_retention")? {
                Some(text) => parse_retention(&text)
                    .map_err(|problem| error("idempotency_retention", problem.to_string()))?,
                None => DEFAULT_RETENTION,
            },
            auto_archive_interval: match self.optional_string("auto_archive_interval")? {
                Some(text) => parse_retention(&text)
                    .map_err(|problem| error("auto_archive_interval", problem.to_string()))?,
                None => crate::archiver::DEFAULT_INTERVAL,
            },
            due_reminder_interval: match self.optional_string("due_reminder_interval")? {
                Some(text) => parse_retention(&text)
                    .map_err(|problem| error("due_reminder_interval", problem.to_string()))?,
                None => crate::reminders::DEFAULT_INTERVAL,
            },
            webhook_allow_private: match self.optional_string("webhook_allow_private")?.as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(error(
                        "webhook_allow_private",
                        format!("`{other}` is neither `true` nor `false`"),
                    ))
                }
            },
            webhook_retry_max: match self.optional_string("webhook_retry_max")? {
                Some(text) => parse_retention(&text)
                    .map_err(|problem| error("webhook_retry_max", problem.to_string()))?,
                None => crate::webhooks::DEFAULT_RETRY_MAX,
            },
            tls,
            peer_tls,
            metrics_addr,
            auth_proxy,
            oidc,
        })
    }

    /// The `oidc_*` keys: issuer, client id, secret and redirect URL all
    /// or none; the default role `viewer` unless set.
    fn oidc(&self) -> Result<Option<OidcSettings>, ConfigError> {
        let keys = [
            "oidc_issuer",
            "oidc_client_id",
            "oidc_client_secret",
            "oidc_redirect_url",
        ];
        let values = keys
            .iter()
            .map(|k| self.optional_string(k))
            .collect::<Result<Vec<_>, _>>()?;
        let role = self.optional_string("oidc_default_role")?;
        if values.iter().all(Option::is_none) {
            if role.is_some() {
                return Err(error("oidc_issuer", "is required with oidc_default_role"));
            }
            return Ok(None);
        }
        if let Some(i) = values.iter().position(Option::is_none) {
            return Err(error(
                keys[i],
                "is required with the other oidc_* keys (issuer, client id, secret, redirect URL)",
            ));
        }
        let [issuer, client_id, client_secret, redirect_url] =
            <[Option<String>; 4]>::try_from(values)
                .expect("four keys")
                .map(Option::unwrap);
        let issuer = issuer.trim_end_matches('/').to_string();
        for (key, url) in [
            ("oidc_issuer", &issuer),
            ("oidc_redirect_url", &redirect_url),
        ] {
            check_http_url(url).map_err(|e| error(key, e.to_string()))?;
        }
        if !redirect_url.ends_with("/auth/oidc/callback") {
            return Err(error(
                "oidc_redirect_url",
                "must be this node's (or its ingress's) /auth/oidc/callback",
            ));
        }
        refuse_placeholder("oidc_client_secret", &client_secret)?;
        let default_role = match role {
            None => crate::accounts::Role::Viewer,
            Some(text) => text.trim().parse().map_err(|_| {
                error(
                    "oidc_default_role",
                    format!("`{text}` is not viewer, member or admin"),
                )
            })?,
        };
        Ok(Some(OidcSettings {
            issuer,
            client_id,
            client_secret,
            redirect_url,
            default_role,
        }))
    }

    /// `auth_proxy_header` with `auth_proxy_trusted` (both or neither).
    fn auth_proxy(&self) -> Result<Option<crate::accounts::proxy::ProxyAuth>, ConfigError> {
        let header = self.optional_string("auth_proxy_header")?;
        let trusted = self.optional_string("auth_proxy_trusted")?;
        let (header, trusted) = match (header, trusted) {
            (None, None) => return Ok(None),
            (Some(header), Some(trusted)) => (header, trusted),
            (Some(_), None) => {
                return Err(error(
                    "auth_proxy_trusted",
                    "is required with auth_proxy_header: the addresses of the proxies whose \
                     header is believed",
                ))
            }
            (None, Some(_)) => {
                return Err(error(
                    "auth_proxy_header",
                    "is required with auth_proxy_trusted",
                ))
            }
        };
        let header = header.trim().to_ascii_lowercase();
        let ours = ["authorization", "cookie", "host"].contains(&header.as_str())
            || header.starts_with("x-taskraft-");
        if actix_web::http::header::HeaderName::from_bytes(header.as_bytes()).is_err() || ours {
            return Err(error(
                "auth_proxy_header",
                format!(
                    "`{header}` is not a header name the proxy may set (e.g. X-Forwarded-User)"
                ),
            ));
        }
        let trusted = trusted
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| {
                t.parse()
                    .map_err(|e: String| error("auth_proxy_trusted", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if trusted.is_empty() {
            return Err(error("auth_proxy_trusted", "names no address"));
        }
        Ok(Some(crate::accounts::proxy::ProxyAuth { header, trusted }))
    }

    /// `tls_cert_file` and `tls_key_file`: both or neither, and they load.
    fn http_tls(&self) -> Result<Option<HttpTlsFiles>, ConfigError> {
        let cert = self.optional_string("tls_cert_file")?;
        let key = self.optional_string("tls_key_file")?;
        let (cert, key) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (PathBuf::from(cert), PathBuf::from(key)),
            (Some(_), None) => return Err(error("tls_key_file", "is required with tls_cert_file")),
            (None, Some(_)) => return Err(error("tls_cert_file", "is required with tls_key_file")),
        };
        crate::tls::load_certified_key(&cert, &key)
            .map_err(|e| error("tls_cert_file", e.to_string()))?;
        Ok(Some(HttpTlsFiles { cert, key }))
    }

    /// The three `peer_tls_*` keys: all or none, and they load.
    fn peer_tls(&self) -> Result<Option<crate::tls::PeerTlsFiles>, ConfigError> {
        const KEYS: [&str; 3] = [
            "peer_tls_ca_file",
            "peer_tls_cert_file",
            "peer_tls_key_file",
        ];
        let mut values = Vec::new();
        for key in KEYS {
            values.push(self.optional_string(key)?);
        }
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(at) = values.iter().position(Option::is_none) {
            return Err(error(
                KEYS[at],
                "is required with the other peer_tls_* keys (all three or none)",
            ));
        }
        let [ca, cert, key] =
            [0, 1, 2].map(|i| PathBuf::from(values[i].clone().unwrap_or_default()));
        crate::tls::load_roots(&ca).map_err(|e| error("peer_tls_ca_file", e.to_string()))?;
        crate::tls::load_certified_key(&cert, &key)
            .map_err(|e| error("peer_tls_cert_file", e.to_string()))?;
        let files = crate::tls::PeerTlsFiles { ca, cert, key };
        crate::tls::PeerTls::new(files.clone())
            .map_err(|e| error("peer_tls_cert_file", e.to_string()))?;
        Ok(Some(files))
    }
}

/// Whether `value` is a placeholder left from an example rather than a
/// secret: it starts with `CHANGEME` (any case, any separator: what
/// `k8s/secret.env` ships), `REPLACEME` or `TODO`, says `placeholder`, is
/// written `<like this>`, or is one of the words people type as a stand-in.
pub fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    let squeezed: String = lower
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    const STARTS: [&str; 4] = ["changeme", "replaceme", "todo", "fixme"];
    const WORDS: [&str; 9] = [
        "secret", "password", "passwd", "token", "example", "xxx", "xxxx", "test", "default",
    ];
    STARTS.iter().any(|p| squeezed.starts_with(p))
        || lower.contains("placeholder")
        || (lower.starts_with('<') && lower.ends_with('>'))
        || (lower.starts_with("${") && lower.ends_with('}'))
        || WORDS.contains(&squeezed.as_str())
        || (!squeezed.is_empty() && squeezed.bytes().all(|b| b == b'x'))
}

/// Refuses a placeholder as the value of `key`.
pub(crate) fn refuse_placeholder(key: &str, value: &str) -> Result<(), ConfigError> {
    if is_placeholder(value) {
        return Err(error(
            key,
            "is still a placeholder (like the examples' CHANGEME…); set a real value",
        ));
    }
    Ok(())
}

/// Refuses a MySQL URL whose password is a placeholder.
fn refuse_placeholder_password(key: &str, url: &str) -> Result<(), ConfigError> {
    let password = mysql_async::Opts::from_url(url)
        .ok()
        .and_then(|opts| opts.pass().map(str::to_string));
    match password {
        Some(password) if is_placeholder(&password) => Err(error(
            key,
            format!(
                "`{}` has a placeholder password (like the examples' CHANGEME…); set a real one",
                redact(url)
            ),
        )),
        _ => Ok(()),
    }
}

/// The `config` crate appends " for key `x`"; our message names it already.
fn strip_key_suffix(message: &str) -> String {
    match message.find(" for key `") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// Parses `name:password` (the password may contain `:`).
pub fn parse_bootstrap_admin(text: &str) -> Result<(String, String), ConfigError> {
    let (name, password) = text.split_once(':').ok_or_else(|| {
        error(
            "bootstrap_admin",
            "must be NAME:PASSWORD (the first admin, created while the cluster has no users)",
        )
    })?;
    let name = crate::accounts::validate::username(name)
        .map_err(|e| error("bootstrap_admin", format!("the name {}", e.message)))?;
    crate::accounts::validate::password(password)
        .map_err(|e| error("bootstrap_admin", format!("the password {}", e.message)))?;
    if password.contains("CHANGEME") {
        return Err(error(
            "bootstrap_admin",
            "the password is a placeholder: choose one (scripts/k8s-secrets makes one)",
        ));
    }
    Ok((name, password.to_string()))
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| error("peers", format!("`{item}` is not of the form ID=HOST:PORT")))?;
        let id: u64 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| error("peers", format!("`{id}` is not a positive node id")))?;
        let addr = addr.trim();
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(error(
                "peers",
                format!("`{addr}` is not a HOST:PORT address"),
            ));
        }
        if peers.insert(id, addr.to_string()).is_some() {
            return Err(error("peers", format!("node id {id} appears twice")));
        }
    }
    if peers.is_empty() {
        return Err(error("peers", "names no node"));
    }
    Ok(peers)
}

fn parse_join(text: &str) -> Result<Vec<String>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|url| {
            check_http_url(url).map_err(|e| error("join", e.to_string()))?;
            Ok(url.trim_end_matches('/').to_string())
        })
        .collect()
}

/// `a,b`: each at least [`MIN_SECRET_LEN`] characters, not a placeholder.
fn parse_secrets(text: &str) -> Result<Vec<String>, ConfigError> {
    let secrets: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for secret in &secrets {
        if is_placeholder(secret) {
            return Err(error(
                "cluster_secret",
                format!("is still the placeholder from the example; {MAKE_A_SECRET}"),
            ));
        }
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(error(
                "cluster_secret",
                format!(
                    "a secret of {} characters is too easy to guess (at least {MIN_SECRET_LEN}); \
                     {MAKE_A_SECRET}",
                    secret.chars().count()
                ),
            ));
        }
    }
    Ok(secrets)
}

/// `https://board.example.com,http://localhost:3000`: origins, no wildcard.
fn parse_origins(text: &str) -> Result<Vec<String>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            if item == "*" || item.contains('*') {
                return Err(error(
                    "cors_origins",
                    "takes a list of origins, not a wildcard: a wildcard would let any page \
                     the user visits drive the cluster",
                ));
            }
            match origin_of(item) {
                Some(origin) if origin.len() == item.trim_end_matches('/').len() => Ok(origin),
                _ => Err(error(
                    "cors_origins",
                    format!("`{item}` is not an origin like https://board.example.com:8443"),
                )),
            }
        })
        .collect()
}

/// Why a member URL is refused, in words for the operator or the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(String);

/// Checks a member URL (an `advertise_url`, a peer's, one in a request):
/// http or https, a host, printable ASCII without spaces or quotes, at
/// most [`MAX_URL_LEN`] bytes.
pub fn check_http_url(url: &str) -> Result<(), BadUrl> {
    if url.len() > MAX_URL_LEN {
        return Err(BadUrl(format!(
            "a URL of {} bytes (at most {MAX_URL_LEN})",
            url.len()
        )));
    }
    let printable = url
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\' | b'`' | b'@'));
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match authority {
        Some(host) if printable && !host.is_empty() && !host.starts_with(':') => Ok(()),
        _ => Err(BadUrl(format!(
            "`{}` is not an http(s) URL",
            url.chars().take(80).collect::<String>()
        ))),
    }
}

/// The origin (`scheme://host[:port]`, lower case) of an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    check_http_url(url).ok()?;
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

fn check_mysql_url(url: &str) -> Result<(), ConfigError> {
    let opts = mysql_async::Opts::from_url(url).map_err(|e| {
        error(
            "mysql_url",
            format!("`{}` is not a MySQL URL: {e}", redact(url)),
        )
    })?;
    match opts.db_name() {
        Some(name) if valid_database_name(name) => Ok(()),
        Some(name) => Err(error(
            "mysql_url",
            format!("database name `{name}` must be 1-64 letters, digits, `_` or `$`"),
        )),
        None => Err(error(
            "mysql_url",
            "names no database (mysql://user@host:port/DATABASE)",
        )),
    }
}

/// Database names we are willing to put in a `CREATE DATABASE` statement.
pub fn valid_database_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// The URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
