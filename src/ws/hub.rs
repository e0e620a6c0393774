//! The hub: committed events in, one fan-out to every session.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use mysql_async::Pool;

use super::{ClusterFrame, Deliver, Frame, Join, Joined, Leave, Resync, SessionPort};
use crate::api::ClusterInfo;
use crate::applier::{ApplierHandle, Published};
use crate::db::queries;
use crate::metrics;

/// How often the cluster view is compared with the last one sent.
const CLUSTER_POLL: Duration = Duration::from_secs(1);
/// Deliveries per second this node may make across all its sessions. Each
/// delivery costs a session a write (a system call); one per event at 200
/// events/s to 1,000 sockets (200,000 writes/s) saturated this 2-core
/// machine: delivery p99 ~100 ms, and writes queued behind the fan-out (p50
/// ~40 ms). So sessions are fed at most once per `sessions / budget`
/// seconds: an event that finds the last delivery older goes out at once,
/// later ones wait for the next turn and go together. A board or two are
/// fed immediately; 333 sessions on a node, every 25 ms (the figures this
/// gives are in the README, "Performance").
const DELIVERIES_PER_SECOND: u32 = 13_000;
/// However many sessions, no event waits longer than this for its turn.
const MAX_DELIVERY_INTERVAL: Duration = Duration::from_millis(50);

pub struct WsHub {
    sessions: HashMap<u64, SessionPort>,
    next_id: u64,
    /// The last seq committed and published.
    last_seq: u64,
    /// The most recent frames, contiguous, ending at `last_seq`: at most
    /// `backlog` of them. A client further behind reloads (`resync`).
    recent: VecDeque<Frame>,
    backlog: usize,
    applier: ApplierHandle,
    pool: Pool,
    cluster: ClusterInfo,
    /// The last cluster frame and what it was made from, to send changes only.
    cluster_frame: Option<(String, Arc<str>)>,
    /// Frames committed but not delivered yet (see [`DELIVERIES_PER_SECOND`]).
    pending: Vec<Frame>,
    last_delivery: Instant,
    delivery_scheduled: bool,
}

impl WsHub {
    pub fn new(applier: ApplierHandle, pool: Pool, cluster: ClusterInfo, backlog: usize) -> WsHub {
        WsHub {
            sessions: HashMap::new(),
            next_id: 1,
            last_seq: 0,
            recent: VecDeque::with_capacity(backlog.min(100_000)),
            backlog,
            applier,
            pool,
            cluster,
            cluster_frame: None,
            pending: Vec::new(),
            last_delivery: Instant::now(),
            delivery_scheduled: false,
        }
    }

    /// Feeds the pending frames to every session, now or at the next turn.
    fn deliver(&mut self, ctx: &mut Context<Self>) {
        if self.delivery_scheduled || self.pending.is_empty() {
            return;
        }
        let interval = (Duration::from_secs(1) * self.sessions.len() as u32
            / DELIVERIES_PER_SECOND)
            .min(MAX_DELIVERY_INTERVAL);
        let due = self.last_delivery + interval;
        let now = Instant::now();
        if now < due {
            self.delivery_scheduled = true;
            ctx.run_later(due - now, |hub, ctx| {
                hub.delivery_scheduled = false;
                hub.deliver(ctx);
            });
            return;
        }
        self.last_delivery = now;
        let frames: Arc<[Frame]> = std::mem::take(&mut self.pending).into();
        self.broadcast(Deliver(frames), |p| &p.deliver);
    }

    fn remember(&mut self, frame: Frame) {
        if self.recent.len() >= self.backlog {
            self.recent.pop_front();
        }
        self.last_seq = frame.seq;
        self.recent.push_back(frame);
    }

    /// Sends to every session with room; a session without room is behind
    /// and gets `resync` instead, and nothing more.
    fn broadcast<M>(&mut self, message: M, recipient: impl Fn(&SessionPort) -> &Recipient<M>)
    where
        M: Message<Result = ()> + Send + Clone + 'static,
    {
        self.sessions
            .retain(|_, port| match recipient(port).try_send(message.clone()) {
                Ok(()) => true,
                Err(SendError::Full(_)) => {
                    port.resync.do_send(Resync);
                    metrics::WS_RESYNCS.inc();
                    false
                }
                Err(SendError::Closed(_)) => false,
            });
    }

    /// Frames after `since`, if memory still holds all of them.
    fn frames_after(&self, since: u64) -> Option<Vec<Frame>> {
        if since >= self.last_seq {
            return Some(Vec::new());
        }
        let oldest = self.recent.front()?.seq;
        if oldest > since + 1 {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(|f| f.seq > since)
                .cloned()
                .collect(),
        )
    }

    fn refresh_cluster(&mut self, ctx: &mut Context<Self>) {
        let cluster = self.cluster.clone();
        ctx.spawn(
            async move { cluster.view().await.ok() }
                .into_actor(self)
                .map(|view, hub, _| {
                    let Some(view) = view else {
                        return;
                    };
                    let signature = view.signature();
                    let changed = hub
                        .cluster_frame
                        .as_ref()
                        .is_none_or(|(s, _)| *s != signature);
                    let mut json = serde_json::to_value(&view).unwrap_or_default();
                    json["type"] = "cluster".into();
                    let frame: Arc<str> = json.to_string().into();
                    // Kept fresh for sessions that join; sent to every
                    // session only when leader, roles or reachability change.
                    hub.cluster_frame = Some((signature, frame.clone()));
                    if changed {
                        hub.broadcast(ClusterFrame(frame), |p| &p.cluster);
                    }
                }),
        );
    }
}

impl Actor for WsHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Subscribe before reading the table, so no committed event falls
        // between the two: an event published meanwhile arrives after the
        // prefill and is dropped if the prefill already had it.
        let applier = self.applier.clone();
        let recipient = ctx.address().recipient();
        let pool = self.pool.clone();
        let backlog = self.backlog as u64;
        let prefill = async move {
            applier.subscribe(recipient).await.ok();
            let last = queries::last_seq(&pool).await.ok()?;
            let since = last.saturating_sub(backlog);
            let mut events = Vec::new();
            while let Ok(page) =
                queries::events_since(&pool, since + events.len() as u64, 1000).await
            {
                if page.is_empty() {
                    break;
                }
                events.extend(page);
            }
            Some((last, events))
        };
        ctx.wait(prefill.into_actor(self).map(|prefilled, hub, _| {
            if let Some((last, events)) = prefilled {
                for event in &events {
                    hub.remember(Frame::event(event));
                }
                hub.last_seq = hub.last_seq.max(last);
            }
            tracing::debug!(
                last_seq = hub.last_seq,
                kept = hub.recent.len(),
                "websocket hub ready"
            );
        }));
        ctx.run_interval(CLUSTER_POLL, |hub, ctx| hub.refresh_cluster(ctx));
        let mut watch = self.cluster.raft.watch();
        let me = ctx.address();
        actix::spawn(async move {
            while watch.changed().await.is_ok() {
                me.do_send(RefreshCluster);
            }
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct RefreshCluster;

impl Handler<RefreshCluster> for WsHub {
    type Result = ();
    fn handle(&mut self, _: RefreshCluster, ctx: &mut Context<Self>) {
        self.refresh_cluster(ctx);
    }
}

impl Handler<Published> for WsHub {
    type Result = ();

    fn handle(&mut self, Published(events): Published, ctx: &mut Context<Self>) {
        let fresh: Vec<Frame> = events
            .iter()
            .filter(|e| e.seq > self.last_seq)
            .map(Frame::event)
            .collect();
        let Some(first) = fresh.first() else {
            return;
        };
        if first.seq != self.last_seq + 1 {
            // Events went by unpublished (the applier resumed after a lost
            // COMMIT reply): nobody can be fed without a gap. Start over.
            tracing::warn!(
                expected = self.last_seq + 1,
                got = first.seq,
                "gap in the event feed; resyncing every session"
            );
            self.recent.clear();
            self.pending.clear();
            for port in self.sessions.values() {
                port.resync.do_send(Resync);
            }
            self.sessions.clear();
        }
        // Remembered at once, so a session that joins now gets them from
        // the backlog (and drops them when they arrive again).
        for frame in &fresh {
            self.remember(frame.clone());
        }
        self.pending.extend(fresh);
        self.deliver(ctx);
    }
}

impl Handler<Join> for WsHub {
    type Result = MessageResult<Join>;

    fn handle(&mut self, Join { since, session }: Join, _: &mut Context<Self>) -> Self::Result {
        let id = self.next_id;
        self.next_id += 1;
        let since = since.unwrap_or(self.last_seq);
        let backlog = self.frames_after(since);
        let joined = Joined {
            id,
            last_seq: self.last_seq,
            cluster: self.cluster_frame.as_ref().map(|(_, f)| f.clone()),
            backlog: backlog.clone().map(Arc::from),
        };
        // Too far behind: the session says `resync` and is not registered.
        if backlog.is_some() {
            self.sessions.insert(id, session);
        }
        MessageResult(joined)
    }
}

impl Handler<Leave> for WsHub {
    type Result = ();
    fn handle(&mut self, Leave(id): Leave, _: &mut Context<Self>) {
        self.sessions.remove(&id);
    }
}

/// Sessions currently fed (for tests and metrics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SessionCount;

impl Handler<SessionCount> for WsHub {
    type Result = usize;
    fn handle(&mut self, _: SessionCount, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}
