//! The presence hub: this node's sessions' announcements and its peers'
//! summaries in, `presence` frames out to the sessions of each board whose
//! view changed, and this node's summary out to its peers. What it knows
//! and decides is [`Presence`]'s; it owns the session ports and the clocks.
//! Reached through [`PresenceHandle`](super::PresenceHandle).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::gossip::Gossip;
use super::state::{Presence, Received};
use super::{Looking, PresenceFrame, Summary, GOSSIP_INTERVAL, PEER_TTL};
use crate::accounts::Role;
use crate::cluster::ClusterInfo;
use crate::projection::ProjectionCache;
use crate::time::Timestamp;

/// Changes that come together (a tab closing and another opening, a burst
/// of summaries) are merged and pushed once.
const SETTLE: Duration = Duration::from_millis(50);
/// At most one summary per this long to each peer, however busy the
/// sessions: a change is told within it, the heartbeat is every second.
const MIN_GOSSIP_SPACING: Duration = Duration::from_millis(250);

/// Where a session that announced a board is sent its frames.
pub(super) struct Port {
    pub frames: Recipient<PresenceFrame>,
    /// The user's site role, for the board check (`Catalog::role`).
    pub site: Role,
}

pub(super) struct PresenceHub {
    node_id: u64,
    /// Who looks at what, here and on the peers, and what was pushed.
    state: Presence,
    /// The sessions looking at a board.
    ports: HashMap<u64, Port>,
    /// Who is on which board, as committed: a session whose user left a
    /// board stops hearing of it and stops showing on it.
    rows: ProjectionCache,
    /// Where the members serve, asked at each heartbeat.
    cluster: ClusterInfo,
    /// Signs and posts; shared with the blocking posts under way.
    gossip: Arc<Gossip>,
    /// The other members and where they serve, from the last cluster view.
    peer_urls: Vec<(u64, String)>,
    /// A cluster view is being asked for: a slow one is not asked again
    /// on top of it.
    viewing: bool,
    /// Peers a post is under way to: the next one waits for it.
    posting: HashSet<u64>,
    /// Peers whose last post that arrived was an empty summary: they know
    /// this node has nobody, and are not told again until it has.
    told_empty: HashSet<u64>,
    /// When the last summary was made, for [`MIN_GOSSIP_SPACING`].
    last_gossip: Instant,
    /// The `sent_at` of the last summary made: the next is later, even if
    /// the wall clock stepped back.
    last_sent_at: i64,
    /// A push of the changed boards is due within [`SETTLE`].
    flush_scheduled: bool,
    /// A summary to the peers is due before the next heartbeat.
    gossip_scheduled: bool,
}

impl PresenceHub {
    pub(super) fn new(
        node_id: u64,
        rows: ProjectionCache,
        cluster: ClusterInfo,
        gossip: Gossip,
    ) -> PresenceHub {
        PresenceHub {
            node_id,
            state: Presence::new(node_id, PEER_TTL),
            ports: HashMap::new(),
            rows,
            cluster,
            gossip: Arc::new(gossip),
            peer_urls: Vec::new(),
            viewing: false,
            posting: HashSet::new(),
            told_empty: HashSet::new(),
            last_gossip: Instant::now(),
            last_sent_at: 0,
            flush_scheduled: false,
            gossip_scheduled: false,
        }
    }

    /// Something changed: push the boards' views after [`SETTLE`].
    fn flush_soon(&mut self, ctx: &mut Context<Self>) {
        if self.flush_scheduled {
            return;
        }
        self.flush_scheduled = true;
        ctx.run_later(SETTLE, |hub, _| {
            hub.flush_scheduled = false;
            hub.flush();
        });
    }

    /// A local session changed: tell the peers soon, not waiting for the
    /// heartbeat.
    fn gossip_soon(&mut self, ctx: &mut Context<Self>) {
        if self.gossip_scheduled {
            return;
        }
        self.gossip_scheduled = true;
        let wait = MIN_GOSSIP_SPACING
            .saturating_sub(self.last_gossip.elapsed())
            .max(SETTLE);
        ctx.run_later(wait, |hub, ctx| {
            hub.gossip_scheduled = false;
            hub.gossip(ctx);
        });
    }

    /// Drops the sessions whose user is no longer on the board they look at.
    fn recheck_access(&mut self) -> bool {
        let catalog = self.rows.catalog();
        let gone: Vec<u64> = self
            .state
            .sessions()
            .filter(|(id, looking)| {
                self.ports.get(id).is_none_or(|port| {
                    catalog
                        .role(&looking.board, &looking.viewer.id, port.site)
                        .is_none()
                })
            })
            .map(|(id, _)| id)
            .collect();
        for id in &gone {
            self.state.look(*id, None);
            self.ports.remove(id);
        }
        !gone.is_empty()
    }

    /// Pushes each board whose view changed to the sessions looking at it.
    fn flush(&mut self) {
        self.recheck_access();
        let changes = self.state.changes();
        if changes.is_empty() {
            return;
        }
        let frames: HashMap<_, _> = changes
            .iter()
            .map(|(board, view)| (*board, PresenceFrame(view.frame(*board))))
            .collect();
        let mut closed = Vec::new();
        for (id, looking) in self.state.sessions() {
            let (Some(frame), Some(port)) = (frames.get(&looking.board), self.ports.get(&id))
            else {
                continue;
            };
            // A full mailbox is a session already too far behind, which the
            // event hub resyncs; a closed one is a session that ended.
            if let Err(SendError::Closed(_)) = port.frames.try_send(frame.clone()) {
                closed.push(id);
            }
        }
        for id in closed {
            self.state.look(id, None);
            self.ports.remove(&id);
        }
    }

    /// Posts this node's summary to every peer with nothing under way to it.
    fn gossip(&mut self, ctx: &mut Context<Self>) {
        self.last_gossip = Instant::now();
        let boards = self.state.summary();
        let empty = boards.is_empty();
        if empty
            && self
                .peer_urls
                .iter()
                .all(|(id, _)| self.told_empty.contains(id))
        {
            return;
        }
        self.last_sent_at = Timestamp::now().millis().max(self.last_sent_at + 1);
        let summary = Summary {
            node_id: self.node_id,
            sent_at: self.last_sent_at,
            boards,
        };
        // No secret: a node of one, with nobody to tell.
        let Some(signed) = self.gossip.sign(summary) else {
            return;
        };
        for (id, url) in self.peer_urls.clone() {
            if self.posting.contains(&id) || (empty && self.told_empty.contains(&id)) {
                continue;
            }
            self.posting.insert(id);
            let gossip = self.gossip.clone();
            let signed = signed.clone();
            let post = async move {
                tokio::task::spawn_blocking(move || gossip.post(&url, &signed))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|posted| posted.map_err(|e| e.to_string()))
            };
            ctx.spawn(post.into_actor(self).map(move |posted, hub, _| {
                hub.posting.remove(&id);
                match posted {
                    Ok(()) if empty => {
                        hub.told_empty.insert(id);
                    }
                    Ok(()) => {
                        hub.told_empty.remove(&id);
                    }
                    // A peer that is down misses nothing: when it is back
                    // it hears the next heartbeat.
                    Err(error) => {
                        hub.told_empty.remove(&id);
                        tracing::debug!(peer = id, %error, "presence not told");
                    }
                }
            }));
        }
    }

    /// The heartbeat: forget silent peers, recheck access, learn where the
    /// members serve, and tell them.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.state.expire(Instant::now()) | self.recheck_access() {
            self.flush();
        }
        if self.viewing {
            self.gossip(ctx);
            return;
        }
        self.viewing = true;
        let cluster = self.cluster.clone();
        let me = self.node_id;
        ctx.spawn(
            async move { cluster.view().await.ok() }
                .into_actor(self)
                .map(move |view, hub, ctx| {
                    hub.viewing = false;
                    if let Some(view) = view {
                        hub.peer_urls = view
                            .members
                            .into_iter()
                            .filter(|m| m.id != me)
                            .filter_map(|m| Some((m.id, m.url?)))
                            .collect();
                    }
                    hub.gossip(ctx);
                }),
        );
    }
}

impl Actor for PresenceHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(GOSSIP_INTERVAL, |hub, ctx| hub.tick(ctx));
    }
}

/// A session looks at a board (or, `looking: None`, at none: it left the
/// board, or ended).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Look {
    pub session: u64,
    pub looking: Option<(Looking, Port)>,
}

impl Handler<Look> for PresenceHub {
    type Result = ();

    fn handle(&mut self, Look { session, looking }: Look, ctx: &mut Context<Self>) {
        match looking {
            Some((looking, port)) => {
                let board = looking.board;
                self.state.look(session, Some(looking));
                // The session hears its board's view at once, itself
                // included, even when nobody else's view changes.
                let view = self.state.view(&board);
                let _ = port.frames.try_send(PresenceFrame(view.frame(board)));
                self.ports.insert(session, port);
            }
            None => {
                if self.state.look(session, None).is_none() {
                    return;
                }
                self.ports.remove(&session);
            }
        }
        self.flush_soon(ctx);
        self.gossip_soon(ctx);
    }
}

/// A peer's summary, proven (`api::internal`).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Heard(pub Summary);

impl Handler<Heard> for PresenceHub {
    type Result = ();

    fn handle(&mut self, Heard(summary): Heard, ctx: &mut Context<Self>) {
        let from = summary.node_id;
        match self.state.heard(summary, Instant::now()) {
            Received::Taken => self.flush_soon(ctx),
            // Reordered posts: the newer one is already here.
            Received::Stale => {}
            Received::Ours => {
                tracing::warn!(node = from, "a presence summary from this node itself");
            }
        }
    }
}
