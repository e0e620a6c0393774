//! StatefulSet mode: a pod's identity and its peers, from its name.

use std::collections::BTreeMap;

use super::{error, ConfigError};

/// What a pod of a StatefulSet derives from its name: `taskraft-2` in a
/// set of 3 behind `taskraft-peers.ns.svc.cluster.local` is node 3, and the
/// initial voters are `taskraft-0`, `-1` and `-2` at their stable names.
#[derive(Clone, Debug, PartialEq)]
pub struct StatefulSet {
    pub ordinal: u64,
    pub node_id: u64,
    /// Whether this pod is one of the initial voters (else it joins).
    pub initial: bool,
    pub peers: BTreeMap<u64, String>,
    /// The initial voters' HTTP URLs, this pod's included.
    pub peer_urls: Vec<String>,
    pub advertise_url: String,
    pub raft_advertise_addr: String,
    /// The default cluster token: the set and its service, unique per
    /// namespace.
    pub token: String,
}

impl StatefulSet {
    pub fn derive(
        pod: &str,
        service: &str,
        initial_size: u64,
        http_port: u16,
        raft_port: u16,
    ) -> Result<StatefulSet, ConfigError> {
        let (set, ordinal) = pod
            .rsplit_once('-')
            .and_then(|(set, n)| Some((set, n.parse::<u64>().ok()?)))
            .filter(|(set, _)| !set.is_empty())
            .ok_or_else(|| {
                error(
                    "pod_name",
                    format!("`{pod}` does not end in -ORDINAL like a StatefulSet pod"),
                )
            })?;
        let service = service.trim_matches('.');
        if service.is_empty() {
            return Err(error("peer_service", "is empty"));
        }
        let host = |i: u64| format!("{set}-{i}.{service}");
        Ok(StatefulSet {
            ordinal,
            node_id: ordinal + 1,
            initial: ordinal < initial_size,
            peers: (0..initial_size)
                .map(|i| (i + 1, format!("{}:{raft_port}", host(i))))
                .collect(),
            peer_urls: (0..initial_size)
                .map(|i| format!("http://{}:{http_port}", host(i)))
                .collect(),
            advertise_url: format!("http://{}:{http_port}", host(ordinal)),
            raft_advertise_addr: format!("{}:{raft_port}", host(ordinal)),
            token: format!("{set}.{service}"),
        })
    }
}
