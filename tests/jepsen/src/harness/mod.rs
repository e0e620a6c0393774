//! The harness: real nodes, real MariaDB servers, real faults, recorded
//! clients — everything the checkers judge, produced on this machine.
//!
//! A run ([`run::run`]) goes like this:
//!
//! 1. **Network.** One network namespace per node, joined by veths to a
//!    bridge in the root namespace ([`net`]); each node and its own
//!    `mariadbd` live inside it (MariaDB on the namespace's own
//!    127.0.0.1:3306). Every directed node→node Raft link goes through a
//!    TCP proxy the harness owns ([`proxy`]), listening on an address of
//!    its own, so that iptables rules inside the namespaces can cut one
//!    link, both directions, or a node, and the proxy can delay, hold or
//!    reset it. If namespaces cannot be made, everything runs on loopback
//!    and partitions go through the proxy instead.
//! 2. **Cluster.** A private MariaDB per node ([`mysql`]) and the node
//!    processes ([`cluster`]): start, `kill -9`, SIGSTOP/SIGCONT, restart
//!    (armed with a crash point, for the failpoints binary), logs. Both
//!    are the shared harness's (`tests/testbed`: `taskraft::mysqld` and
//!    `testbed::Node`), started inside the node's namespace; what this
//!    crate adds is the namespaces, the crash points and the reads.
//! 3. **Workloads** ([`workload`]) over every node, seeded: creates under
//!    `Idempotency-Key` retried like a real client, conditional updates of
//!    a few hot tasks (versioned registers), linearizable reads, the
//!    columns ("bank") workload, and WebSocket subscribers that drop and
//!    resume ([`subscriber`]). Each operation is recorded through
//!    [`client::Recorder`] with monotonic timestamps taken before the
//!    request and after the answer.
//! 4. **Nemesis** ([`nemesis`]): a seeded schedule of faults from the
//!    chosen families, each healed, with its injection time kept for the
//!    unavailability figures; a monitor counts leader changes.
//! 5. **After healing**: wait for the nodes to agree, read every node's
//!    list, event table (from its MariaDB, byte by byte) and
//!    `taskraft rebuild --check`; run the checkers; write the report
//!    ([`report`]) under `target/jepsen/<run-id>/`.
//!
//! Not here: the checkers themselves (the rest of this crate), and any
//! flag inside the product — faults come from outside the processes, except
//! the crash points the failpoints binary was built with.

pub mod client;
pub mod cluster;
pub mod isolation;
pub mod mysql;
pub mod nemesis;
pub mod net;
pub mod os;
pub mod payload;
pub mod profile;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod run;
pub mod subscriber;
pub mod workload;
