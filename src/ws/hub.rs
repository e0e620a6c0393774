//! The hub: committed events in, one fan-out to every session. It owns the
//! session map and forwards; what it remembers and when it delivers is
//! [`Feed`](super::feed::Feed)'s. Reached through
//! [`HubHandle`](super::HubHandle).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use mysql_async::Pool;

use super::feed::{Feed, Published as Fed, Turn};
use super::{ClusterFrame, Deliver, Frame, Join, Joined, Leave, Recheck, Resync, SessionPort};
use crate::applier::{ApplierHandle, Published};
use crate::cluster::ClusterInfo;
use crate::db::queries;
use crate::metrics;

/// How often the cluster view is compared with the last one sent.
const CLUSTER_POLL: Duration = Duration::from_secs(1);

/// The actor: the sessions, the feed, and the last cluster frame.
pub(super) struct WsHub {
    sessions: HashMap<u64, SessionPort>,
    next_id: u64,
    feed: Feed,
    /// Events kept for sessions that join (the feed's capacity).
    backlog: usize,
    applier: ApplierHandle,
    pool: Pool,
    cluster: ClusterInfo,
    /// The last cluster frame and what it was made from, to send changes only.
    cluster_frame: Option<(String, Arc<str>)>,
    /// Watched so that sessions recheck their credentials when it changes.
    accounts: crate::accounts::AccountsCache,
}

impl WsHub {
    /// A hub keeping the last `backlog` events for sessions that join.
    pub(super) fn new(
        applier: ApplierHandle,
        pool: Pool,
        cluster: ClusterInfo,
        backlog: usize,
        accounts: crate::accounts::AccountsCache,
    ) -> WsHub {
        WsHub {
            sessions: HashMap::new(),
            next_id: 1,
            feed: Feed::new(backlog, Instant::now()),
            backlog,
            applier,
            pool,
            cluster,
            cluster_frame: None,
            accounts,
        }
    }

    /// Feeds the pending frames to every session, now or at the next turn.
    fn deliver(&mut self, ctx: &mut Context<Self>) {
        match self.feed.turn(self.sessions.len(), Instant::now()) {
            Turn::Idle => {}
            Turn::Later(wait) => {
                ctx.run_later(wait, |hub, ctx| {
                    hub.feed.turn_came();
                    hub.deliver(ctx);
                });
            }
            Turn::Now(frames) => self.broadcast(Deliver(frames), |p| &p.deliver),
        }
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
                hub.feed.prefill(last, events.iter().map(Frame::event));
            }
            tracing::debug!(
                last_seq = hub.feed.last_seq(),
                kept = hub.feed.kept(),
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
        let mut accounts = self.accounts.subscribe();
        let me = ctx.address();
        actix::spawn(async move {
            while accounts.changed().await.is_ok() && me.connected() {
                me.do_send(AccountsChanged);
            }
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct AccountsChanged;

impl Handler<AccountsChanged> for WsHub {
    type Result = ();
    fn handle(&mut self, _: AccountsChanged, _: &mut Context<Self>) {
        // Not `broadcast`: a session with a full mailbox is resynced by
        // the event fan-out, not for missing a recheck (its heartbeat
        // checks again within seconds).
        for port in self.sessions.values() {
            let _ = port.recheck.try_send(Recheck);
        }
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
        // Serialized once here for every session; repeats are not serialized.
        let fresh: Vec<Frame> = events
            .iter()
            .filter(|e| e.seq > self.feed.last_seq())
            .map(Frame::event)
            .collect();
        match self.feed.publish(fresh) {
            Fed::Nothing => return,
            Fed::InOrder => {}
            Fed::AfterGap { expected, got } => {
                tracing::warn!(
                    expected,
                    got,
                    "gap in the event feed; resyncing every session"
                );
                for port in self.sessions.values() {
                    port.resync.do_send(Resync);
                }
                self.sessions.clear();
            }
        }
        self.deliver(ctx);
    }
}

impl Handler<Join> for WsHub {
    type Result = MessageResult<Join>;

    fn handle(&mut self, Join { since, session }: Join, _: &mut Context<Self>) -> Self::Result {
        let id = self.next_id;
        self.next_id += 1;
        let last_seq = self.feed.last_seq();
        let backlog = self.feed.frames_after(since.unwrap_or(last_seq));
        let joined = Joined {
            id,
            last_seq,
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
