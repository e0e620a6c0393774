//! What a node knows of presence, as a plain value: its own sessions'
//! announcements, its peers' last summaries, and the merged view of each
//! board it last pushed. No actix and no clock of its own: the hub passes
//! `now`, so the tests below drive it with made-up instants.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::{BoardView, Looking, Summary};
use crate::task::BoardId;

/// A peer's last summary and when it arrived.
struct Heard {
    /// When it arrived, by this node's clock: what the TTL counts from.
    at: Instant,
    /// When the peer made it, by the peer's clock: only compared with the
    /// same peer's other summaries.
    sent_at: i64,
    boards: BTreeMap<BoardId, BoardView>,
}

pub struct Presence {
    /// This node: a summary claiming to be from it is not a peer's.
    node_id: u64,
    /// How long a peer's summary counts.
    ttl: Duration,
    /// This node's sessions, by session id.
    local: HashMap<u64, Looking>,
    /// Each peer's last summary, by node id.
    peers: HashMap<u64, Heard>,
    /// The merged view of each board as last pushed: a board is pushed
    /// again only when its view differs. A board whose last viewer left is
    /// pushed once, empty, then forgotten.
    pushed: HashMap<BoardId, BoardView>,
}

/// Whether a peer's summary was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Taken,
    /// From this node itself (a misconfigured peer list).
    Ours,
    /// Older than the last one from that node (reordered, replayed).
    Stale,
}

impl Presence {
    pub fn new(node_id: u64, ttl: Duration) -> Presence {
        Presence {
            node_id,
            ttl,
            local: HashMap::new(),
            peers: HashMap::new(),
            pushed: HashMap::new(),
        }
    }

    /// Session `session` now looks at `looking` (`None`: at no board); the
    /// board it looked at before, if that was another.
    pub fn look(&mut self, session: u64, looking: Option<Looking>) -> Option<BoardId> {
        let before = match looking {
            Some(looking) => self.local.insert(session, looking),
            None => self.local.remove(&session),
        };
        before.map(|b| b.board)
    }

    /// What session `session` looks at.
    pub fn looking(&self, session: u64) -> Option<&Looking> {
        self.local.get(&session)
    }

    /// The sessions looking at a board, with what they look at.
    pub fn sessions(&self) -> impl Iterator<Item = (u64, &Looking)> {
        self.local.iter().map(|(id, l)| (*id, l))
    }

    /// Takes a peer's summary, received at `now`.
    pub fn heard(&mut self, summary: Summary, now: Instant) -> Received {
        if summary.node_id == self.node_id {
            return Received::Ours;
        }
        if self
            .peers
            .get(&summary.node_id)
            .is_some_and(|h| h.sent_at > summary.sent_at)
        {
            return Received::Stale;
        }
        self.peers.insert(
            summary.node_id,
            Heard {
                at: now,
                sent_at: summary.sent_at,
                boards: summary.boards,
            },
        );
        Received::Taken
    }

    /// Forgets the peers not heard from within the TTL; whether any was.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.peers.len();
        let ttl = self.ttl;
        self.peers.retain(|_, h| now.duration_since(h.at) <= ttl);
        self.peers.len() != before
    }

    /// This node's own sessions, per board: what it tells its peers.
    pub fn summary(&self) -> BTreeMap<BoardId, BoardView> {
        let mut boards: BTreeMap<BoardId, BoardView> = BTreeMap::new();
        for looking in self.local.values() {
            let view = boards.entry(looking.board).or_default();
            view.viewers.insert(looking.viewer.clone());
            if let Some(task) = looking.editing {
                view.editing
                    .entry(task)
                    .or_default()
                    .insert(looking.viewer.clone());
            }
        }
        boards
    }

    /// Every board's view: this node's sessions and its live peers'.
    fn merged(&self) -> HashMap<BoardId, BoardView> {
        let mut boards: HashMap<BoardId, BoardView> = self.summary().into_iter().collect();
        for heard in self.peers.values() {
            for (board, view) in &heard.boards {
                boards.entry(*board).or_default().merge(view);
            }
        }
        boards
    }

    /// One board's view, for a session that just announced it.
    pub fn view(&self, board: &BoardId) -> BoardView {
        self.merged().remove(board).unwrap_or_default()
    }

    /// The boards whose view changed since the last call, with their view
    /// now (empty once the last viewer left), in board order.
    pub fn changes(&mut self) -> Vec<(BoardId, BoardView)> {
        let mut now = self.merged();
        let mut changed = Vec::new();
        self.pushed.retain(|board, last| match now.remove(board) {
            Some(view) => {
                if view != *last {
                    changed.push((*board, view.clone()));
                    *last = view;
                }
                true
            }
            None => {
                changed.push((*board, BoardView::default()));
                false
            }
        });
        for (board, view) in now {
            changed.push((board, view.clone()));
            self.pushed.insert(board, view);
        }
        changed.sort_by_key(|(board, _)| *board);
        changed
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use uuid::Uuid;

    use super::*;
    use crate::presence::Viewer;
    use crate::task::TaskId;

    const TTL: Duration = Duration::from_secs(5);

    fn board(n: u128) -> BoardId {
        BoardId(Uuid::from_u128(n))
    }

    fn task(n: u128) -> TaskId {
        TaskId(Uuid::from_u128(1000 + n))
    }

    fn user(name: &str) -> Viewer {
        Viewer {
            id: format!("id-{name}"),
            name: name.into(),
        }
    }

    fn looking(name: &str, on: u128, editing: Option<u128>) -> Option<Looking> {
        Some(Looking {
            viewer: user(name),
            board: board(on),
            editing: editing.map(task),
        })
    }

    fn names(view: &BoardView) -> Vec<&str> {
        view.viewers.iter().map(|v| v.name.as_str()).collect()
    }

    fn summary(node_id: u64, sent_at: i64, boards: &[(u128, &[&str])]) -> Summary {
        Summary {
            node_id,
            sent_at,
            boards: boards
                .iter()
                .map(|(b, users)| {
                    (
                        board(*b),
                        BoardView {
                            viewers: users.iter().map(|u| user(u)).collect(),
                            editing: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_user_with_several_tabs_is_listed_once_and_every_open_card_is_named() {
        let mut presence = Presence::new(1, TTL);
        presence.look(1, looking("ana", 1, None));
        presence.look(2, looking("ana", 1, Some(5)));
        presence.look(3, looking("bo", 1, Some(5)));
        let view = presence.view(&board(1));
        assert_eq!(names(&view), ["ana", "bo"]);
        let editing: Vec<&str> = view.editing[&task(5)]
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(editing, ["ana", "bo"]);
    }

    #[test]
    fn a_board_is_pushed_when_its_view_changes_and_once_more_when_it_empties() {
        let mut presence = Presence::new(1, TTL);
        presence.look(1, looking("ana", 1, None));
        let first = presence.changes();
        assert_eq!(first.len(), 1);
        assert_eq!(names(&first[0].1), ["ana"]);
        assert!(presence.changes().is_empty(), "nothing new");
        // A second tab of the same user changes nothing anyone sees.
        presence.look(2, looking("ana", 1, None));
        assert!(presence.changes().is_empty());
        // Switching the second tab to board 2 adds her there.
        assert_eq!(presence.look(2, looking("ana", 2, None)), Some(board(1)));
        let moved = presence.changes();
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].0, board(2));
        presence.look(1, None);
        presence.look(2, None);
        let gone = presence.changes();
        assert_eq!(gone.len(), 2, "both boards are told they are empty");
        assert!(gone.iter().all(|(_, view)| view.is_empty()));
        assert!(presence.changes().is_empty(), "and then forgotten");
    }

    #[test]
    fn peers_users_are_merged_until_their_summary_outlives_the_ttl() {
        let start = Instant::now();
        let mut presence = Presence::new(1, TTL);
        presence.look(1, looking("ana", 1, None));
        assert_eq!(
            presence.heard(summary(3, 100, &[(1, &["bo"]), (2, &["cy"])]), start),
            Received::Taken
        );
        assert_eq!(names(&presence.view(&board(1))), ["ana", "bo"]);
        assert_eq!(names(&presence.view(&board(2))), ["cy"]);
        assert!(!presence.expire(start + TTL), "alive for the whole TTL");
        assert!(presence.expire(start + TTL + Duration::from_millis(1)));
        assert_eq!(names(&presence.view(&board(1))), ["ana"]);
        assert!(presence.view(&board(2)).is_empty());
    }

    #[test]
    fn a_summary_replaces_the_last_one_of_its_node_and_an_older_one_is_ignored() {
        let start = Instant::now();
        let mut presence = Presence::new(1, TTL);
        presence.heard(summary(2, 100, &[(1, &["bo"])]), start);
        assert_eq!(
            presence.heard(summary(2, 200, &[]), start),
            Received::Taken,
            "bo closed his tab"
        );
        assert!(presence.view(&board(1)).is_empty());
        assert_eq!(
            presence.heard(summary(2, 150, &[(1, &["bo"])]), start),
            Received::Stale,
            "a late or replayed summary does not bring him back"
        );
        assert!(presence.view(&board(1)).is_empty());
        assert_eq!(presence.heard(summary(1, 300, &[]), start), Received::Ours);
    }

    #[test]
    fn what_a_node_tells_its_peers_is_its_own_sessions_only() {
        let mut presence = Presence::new(1, TTL);
        presence.look(1, looking("ana", 1, Some(3)));
        presence.heard(summary(2, 1, &[(1, &["bo"])]), Instant::now());
        let mine = presence.summary();
        assert_eq!(mine.len(), 1);
        assert_eq!(names(&mine[&board(1)]), ["ana"]);
        assert_eq!(
            mine[&board(1)].editing[&task(3)],
            BTreeSet::from([user("ana")])
        );
    }
}
