//! How a node starts: a value decided before anything is done.
//!
//! The decision is a pure function ([`decide`]) of what the data directory
//! holds ([`Stored`]), what the settings ask for ([`Asked`]) and, for a
//! fresh directory without `join`, what the other initial members say
//! ([`Existing`]). [`begin`] reads the first, asks for the last when the
//! decision needs it, and carries the [`Start`] out on the Raft log.
//!
//! The rule it keeps: a node never comes back as a voter with an empty log
//! under an id the cluster still counts on (it could vote twice in one
//! term), and never bootstraps a second cluster over a running one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Settings;
use crate::join::{self, Existing};
use crate::raft::membership::MemberAddr;
use crate::raft::LogStore;
use crate::transport::auth::{ClusterId, PersistError};

use super::ServeError;

/// What the data directory's Raft log says about who this node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Nothing: the directory was never used.
    Fresh,
    /// A log written by node `node_id`; `removed` once a committed
    /// membership change removed this node.
    Node { node_id: u64, removed: bool },
    /// A log without a node identity (written by an older version).
    Unidentified,
}

impl Stored {
    /// Reads it from the log of node `node_id`.
    pub fn read(store: &LogStore, node_id: u64) -> Stored {
        match store.identity() {
            Some(identity) => Stored::Node {
                node_id: identity.node_id,
                removed: store.is_removed() || was_removed(store, node_id),
            },
            None if store.is_fresh() => Stored::Fresh,
            None => Stored::Unidentified,
        }
    }
}

/// Whether a committed membership change removed this node earlier.
fn was_removed(store: &LogStore, node_id: u64) -> bool {
    let conf = store.conf_state();
    store.conf_index() > 0
        && !conf.voters.contains(&node_id)
        && !conf.learners.contains(&node_id)
        && !store.members().contains_key(&node_id)
        && !conf.voters.is_empty()
}

/// What the settings ask of this node at start-up.
#[derive(Clone, Debug)]
pub struct Asked {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// Members to ask to add this node (`join`).
    pub join: Vec<String>,
    /// The other initial members' URLs, asked whether a cluster runs.
    pub peer_urls: Vec<String>,
    /// Whether `peers` (the initial voters) names this node.
    pub initial_voter: bool,
}

impl Asked {
    pub fn from_settings(settings: &Settings) -> Asked {
        Asked {
            node_id: settings.node_id,
            data_dir: settings.data_dir.clone(),
            join: settings.join.clone(),
            peer_urls: settings.peer_urls.clone(),
            initial_voter: settings.peers.contains_key(&settings.node_id),
        }
    }
}

/// How the node starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// A fresh directory and no running cluster: write the initial voters
    /// (`peers`) to the log.
    Bootstrap,
    /// A fresh directory: ask the members at these URLs to add this node
    /// as a learner; it promotes itself once caught up.
    Join(Vec<String>),
    /// Removed earlier: ask the members at these URLs (`join`) to add it
    /// again, as a learner.
    Rejoin(Vec<String>),
    /// Go on from the log.
    Resume,
}

impl Start {
    /// Whether the node begins as a learner waiting to be promoted.
    pub fn joins(&self) -> bool {
        matches!(self, Start::Join(_) | Start::Rejoin(_))
    }
}

/// Why a node refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the data_dir {} belongs to node {owner}, not {node_id}", data_dir.display())]
    OtherNode {
        data_dir: PathBuf,
        owner: u64,
        node_id: u64,
    },
    #[error(
        "node {node_id} was removed from its cluster; to bring it back, set `join` \
         (it asks to be added as a learner again)"
    )]
    RemovedWithoutJoin { node_id: u64 },
    #[error(
        "a cluster is running (leader {leader_id:?}) and node {node_id} is one of its members, \
         but this data_dir is empty: its data was lost. Remove the member first \
         (DELETE /api/cluster/members/{node_id}); the node then joins as a new learner."
    )]
    DataLost {
        node_id: u64,
        leader_id: Option<u64>,
    },
    #[error(
        "this data_dir is empty and `peers` does not name this node ({node_id}): \
         list every initial voter in `peers`, this one included, or set `join` to \
         add this node to a running cluster"
    )]
    NotAnInitialVoter { node_id: u64 },
    #[error(
        "the data_dir {} holds a Raft log but no node identity; it was not written by this version",
        data_dir.display()
    )]
    Unidentified { data_dir: PathBuf },
    #[error(
        "this node's cluster has {members} members, and a cluster of more than one node \
         needs `cluster_secret` (TASKRAFT_CLUSTER_SECRET) so that peers can tell each other \
         from strangers. Make one with `openssl rand -hex 32` and give the same value to \
         every node"
    )]
    NoSecret { members: usize },
    #[error("the Raft log has no node identity after start-up")]
    NoIdentityAfterStart,
}

/// Whether [`decide`] needs to know if a cluster already runs: only a
/// fresh directory without `join` asks the other initial members.
pub fn needs_probe(stored: &Stored, asked: &Asked) -> bool {
    *stored == Stored::Fresh && asked.join.is_empty()
}

/// How the node starts, or why it must not. `probe` is what the other
/// initial members said; it counts only when [`needs_probe`].
pub fn decide(stored: &Stored, asked: &Asked, probe: &Existing) -> Result<Start, StartError> {
    let node_id = asked.node_id;
    match stored {
        // Someone else's log: starting on it would speak for that node.
        Stored::Node { node_id: owner, .. } if *owner != node_id => Err(StartError::OtherNode {
            data_dir: asked.data_dir.clone(),
            owner: *owner,
            node_id,
        }),
        // The cluster let go of this node; only an operator brings it back.
        Stored::Node { removed: true, .. } if asked.join.is_empty() => {
            Err(StartError::RemovedWithoutJoin { node_id })
        }
        Stored::Node { removed: true, .. } => Ok(Start::Rejoin(asked.join.clone())),
        Stored::Node { .. } => Ok(Start::Resume),
        // Told where to join: no need to ask whether a cluster runs.
        Stored::Fresh if !asked.join.is_empty() => Ok(Start::Join(asked.join.clone())),
        Stored::Fresh => match probe {
            // A voter the cluster counts on, back with nothing: it could
            // vote twice in a term. It must be removed and join anew.
            Existing::Member { leader_id } => Err(StartError::DataLost {
                node_id,
                leader_id: *leader_id,
            }),
            // A running cluster that does not know this id: join it, as
            // a new learner, through the initial members.
            Existing::NotMember => Ok(Start::Join(asked.peer_urls.clone())),
            Existing::None if asked.initial_voter => Ok(Start::Bootstrap),
            Existing::None => Err(StartError::NotAnInitialVoter { node_id }),
        },
        Stored::Unidentified => Err(StartError::Unidentified {
            data_dir: asked.data_dir.clone(),
        }),
    }
}

/// A cluster of more than one node needs a secret to tell peers from
/// strangers; `members` counts the configuration (voters and learners) and
/// `recorded` the members whose addresses the log holds.
pub fn require_secret(members: usize, recorded: usize, has_secret: bool) -> Result<(), StartError> {
    if !has_secret && (members > 1 || recorded > 1) {
        return Err(StartError::NoSecret { members });
    }
    Ok(())
}

/// Decides how to start (asking the other initial members if needed) and
/// carries it out on `store`. Returns whether the node begins as a learner.
pub async fn begin(store: &LogStore, settings: &Settings) -> Result<bool, ServeError> {
    let node_id = settings.node_id;
    let stored = Stored::read(store, node_id);
    let asked = Asked::from_settings(settings);
    let probe = if needs_probe(&stored, &asked) {
        join::existing_cluster(
            settings.peer_urls.clone(),
            settings.advertise_url.clone(),
            node_id,
            join::PeerCaller::new(settings),
        )
        .await
    } else {
        Existing::None
    };
    let start = decide(&stored, &asked, &probe)?;
    let own = MemberAddr {
        raft_addr: settings.raft_advertise_addr.clone(),
        url: Some(settings.advertise_url.clone()),
    };
    match &start {
        Start::Resume => {}
        Start::Rejoin(urls) => {
            tracing::info!("this node was removed earlier: asking to be added again");
            join::join(urls.clone(), node_id, own, join::PeerCaller::new(settings)).await?;
            store.clear_removed()?;
        }
        Start::Bootstrap => {
            tracing::info!(voters = ?settings.peers.keys().collect::<Vec<_>>(), "fresh data_dir: bootstrapping the initial cluster");
            store.bootstrap(node_id, &settings.peers, &settings.initial_cluster_token)?;
        }
        Start::Join(urls) => {
            tracing::info!(through = ?urls, "fresh data_dir: joining the running cluster");
            let (identity, members) =
                join::join(urls.clone(), node_id, own, join::PeerCaller::new(settings)).await?;
            store.set_identity(&identity, &members)?;
        }
    }
    // Not a voter yet (a joiner, possibly restarted before promotion):
    // promote itself once caught up.
    Ok(start.joins() || !store.conf_state().voters.contains(&node_id))
}

/// The cluster id from the log's identity, shared with the transport, which
/// stores the settled id a forming node learns from a peer.
pub fn cluster_id(store: &LogStore) -> Result<Arc<ClusterId>, StartError> {
    let identity = store.identity().ok_or(StartError::NoIdentityAfterStart)?;
    let id_store = store.clone();
    Ok(ClusterId::new(
        identity.cluster_id,
        identity.forming,
        Box::new(move |id| id_store.adopt_cluster_id(id).map_err(PersistError::new)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(node_id: u64) -> Asked {
        Asked {
            node_id,
            data_dir: PathBuf::from("/var/lib/taskraft"),
            join: Vec::new(),
            peer_urls: vec!["http://n1:8080".into(), "http://n2:8080".into()],
            initial_voter: true,
        }
    }

    fn joining(node_id: u64) -> Asked {
        Asked {
            join: vec!["http://n1:8080".into()],
            initial_voter: false,
            ..asked(node_id)
        }
    }

    const ITS_OWN_LOG: Stored = Stored::Node {
        node_id: 2,
        removed: false,
    };
    const REMOVED: Stored = Stored::Node {
        node_id: 2,
        removed: true,
    };

    #[test]
    fn a_node_with_its_own_log_resumes_from_it() {
        assert_eq!(
            decide(&ITS_OWN_LOG, &asked(2), &Existing::None).unwrap(),
            Start::Resume
        );
        assert!(!needs_probe(&ITS_OWN_LOG, &asked(2)), "nobody is asked");
    }

    #[test]
    fn a_node_with_its_own_log_resumes_even_when_told_to_join() {
        assert_eq!(
            decide(&ITS_OWN_LOG, &joining(2), &Existing::None).unwrap(),
            Start::Resume
        );
    }

    #[test]
    fn a_log_written_by_another_node_is_refused() {
        let refused = decide(&ITS_OWN_LOG, &asked(3), &Existing::None).unwrap_err();
        assert!(matches!(
            refused,
            StartError::OtherNode {
                owner: 2,
                node_id: 3,
                ..
            }
        ));
        assert_eq!(
            refused.to_string(),
            "the data_dir /var/lib/taskraft belongs to node 2, not 3"
        );
    }

    #[test]
    fn a_log_written_by_another_node_is_refused_before_anything_about_removal() {
        let refused = decide(&REMOVED, &joining(3), &Existing::None).unwrap_err();
        assert!(matches!(refused, StartError::OtherNode { .. }));
    }

    #[test]
    fn a_removed_node_without_join_refuses_and_says_how_to_come_back() {
        let refused = decide(&REMOVED, &asked(2), &Existing::None).unwrap_err();
        assert!(matches!(
            refused,
            StartError::RemovedWithoutJoin { node_id: 2 }
        ));
        assert!(refused.to_string().contains("set `join`"), "{refused}");
    }

    #[test]
    fn a_removed_node_with_join_asks_to_be_added_again() {
        assert_eq!(
            decide(&REMOVED, &joining(2), &Existing::None).unwrap(),
            Start::Rejoin(vec!["http://n1:8080".into()])
        );
    }

    #[test]
    fn a_fresh_node_told_to_join_joins_without_asking_whether_a_cluster_runs() {
        assert!(!needs_probe(&Stored::Fresh, &joining(4)));
        let start = decide(&Stored::Fresh, &joining(4), &Existing::None).unwrap();
        assert_eq!(start, Start::Join(vec!["http://n1:8080".into()]));
        assert!(start.joins());
    }

    #[test]
    fn a_fresh_initial_voter_asks_the_others_and_bootstraps_when_no_cluster_runs() {
        assert!(needs_probe(&Stored::Fresh, &asked(1)));
        let start = decide(&Stored::Fresh, &asked(1), &Existing::None).unwrap();
        assert_eq!(start, Start::Bootstrap);
        assert!(!start.joins());
    }

    #[test]
    fn a_fresh_node_that_peers_does_not_name_refuses_to_bootstrap() {
        let outsider = Asked {
            initial_voter: false,
            ..asked(7)
        };
        let refused = decide(&Stored::Fresh, &outsider, &Existing::None).unwrap_err();
        assert!(matches!(
            refused,
            StartError::NotAnInitialVoter { node_id: 7 }
        ));
    }

    #[test]
    fn a_fresh_node_the_running_cluster_still_counts_on_refuses_since_its_data_was_lost() {
        let member = Existing::Member { leader_id: Some(1) };
        let refused = decide(&Stored::Fresh, &asked(2), &member).unwrap_err();
        assert!(matches!(
            refused,
            StartError::DataLost {
                node_id: 2,
                leader_id: Some(1)
            }
        ));
        assert!(refused
            .to_string()
            .starts_with("a cluster is running (leader Some(1))"));
    }

    #[test]
    fn a_fresh_node_unknown_to_the_running_cluster_joins_through_the_initial_members() {
        assert_eq!(
            decide(&Stored::Fresh, &asked(3), &Existing::NotMember).unwrap(),
            Start::Join(vec!["http://n1:8080".into(), "http://n2:8080".into()])
        );
    }

    #[test]
    fn a_log_without_an_identity_is_refused_whatever_the_settings() {
        for settings in [asked(1), joining(1)] {
            let refused = decide(&Stored::Unidentified, &settings, &Existing::None).unwrap_err();
            assert!(matches!(refused, StartError::Unidentified { .. }));
        }
    }

    #[test]
    fn a_cluster_of_one_needs_no_secret_and_a_larger_one_does() {
        assert!(require_secret(1, 1, false).is_ok());
        assert!(require_secret(3, 3, true).is_ok());
        assert!(matches!(
            require_secret(3, 3, false),
            Err(StartError::NoSecret { members: 3 })
        ));
        // A joiner's configuration may not have arrived; its records have.
        assert!(matches!(
            require_secret(0, 2, false),
            Err(StartError::NoSecret { members: 0 })
        ));
    }
}
