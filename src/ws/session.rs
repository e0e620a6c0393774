//! One WebSocket connection. The only module that uses `actix-web-actors`
//! (deprecated upstream in favour of `actix-ws`): swapping it means
//! rewriting this file against the messages in [`super`]. What the client
//! sends reaches it through [`super::limit::FrameGuard`], which refuses an
//! oversized frame or message at its header. Besides `ping`, a client may
//! say what it looks at (`presence`, see [`crate::presence`]); the session
//! checks it against the catalog before the presence hub hears of it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason, WebsocketContext};
use serde::Deserialize;
use serde_json::json;

use super::limit::{self, FrameGuard, Refused};
use super::{ClusterFrame, Deliver, Frame, HubHandle, Recheck, Resync, SessionPort, WsError};
use crate::accounts::{AccountsCache, Principal, Via};
use crate::metrics;
use crate::presence::{Announcement, Looking, PresenceFrame, PresenceHandle, Viewer};
use crate::time::Timestamp;

/// Batches queued for a session before it counts as too slow: past this the
/// hub stops feeding it and it is told to resync.
const MAILBOX: usize = 256;
const HEARTBEAT: Duration = Duration::from_secs(4);
/// No frame from the client for this long (not even a pong): it is gone.
/// (A client that stops reading altogether is dropped by the kernel: the
/// HTTP server sets `TCP_USER_TIMEOUT` on every connection.)
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// A client resuming after a seq this node has not reached yet (it was
/// served by a node further ahead) waits this long for this node to get
/// there; then it is told to resync.
const AHEAD_GRACE: Duration = Duration::from_secs(3);
/// The close code that means "reload and reconnect with a new `since`".
pub const RESYNC_CLOSE_CODE: u16 = 4000;
/// The close code that means "the credential this socket was opened with
/// has ended: sign in again" (the reason says how it ended).
pub const SIGNED_OUT_CLOSE_CODE: u16 = 4001;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    since: Option<u64>,
    /// A personal token, for clients that cannot set a header; checked by
    /// the api's auth middleware before this route runs.
    #[serde(default, rename = "token")]
    _token: Option<String>,
}

/// `GET /ws?since=SEQ`: upgrades to a session.
pub async fn route(
    req: HttpRequest,
    stream: web::Payload,
    query: web::Query<WsQuery>,
    hub: web::Data<HubHandle>,
    node: web::Data<NodeId>,
) -> Result<HttpResponse, WsError> {
    let refused = Rc::new(Cell::new(None));
    // What the auth middleware admitted the request with; with
    // `auth = "off"` there is none and nothing ends.
    let principal = {
        use actix_web::HttpMessage;
        req.extensions().get::<Principal>().cloned()
    };
    let credential = principal.as_ref().map_or(Via::Open, |p| p.via.clone());
    let session = WsSession {
        id: None,
        hub: hub.get_ref().clone(),
        node_id: node.0,
        since: query.since,
        sent_seq: 0,
        last_heard: Instant::now(),
        waiting_for: None,
        refused: refused.clone(),
        credential,
        accounts: hub.accounts().clone(),
        principal,
        rows: hub.rows().clone(),
        presence: req
            .app_data::<web::Data<crate::api::AppState>>()
            .map(|state| state.presence.clone()),
    };
    ws::WsResponseBuilder::new(session, &req, FrameGuard::new(stream, refused))
        .frame_size(limit::MAX_FRAME as usize)
        .start()
        .map_err(WsError::Upgrade)
}

/// This node's id, for `hello`.
#[derive(Clone, Copy)]
pub struct NodeId(pub u64);

struct WsSession {
    id: Option<u64>,
    hub: HubHandle,
    node_id: u64,
    since: Option<u64>,
    /// The last seq written to the client: events at or below are repeats.
    sent_seq: u64,
    last_heard: Instant,
    /// Set while the client's `since` is beyond what this node has applied.
    waiting_for: Option<u64>,
    /// Why the frame guard ended the client's stream, if it did.
    refused: Rc<Cell<Option<Refused>>>,
    /// The session cookie or token the socket was opened with.
    credential: Via,
    /// What the credential is checked against when the accounts change.
    accounts: AccountsCache,
    /// Who the socket is for (`None`: `auth = "off"`, everything).
    principal: Option<Principal>,
    /// The catalog: which boards' events this session may see.
    rows: crate::projection::ProjectionCache,
    /// Where this session says what it looks at (`None`: an app built
    /// without one, in tests).
    presence: Option<PresenceHandle>,
}

impl WsSession {
    fn send_frames(&mut self, frames: &[Frame], ctx: &mut WebsocketContext<Self>) {
        let catalog = self.rows.catalog();
        for frame in frames {
            if frame.seq <= self.sent_seq {
                continue;
            }
            if frame.seq != self.sent_seq + 1 {
                // The hub delivers contiguous batches; a hole means a bug,
                // and the client's only safe move is to reload.
                tracing::error!(
                    expected = self.sent_seq + 1,
                    got = frame.seq,
                    "gap in a session's feed"
                );
                self.resync(ctx);
                return;
            }
            let visible = match (&self.principal, frame.board) {
                // A notification is its user's alone.
                _ if frame.recipient.is_some() => self
                    .principal
                    .as_ref()
                    .is_some_and(|who| frame.recipient.as_deref() == Some(who.actor.id.as_str())),
                // A webhook's events are its board admins' alone.
                (Some(who), Some(board)) if frame.admins_only => {
                    catalog.role(&board, &who.actor.id, who.role)
                        == Some(crate::task::BoardRole::Admin)
                }
                (Some(who), Some(board)) => {
                    catalog.role(&board, &who.actor.id, who.role).is_some()
                        || frame.member.as_deref() == Some(who.actor.id.as_str())
                }
                _ => true,
            };
            if visible {
                ctx.text(&*frame.json);
            } else {
                ctx.text(Frame::hidden(frame.seq));
            }
            self.sent_seq = frame.seq;
            metrics::WS_EVENTS_SENT.inc();
        }
        if self
            .waiting_for
            .is_some_and(|since| frames.last().is_some_and(|f| f.seq >= since))
        {
            self.waiting_for = None;
        }
    }

    /// Closes the socket if its credential has ended (logged out, revoked,
    /// disabled, password changed, expired); whether it did.
    fn close_if_signed_out(&mut self, ctx: &mut WebsocketContext<Self>) -> bool {
        // Accounts not loaded (start-up, a catch-up replacing them): no
        // verdict yet; the next change or heartbeat decides.
        let Some(accounts) = self.accounts.get() else {
            return false;
        };
        let Err(ended) = accounts.credential(&self.credential, Timestamp::now()) else {
            return false;
        };
        ctx.text(json!({ "type": "signed_out", "reason": ended.as_str() }).to_string());
        ctx.close(Some(CloseReason {
            code: CloseCode::Other(SIGNED_OUT_CLOSE_CODE),
            description: Some(ended.reason().into()),
        }));
        ctx.stop();
        true
    }

    /// A `presence` frame from the client: checked, then told to the
    /// presence hub. A board the user is not on is refused with the words
    /// a board that does not exist gets, so the answer tells nothing.
    fn announce(&mut self, text: &str, ctx: &mut WebsocketContext<Self>) {
        let (Some(presence), Some(id)) = (&self.presence, self.id) else {
            return;
        };
        let refuse = |ctx: &mut WebsocketContext<Self>, message: String| {
            ctx.text(
                json!({ "type": "error", "code": "presence_refused", "message": message })
                    .to_string(),
            );
        };
        let announcement = match serde_json::from_str::<Announcement>(text) {
            Ok(announcement) => announcement,
            Err(e) => {
                return refuse(
                    ctx,
                    format!(
                        "a presence frame is {{\"type\":\"presence\",\"board_id\":UUID|null,\"editing\":UUID|null}}: {e}"
                    ),
                )
            }
        };
        // Presence names people: a service token or `auth = "off"` has none.
        let Some(who) = self.principal.as_ref().filter(|p| p.user_id.is_some()) else {
            return refuse(ctx, "presence needs a signed-in user".into());
        };
        let Some(board) = announcement.board_id else {
            presence.look_away(id);
            return;
        };
        if self
            .rows
            .catalog()
            .role(&board, &who.actor.id, who.role)
            .is_none()
        {
            presence.look_away(id);
            return refuse(ctx, format!("no board {board}"));
        }
        // A card known to be on another board is a client's mistake; one
        // not held in memory is taken as it is (it names only a card id,
        // and only to the board's members).
        if let Some(task) = announcement.editing {
            if self.rows.get(&task).is_some_and(|t| t.board_id != board) {
                return refuse(ctx, format!("card {task} is not on board {board}"));
            }
        }
        let looking = Looking {
            viewer: Viewer {
                id: who.actor.id.clone(),
                name: who.actor.name.clone(),
            },
            board,
            editing: announcement.editing,
        };
        presence.look(id, looking, who.role, ctx.address().recipient());
    }

    fn resync(&mut self, ctx: &mut WebsocketContext<Self>) {
        ctx.text(json!({ "type": "resync" }).to_string());
        ctx.close(Some(CloseReason {
            code: CloseCode::Other(RESYNC_CLOSE_CODE),
            description: Some("resync: reload and reconnect with since".into()),
        }));
        ctx.stop();
    }
}

impl Actor for WsSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::WS_SESSIONS.inc();
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(HEARTBEAT, |session, ctx| {
            if session.last_heard.elapsed() > CLIENT_TIMEOUT {
                ctx.stop();
            } else if !session.close_if_signed_out(ctx) {
                ctx.ping(b"");
            }
        });
        let me = ctx.address();
        let port = SessionPort {
            deliver: me.clone().recipient(),
            resync: me.clone().recipient(),
            cluster: me.clone().recipient(),
            recheck: me.recipient(),
        };
        // Nothing else is handled until the hub has answered: `hello` and
        // the backlog go out before any live event.
        let hub = self.hub.clone();
        let since = self.since;
        let join = async move { hub.join(since, port).await };
        ctx.wait(join.into_actor(self).map(|joined, session, ctx| {
            let Ok(joined) = joined else {
                ctx.stop();
                return;
            };
            session.id = Some(joined.id);
            session.sent_seq = session.since.unwrap_or(joined.last_seq);
            // A `since` past this node's last seq is either a client served by
            // a node further ahead (this one will get there) or a made-up
            // number: give it a moment, then tell it to reload.
            if let Some(since) = session.since.filter(|s| *s > joined.last_seq) {
                session.waiting_for = Some(since);
                ctx.run_later(AHEAD_GRACE, |session, ctx| {
                    if session.waiting_for.is_some() {
                        session.resync(ctx);
                    }
                });
            }
            ctx.text(
                json!({ "type": "hello", "node_id": session.node_id, "seq": joined.last_seq })
                    .to_string(),
            );
            if let Some(cluster) = &joined.cluster {
                ctx.text(&**cluster);
            }
            match joined.backlog {
                Some(frames) => session.send_frames(&frames, ctx),
                None => session.resync(ctx),
            }
            // An account change applied between the auth check and the
            // join reached no recheck of this session.
            session.close_if_signed_out(ctx);
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::WS_SESSIONS.dec();
        if let Some(id) = self.id {
            self.hub.leave(id);
            if let Some(presence) = &self.presence {
                presence.look_away(id);
            }
        }
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();
    fn handle(&mut self, Deliver(frames): Deliver, ctx: &mut Self::Context) {
        self.send_frames(&frames, ctx);
    }
}

impl Handler<Resync> for WsSession {
    type Result = ();
    fn handle(&mut self, _: Resync, ctx: &mut Self::Context) {
        self.resync(ctx);
    }
}

impl Handler<Recheck> for WsSession {
    type Result = ();
    fn handle(&mut self, _: Recheck, ctx: &mut Self::Context) {
        self.close_if_signed_out(ctx);
    }
}

impl Handler<PresenceFrame> for WsSession {
    type Result = ();
    fn handle(&mut self, PresenceFrame(frame): PresenceFrame, ctx: &mut Self::Context) {
        ctx.text(&*frame);
    }
}

impl Handler<ClusterFrame> for WsSession {
    type Result = ();
    fn handle(&mut self, ClusterFrame(frame): ClusterFrame, ctx: &mut Self::Context) {
        ctx.text(&*frame);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let Ok(message) = message else {
            // The frame guard ended the stream: say why (1009, too big).
            if let Some(refused) = self.refused.get() {
                metrics::WS_REFUSED
                    .with_label_values(&[refused.reason()])
                    .inc();
                ctx.close(Some(CloseReason {
                    code: CloseCode::Size,
                    description: Some(format!(
                        "{}: at most {} bytes per frame and per message",
                        refused.reason(),
                        limit::MAX_FRAME
                    )),
                }));
            }
            ctx.stop();
            return;
        };
        self.last_heard = Instant::now();
        match message {
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_string));
                match kind.as_deref() {
                    Some("ping") => ctx.text(json!({ "type": "pong" }).to_string()),
                    Some("presence") => self.announce(&text, ctx),
                    // Anything else is not part of the protocol; ignored,
                    // as before there was more than `ping`.
                    _ => {}
                }
            }
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            // Pongs only prove liveness; the protocol has no binary frames.
            ws::Message::Pong(_)
            | ws::Message::Binary(_)
            | ws::Message::Continuation(_)
            | ws::Message::Nop => {}
        }
    }
}
