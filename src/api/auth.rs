//! Accounts over HTTP: who a request is ([`guard`], the middleware every
//! request passes), logging in and out (`/api/session`), users
//! (`/api/users`) and personal tokens (`/api/tokens`).
//!
//! With `auth = "on"` a request's credentials are, in order: on the few
//! routes peers use, a proof of the cluster secret; the user a trusted
//! proxy names (`auth_proxy_header`, believed only from
//! `auth_proxy_trusted` addresses); a bearer token (the `api_token`
//! service token, or a personal token); the session cookie; `?token=` on
//! `/ws`. They are checked against the accounts every node
//! holds in memory (no MySQL round trip); the route's [`Access`] decides.
//! Account changes are proposed through the Raft log like task changes,
//! with passwords hashed (Argon2id) and secrets drawn here, before
//! proposing: the log and the tables hold only hashes.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::request::{self, Consistency};
use super::AppState;
use crate::accounts::access::{self, Denial, Throttle, CSRF_HEADER};
use crate::accounts::{
    self, validate, Access, AccountOutcome, AccountRejection, NewSession, NewToken, NewUser,
    Principal, Role, UserUpdate, Via,
};
use crate::task::{Command, Op, Outcome};
use crate::time::Timestamp;

/// How long a session lasts from login.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The failed-login throttle of this node.
#[derive(Default)]
pub struct LoginThrottle(Mutex<Throttle>);

/// The access a request needs: its route's, or open (board files, 404s,
/// 405s: they touch nothing).
fn access_of(req: &ServiceRequest) -> Access {
    super::route_of(req.method(), req.path()).map_or(Access::Open, |route| route.access)
}

/// Who the request is (`Ok(None)`: no credentials at all); presented
/// credentials that are not good are `Err`.
fn identify(
    req: &ServiceRequest,
    state: &AppState,
    access: Access,
) -> Result<Option<Principal>, ApiError> {
    let now = Timestamp::now();
    let accounts = || {
        state
            .accounts
            .get()
            .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))
    };
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    // Peers first: a joining node may also send the api_token, but what it
    // may do is bounded by being a peer (itself only).
    if access.admits_peers() {
        if let (Some(node), Some(time), Some(proof)) = (
            header("x-taskraft-node"),
            header("x-taskraft-peer-time"),
            header("x-taskraft-peer-proof"),
        ) {
            let node_id: u64 = node.parse().map_err(|_| ApiError::Unauthenticated)?;
            let time: i64 = time.parse().map_err(|_| ApiError::Unauthenticated)?;
            let good = state.peer_auth.check_request(
                node_id,
                req.method().as_str(),
                req.path(),
                time,
                proof,
                now.0 / 1000,
            );
            return if good {
                Ok(Some(Principal::peer(node_id)))
            } else {
                Err(ApiError::Unauthenticated)
            };
        }
    }
    if let Some(proxy) = &state.auth_proxy {
        let peer = req.peer_addr().map(|a| a.ip());
        if let Some(name) = proxy.vouched(peer, header(proxy.header.as_str())) {
            // The proxy has authenticated the person; the accounts say
            // whether that user exists, is enabled, and what they may do.
            let accounts = accounts()?;
            let user = validate::username(name)
                .ok()
                .and_then(|name| accounts.user_by_name(&name))
                .filter(|u| !u.disabled)
                .ok_or(ApiError::Unauthenticated)?;
            return Ok(Some(Principal {
                actor: user.actor(),
                user_id: Some(user.id),
                role: user.role,
                via: Via::Proxy {
                    user_id: user.id,
                    csrf: accounts::proxy::csrf_token(&user.password_hash),
                },
            }));
        }
    }
    if let Some(auth) = header(header::AUTHORIZATION.as_str()) {
        let presented = auth.strip_prefix("Bearer ").unwrap_or("").trim();
        return bearer(state.api_token.as_deref(), presented, now, accounts).map(Some);
    }
    if let Some(secret) = header(header::COOKIE.as_str()).and_then(access::session_cookie) {
        let hash = accounts::secret_hash(secret);
        let accounts = accounts()?;
        let user = accounts
            .session_user(&hash, now)
            .ok_or(ApiError::Unauthenticated)?;
        return Ok(Some(Principal {
            actor: user.actor(),
            user_id: Some(user.id),
            role: user.role,
            via: Via::Session {
                hash,
                csrf: accounts::csrf_token(secret),
            },
        }));
    }
    if req.path() == "/ws" {
        let token =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("token").cloned());
        if let Some(token) = token {
            return bearer(state.api_token.as_deref(), &token, now, accounts).map(Some);
        }
    }
    Ok(None)
}

/// Who a bearer token is: the configured service `api_token`, known from
/// the settings alone, or a personal token, looked up in the accounts. Only
/// the latter waits for them: a node that has not loaded its accounts yet
/// (starting, or catching up from a peer's database) answers the service
/// token (the lab's and operators' scripts', the preStop hook's) at once,
/// and a personal token 503 `no_leader` (retryable).
fn bearer(
    api_token: Option<&str>,
    presented: &str,
    now: Timestamp,
    accounts: impl FnOnce() -> Result<std::sync::Arc<accounts::Accounts>, ApiError>,
) -> Result<Principal, ApiError> {
    if let Some(service) = api_token {
        if access::constant_time_eq(presented.as_bytes(), service.as_bytes()) {
            return Ok(Principal::service());
        }
    }
    let accounts = accounts()?;
    let (token, user) = accounts
        .token_user(&accounts::secret_hash(presented), now)
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Principal {
        actor: user.actor(),
        user_id: Some(user.id),
        role: user.role,
        via: Via::Token { id: token.id },
    })
}

/// The middleware: finds who the request is, refuses what its route does
/// not allow them, and leaves the [`Principal`] in the request for the
/// handler (the actor it stamps on commands).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let access = access_of(&req);
    if state.auth
        && state.accounts.get().is_none()
        && presents_credential(&req, &state)
        && !presents_service_token(&req, &state)
    {
        // Started a moment ago (or catching up from a peer): the accounts
        // are on their way. Waiting for them beats a 503 to a signed-in
        // page that has just failed over here; past the wait, 503
        // `no_leader` (retryable) as before.
        state.accounts.loaded(ACCOUNTS_WAIT).await;
    }
    let verdict = if state.auth {
        match check(&req, &state, access) {
            // A credential this node does not know may have been committed
            // a moment ago through another node (a login there, then the
            // page fails over here): catch up with the log once (ReadIndex)
            // and decide again, so a session works on every node as soon
            // as its login is answered.
            Err(ApiError::Unauthenticated) if presents_credential(&req, &state) => {
                match state.raft.read_barrier().await {
                    Ok(()) => check(&req, &state, access),
                    Err(_) => Err(ApiError::Unauthenticated),
                }
            }
            verdict => verdict,
        }
    } else {
        legacy(&req, &state, access)
    };
    match verdict {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(e) => {
            let (req, _) = req.into_parts();
            let response = actix_web::ResponseError::error_response(&e);
            Ok(ServiceResponse::new(req, response).map_into_right_body())
        }
    }
}

/// How long a request with credentials waits for a starting node's
/// accounts.
const ACCOUNTS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether the request's bearer token is the configured `api_token` (which
/// needs no accounts, see [`bearer`]).
fn presents_service_token(req: &ServiceRequest, state: &AppState) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    matches!((presented, &state.api_token), (Some(p), Some(t)) if access::constant_time_eq(p.as_bytes(), t.as_bytes()))
}

/// Whether the request carries a session cookie, a token or a proxy's
/// header at all.
fn presents_credential(req: &ServiceRequest, state: &AppState) -> bool {
    state
        .auth_proxy
        .as_ref()
        .is_some_and(|proxy| req.headers().contains_key(proxy.header.as_str()))
        || req.headers().contains_key(header::AUTHORIZATION)
        || req
            .headers()
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(access::session_cookie)
            .is_some()
        || req.query_string().contains("token=")
}

fn check(req: &ServiceRequest, state: &AppState, access: Access) -> Result<Principal, ApiError> {
    if access.least_role().is_none() {
        // Open routes still see who is signed in (GET /api/session is not
        // open, but POST is; a login replaces any session).
        let who = identify(req, state, access).ok().flatten();
        return Ok(who.unwrap_or_else(|| Principal {
            actor: accounts::Actor::anonymous(),
            user_id: None,
            role: Role::Viewer,
            via: Via::Open,
        }));
    }
    let principal = identify(req, state, access)?;
    let csrf = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match access::decide(access, principal.as_ref(), req.method().as_str(), csrf) {
        Ok(()) => Ok(principal.expect("decide admits no one without credentials here")),
        Err(Denial::Unauthenticated) => Err(ApiError::Unauthenticated),
        Err(Denial::CsrfFailed) => Err(ApiError::CsrfFailed),
        Err(Denial::Forbidden) => Err(ApiError::Forbidden(format!(
            "{} {} needs the {} role",
            req.method(),
            req.path(),
            access.least_role().map_or("peer", Role::as_str)
        ))),
    }
}

/// `auth = "off"`: everything is open, except that with an `api_token`
/// the routes that change tasks or the cluster need it (as before
/// accounts existed).
fn legacy(req: &ServiceRequest, state: &AppState, access: Access) -> Result<Principal, ApiError> {
    let needs_token = matches!(access, Access::Member | Access::Admin | Access::AdminOrPeer);
    if let (true, Some(token)) = (needs_token, &state.api_token) {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !access::constant_time_eq(presented.as_bytes(), token.as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(Principal::open())
}

/// The principal the middleware left in the request.
pub fn principal(req: &HttpRequest) -> Principal {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::open)
}

fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// Whether the request came over TLS (the `Secure` cookie flag). TLS is
/// not served yet; this is where it will say so.
pub(super) fn over_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Proposes an account command stamped with the request's actor; the
/// outcome once this node has applied it.
async fn propose(state: &AppState, req: &HttpRequest, op: Op) -> Result<AccountOutcome, ApiError> {
    propose_as(state, principal(req).actor, op).await
}

/// [`propose`] with the given actor.
pub(super) async fn propose_as(
    state: &AppState,
    actor: accounts::Actor,
    op: Op,
) -> Result<AccountOutcome, ApiError> {
    let command = Command {
        request_id: crate::task::new_request_id(),
        idempotency: None,
        at: Timestamp::now(),
        actor,
        op,
    };
    match state.raft.propose(command).await {
        Ok(applied) => match applied.outcome {
            Outcome::Account { account } => Ok(account),
            other => Err(ApiError::Internal(format!(
                "an account command came to {other:?}"
            ))),
        },
        Err(e @ crate::raft::ConsensusError::Timeout(_)) => Err(ApiError::WriteTimeout(e)),
        Err(e) => Err(e.into()),
    }
}

impl From<AccountRejection> for ApiError {
    fn from(rejection: AccountRejection) -> ApiError {
        match rejection {
            AccountRejection::UsernameTaken { username } => ApiError::Conflict {
                code: "username_taken",
                message: format!("the user name `{username}` is taken"),
            },
            AccountRejection::IdTaken { id } => ApiError::Conflict {
                code: "id_taken",
                message: format!("id {id} is in use"),
            },
            AccountRejection::UserNotFound { id } => ApiError::NotFound(format!("no user {id}")),
            AccountRejection::UserDisabled { .. } => ApiError::InvalidCredentials,
            AccountRejection::TokenNotFound { id } => ApiError::NotFound(format!("no token {id}")),
            AccountRejection::SessionNotFound => ApiError::Unauthenticated,
            AccountRejection::HasUsers => ApiError::Conflict {
                code: "has_users",
                message: "the cluster has users already".into(),
            },
            AccountRejection::LastAdmin => ApiError::Conflict {
                code: "last_admin",
                message: "the last enabled admin cannot be demoted or disabled".into(),
            },
        }
    }
}

pub(super) fn outcome_user(outcome: AccountOutcome) -> Result<accounts::UserView, ApiError> {
    match outcome {
        AccountOutcome::User { user } | AccountOutcome::Session { user } => Ok(user),
        AccountOutcome::Rejected { rejection } => Err(rejection.into()),
        other => Err(ApiError::Internal(format!("unexpected {other:?}"))),
    }
}

/// Argon2 off the HTTP worker.
pub(super) async fn hash(password: String) -> Result<String, ApiError> {
    web::block(move || accounts::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/session`: logs in.
pub async fn login(
    state: web::Data<AppState>,
    throttle: web::Data<LoginThrottle>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: LoginBody = request::from_json(request::json_body(&req, payload).await?)?;
    let name = validate::username(&body.username)?;
    if body.password.len() > validate::PASSWORD_MAX {
        return Err(ApiError::InvalidCredentials);
    }
    let ip = client_ip(&req);
    throttle
        .0
        .lock()
        .expect("throttle lock")
        .check(&name, ip, Instant::now())
        .map_err(ApiError::Throttled)?;
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    let user = accounts
        .user_by_name(&name)
        .filter(|u| !u.disabled)
        .cloned();
    let stored = user.as_ref().map_or_else(
        || accounts::dummy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let password = body.password;
    let good = web::block(move || accounts::verify_password(&password, &stored))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(user) = user.filter(|_| good) else {
        throttle
            .0
            .lock()
            .expect("throttle lock")
            .failed(&name, ip, Instant::now());
        return Err(ApiError::InvalidCredentials);
    };
    throttle.0.lock().expect("throttle lock").succeeded(&name);
    let (secret, user) = new_session(&state, user.actor(), user.id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            access::set_cookie(Some(&secret), SESSION_TTL, over_tls(&req)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "user": user, "csrf": accounts::csrf_token(&secret) })))
}

/// Starts a session for user `user_id` through the log; its secret (for
/// the cookie) and the user.
pub(super) async fn new_session(
    state: &AppState,
    actor: accounts::Actor,
    user_id: Uuid,
) -> Result<(String, accounts::UserView), ApiError> {
    let secret = accounts::random_secret();
    let expires_at = Timestamp(Timestamp::now().0 + SESSION_TTL.as_millis() as i64);
    let op = Op::SessionCreate(NewSession {
        hash: accounts::secret_hash(&secret),
        user_id,
        expires_at,
    });
    let user = outcome_user(propose_as(state, actor, op).await?)?;
    Ok((secret, user))
}

/// `GET /api/session`: who is signed in.
pub async fn session(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let principal = principal(&req);
    let user = principal
        .user_id
        .and_then(|id| state.accounts.get()?.user(&id).map(|u| u.view()));
    let csrf = match &principal.via {
        Via::Session { csrf, .. } | Via::Proxy { csrf, .. } => Some(csrf.clone()),
        _ => None,
    };
    let user = match user {
        Some(user) => json!(user),
        // The service token, a peer, or `auth = "off"`.
        None => json!({
            "id": principal.actor.id,
            "username": principal.actor.name,
            "display_name": principal.actor.name,
            "role": principal.role,
            "disabled": false,
        }),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "user": user,
            "csrf": csrf,
            // The board shows no sign-in and every action when accounts are off.
            "auth": if state.auth { "on" } else { "off" },
        })))
}

/// `DELETE /api/session`: logs out, on every node.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Via::Session { hash, .. } = principal(&req).via {
        if let AccountOutcome::Rejected { rejection } =
            propose(&state, &req, Op::SessionEnd { hash }).await?
        {
            return Err(rejection.into());
        }
    }
    Ok(HttpResponse::NoContent()
        .insert_header((
            header::SET_COOKIE,
            access::set_cookie(None, SESSION_TTL, over_tls(&req)),
        ))
        .finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /api/users`.
pub async fn users(
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    super::tasks::read_barrier(&state, query.consistency).await?;
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    let users: Vec<_> = accounts.users().into_iter().map(|u| u.view()).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    password: String,
    role: Role,
}

/// `POST /api/users` (admin).
pub async fn create_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: NewUserBody = request::from_json(request::json_body(&req, payload).await?)?;
    let username = validate::username(&body.username)?;
    let display_name = validate::label(
        "display_name",
        body.display_name.as_deref().unwrap_or(&username),
        validate::DISPLAY_NAME_MAX,
    )?;
    validate::password(&body.password)?;
    let op = Op::UserCreate(NewUser {
        id: Uuid::now_v7(),
        username,
        display_name,
        role: body.role,
        password_hash: hash(body.password).await?,
    });
    let user = outcome_user(propose(&state, &req, op).await?)?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/users/{}", user.id)))
        .json(user))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatchBody {
    role: Option<Role>,
    disabled: Option<bool>,
    display_name: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
}

fn uuid(field: &str, text: &str) -> Result<Uuid, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid(field, format!("`{text:.40}` is not an id (a UUID)")))
}

/// `PATCH /api/users/{id}`: an admin changes role, disabled, display
/// name, and may set a password; a user changes their own display name,
/// and their password with `current_password`.
pub async fn update_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = uuid("id", &path)?;
    let body: UserPatchBody = request::from_json(request::json_body(&req, payload).await?)?;
    let me = principal(&req);
    let admin = me.role == Role::Admin;
    let own = me.user_id == Some(id);
    if !admin && (!own || body.role.is_some() || body.disabled.is_some()) {
        return Err(ApiError::Forbidden(
            "only an admin changes roles, disables users or changes other users".into(),
        ));
    }
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    let current = accounts
        .user(&id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no user {id}")))?;
    let display_name = body
        .display_name
        .as_deref()
        .map(|n| validate::label("display_name", n, validate::DISPLAY_NAME_MAX))
        .transpose()?;
    let password_hash = match body.password {
        None => None,
        Some(password) => {
            validate::password(&password)?;
            if !admin || own {
                let given = body.current_password.ok_or_else(|| {
                    ApiError::invalid("current_password", "is needed to change your password")
                })?;
                let stored = current.password_hash.clone();
                let good = web::block(move || accounts::verify_password(&given, &stored))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                if !good {
                    return Err(ApiError::invalid(
                        "current_password",
                        "is not your password",
                    ));
                }
            }
            Some(hash(password).await?)
        }
    };
    let op = Op::UserUpdate(UserUpdate {
        id,
        role: body.role,
        disabled: body.disabled,
        display_name,
        password_hash,
    });
    let user = outcome_user(propose(&state, &req, op).await?)?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTokenBody {
    name: String,
    #[serde(default)]
    expires_at: Option<String>,
}

/// `POST /api/tokens`: a personal token for the signed-in user, shown once.
pub async fn create_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: NewTokenBody = request::from_json(request::json_body(&req, payload).await?)?;
    let Some(user_id) = principal(&req).user_id else {
        return Err(ApiError::Forbidden(
            "only a user has personal tokens (this is a service or peer credential)".into(),
        ));
    };
    let name = validate::label("name", &body.name, validate::TOKEN_NAME_MAX)?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|text| {
            Timestamp::parse(text)
                .filter(|at| *at > Timestamp::now())
                .ok_or_else(|| ApiError::invalid("expires_at", "must be a future RFC 3339 time"))
        })
        .transpose()?;
    let secret = format!("trt_{}", accounts::random_secret());
    let id = Uuid::now_v7();
    let op = Op::TokenCreate(NewToken {
        id,
        hash: accounts::secret_hash(&secret),
        user_id,
        name,
        expires_at,
    });
    match propose(&state, &req, op).await? {
        AccountOutcome::Token { id, name } => Ok(HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "id": id, "name": name, "token": secret, "expires_at": expires_at }))),
        AccountOutcome::Rejected { rejection } => Err(rejection.into()),
        other => Err(ApiError::Internal(format!("unexpected {other:?}"))),
    }
}

fn token_json(token: &accounts::Token) -> serde_json::Value {
    json!({
        "id": token.id,
        "name": token.name,
        "user_id": token.user_id,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked": token.revoked,
    })
}

/// `GET /api/tokens`: mine; an admin sees everyone's.
pub async fn tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = principal(&req);
    // Linearizable, as every read: a token made through another node a
    // moment ago is listed.
    state.raft.read_barrier().await?;
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    let owner = if me.role == Role::Admin {
        None
    } else {
        me.user_id
    };
    let tokens: Vec<_> = if owner.is_none() && me.role != Role::Admin {
        Vec::new()
    } else {
        accounts.tokens(owner).into_iter().map(token_json).collect()
    };
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

/// `DELETE /api/tokens/{id}`: revokes it, on every node (owner or admin).
pub async fn revoke_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = uuid("id", &path)?;
    let me = principal(&req);
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    let mine = accounts
        .token(&id)
        .is_some_and(|t| me.role == Role::Admin || Some(t.user_id) == me.user_id);
    if !mine {
        return Err(ApiError::NotFound(format!("no token {id}")));
    }
    match propose(&state, &req, Op::TokenRevoke { id }).await? {
        AccountOutcome::Rejected { rejection } => Err(rejection.into()),
        _ => Ok(HttpResponse::new(StatusCode::NO_CONTENT)),
    }
}

/// Creates the `bootstrap_admin` once a leader is known, if the cluster
/// has no users (every node configured with it may try; the log decides
/// and all but the first are refused as `has_users`).
pub async fn bootstrap_admin(
    raft: crate::raft::RaftHandle,
    applier: crate::applier::ApplierHandle,
    accounts: accounts::AccountsCache,
    name: String,
    password: String,
) {
    let password_hash = match web::block(move || accounts::hash_password(&password)).await {
        Ok(hash) => hash,
        Err(_) => return,
    };
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match accounts.get() {
            None => continue,
            Some(a) if a.has_users() => {
                if a.user_by_name(&name).is_none() {
                    // Someone (a service token) made a user first: the
                    // cluster has its accounts, and this setting is moot.
                    tracing::warn!(
                        user = %name,
                        "bootstrap_admin not created: the cluster already has users"
                    );
                }
                return;
            }
            Some(_) => {}
        }
        // A new cluster's first user is created under the version it runs
        // (so its creation is an event, as every later user's is).
        if !crate::upgrade::settled(&raft, &applier).await {
            continue;
        }
        let command = Command {
            request_id: crate::task::new_request_id(),
            idempotency: None,
            at: Timestamp::now(),
            actor: accounts::Actor::system(),
            op: Op::BootstrapAdmin(NewUser {
                id: Uuid::now_v7(),
                username: name.clone(),
                display_name: name.clone(),
                role: Role::Admin,
                password_hash: password_hash.clone(),
            }),
        };
        match raft.propose(command).await {
            Ok(applied) => {
                if let Outcome::Account {
                    account: AccountOutcome::User { user },
                } = applied.outcome
                {
                    tracing::info!(user = %user.username, "created the bootstrap admin");
                } else {
                    tracing::warn!(user = %name, outcome = ?applied.outcome, "bootstrap_admin not created");
                }
                return;
            }
            // No leader yet, or not this node's turn: try again.
            Err(e) => tracing::debug!(error = %e, "bootstrap admin not proposed yet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_loaded() -> Result<std::sync::Arc<accounts::Accounts>, ApiError> {
        Err(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))
    }

    #[test]
    fn the_service_token_is_known_before_the_accounts_are_loaded() {
        let principal = bearer(
            Some("the-service-token"),
            "the-service-token",
            Timestamp::now(),
            not_loaded,
        )
        .expect("the service token needs no accounts");
        assert_eq!(principal.via, Via::Service);
        // Any other token may be a user's: retry once they are loaded.
        for presented in ["another-token", "the-service-toke", ""] {
            match bearer(
                Some("the-service-token"),
                presented,
                Timestamp::now(),
                not_loaded,
            ) {
                Err(ApiError::Consensus(crate::raft::ConsensusError::NoLeader)) => {}
                other => panic!("{presented:?}: {:?}", other.map(|p| p.via)),
            }
        }
        assert!(matches!(
            bearer(None, "the-service-token", Timestamp::now(), not_loaded),
            Err(ApiError::Consensus(_))
        ));
    }

    #[test]
    fn a_personal_token_is_looked_up_in_the_accounts() {
        let loaded = || Ok(std::sync::Arc::new(accounts::Accounts::default()));
        assert!(matches!(
            bearer(
                Some("the-service-token"),
                "unknown",
                Timestamp::now(),
                loaded
            ),
            Err(ApiError::Unauthenticated)
        ));
    }
}
