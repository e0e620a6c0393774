//! Consensus: the Raft node that orders every command.
//!
//! [`RaftNode`](node::RaftNode) is an actix actor on its own thread around a
//! raft-rs `RawNode` (pre-vote and check-quorum on). The rest of the code
//! talks to it through a [`RaftHandle`]:
//!
//! - `propose(command)` puts the command in the log with this node's id and
//!   the request id as the entry context; raft-rs forwards proposals from a
//!   follower to the leader. The handle returns when *this* node has applied
//!   the entry, with the outcome, or fails fast: 503 when no leader is known
//!   or the leader changed under an uncommitted request, 504 at the deadline.
//! - `read_barrier()` runs a ReadIndex round (reads that arrive together
//!   share one) and returns once this node's MySQL has applied up to the read
//!   index: a read after it sees every write acknowledged before it began.
//!
//! The log lives in [`LogStore`] (raft-engine, fsynced per Ready). Entries
//! are applied by the applier: the node tells it the commit index
//! ([`Committed`]) and learns back the applied index ([`Applied`]); the
//! applier reads the entries through [`CommittedLog`], already decoded
//! ([`CommittedEntry`]: index, term, origin node, command).
//!
//! This module is the only code that names raft-rs: the applier sees
//! decoded entries, the transport sees [`PeerMessage`]s (their addressing
//! and their bytes), and the rest sees the handle's types. The node's ports
//! to the transport (what it sends: [`SendMessages`], [`SetPeer`],
//! [`RemovePeer`]; what it takes: [`Step`], [`Unreachable`]) are defined
//! here, so the transport depends on this module and not the reverse.
//!
//! The log is compacted once MySQL has durably applied enough of it; a
//! follower that needs compacted entries is sent a snapshot (metadata only)
//! and its applier copies the rows from a peer's MySQL.

mod committed;
mod handle;
pub mod logger;
pub mod membership;
mod message;
mod node;
mod ports;
pub mod proposal;
pub mod storage;
mod waiters;

pub use committed::{Committed, CommittedEntry, CommittedLog, ReadError, SnapshotPoint};
pub use handle::{
    Applied, ClusterStatus, ConsensusError, MemberStatus, Overload, RaftHandle, RaftStatus, Role,
    TransferRefused,
};
pub use message::{MessageDecodeError, PeerMessage};
pub use node::{Compaction, NodeConfig, RaftNode, TransportPorts};
pub use ports::{RaftInbox, RemovePeer, SendMessages, SetPeer, Step, Unreachable};
pub use storage::{LogError, LogStore, RecoverError, Recovery};
