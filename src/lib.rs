//! taskraft: a kanban task board that stays correct when machines fail.
//!
//! Three or five nodes agree on every change through Raft (tikv's raft-rs);
//! each node keeps its own MySQL database holding an append-only table of
//! task events and a projection of the current tasks; browsers connected to
//! any node see every committed change live.
//!
//! # Layout
//!
//! - [`task`]: the pure state machine (commands, events, decisions). No I/O.
//! - [`accounts`]: users, roles, sessions and tokens as replicated state,
//!   and who may do what. No I/O.
//! - [`raft`]: the Raft node actor, its durable log and the typed handle the
//!   rest of the code uses to propose commands and wait for reads.
//! - [`transport`]: the peer transport actor, one TCP connection per peer,
//!   reached through its typed handle.
//! - [`applier`]: the actor that applies committed entries to MySQL, one
//!   transaction per batch, exactly once.
//! - [`db`]: MySQL connections, migrations, read queries, rebuild/check.
//! - [`api`]: the HTTP layer (REST, board assets, health, metrics).
//! - [`ws`]: the WebSocket hub (behind its typed handle) and sessions:
//!   committed events, live.
//! - [`presence`]: who is looking at which board now, and who has which
//!   card open: in memory, shared between nodes every second, never in
//!   the log.
//! - [`cluster`]: the cluster façade: this node's view of its cluster,
//!   assembled from the actors' handles, for the api, the hub and joining.
//! - [`join`]: bootstrap, join or rejoin: the calls a starting node makes;
//!   promotion to voter and noticing its own removal.
//! - [`peer_http`]: the one blocking HTTP client a node calls peers with
//!   (joining, forwarding to the leader, catch-up pages).
//! - [`server`]: wires one node together (`taskraft serve`): start-up
//!   decided as a value ([`server::start`]), then the actors, HTTP, drain.
//! - [`connections`]: caps on concurrent connections per listener and per
//!   client address, and a refusal log that cannot be flooded.
//! - [`version`]: this build's version, the cluster version (the lowest
//!   voter's) and the table that gates each command kind on it.
//! - [`reminders`]: the leader's sweep proposing due-date reminders,
//!   each rung once per card and due date (`task::notification`).
//! - [`webhooks`]: the leader's delivery of each board's events to its
//!   outgoing webhooks (signed, in order, at least once), and the guard
//!   that keeps them off local addresses (`task::webhook`).
//! - [`retention`]: the leader's periodic expiry of idempotency keys,
//!   decided in the log.
//! - [`lab`]: `taskraft demo --lab`'s relays, page and fault controls.
//! - [`config`], [`demo`], [`status`], [`mysqld`], [`metrics`], [`time`]:
//!   the rest of the command line and its support.
//!
//! How a write flows and how a read flows: see the README.

pub mod accounts;
pub mod api;
pub mod applier;
pub mod archiver;
pub mod audit;
pub mod backup;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod crash;
pub mod db;

pub mod demo;
pub mod import;
pub mod invalid;
pub mod join;
pub mod lab;
pub mod metrics;
pub mod mysqld;
pub mod peer_http;
pub mod presence;
pub mod projection;
pub mod raft;
pub mod reminders;
pub mod retention;
pub mod server;
pub mod status;
pub mod task;
pub mod time;
pub mod tls;
pub mod transport;
pub mod upgrade;
pub mod version;
pub mod webhooks;
pub mod ws;
