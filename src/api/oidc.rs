//! OpenID Connect sign-on: the authorization code flow with PKCE.
//!
//! `GET /auth/oidc/login` draws a state, a nonce and a PKCE verifier, keeps
//! them in a short-lived cookie signed with the cluster secret (so the
//! provider may send the browser back to any node), and redirects to the
//! provider. `GET /auth/oidc/callback` checks the state against that
//! cookie, exchanges the code (with the verifier and the client secret) at
//! the provider's token endpoint, verifies the ID token (its signature
//! with the provider's published keys, issuer, audience, expiry, nonce),
//! and signs the person in as the user whose id derives from the issuer
//! and the subject (`sub`): never by name, since a provider's user may pick
//! their `preferred_username` and must not reach a local account of that
//! name. At their first sign-in the user is created with that id,
//! `oidc_default_role` and their `preferred_username` (with a piece of the
//! id after it when the name is taken); they must be enabled. Then it is an ordinary session, through the log, with its
//! cookie. The provider's discovery document and keys are read when first
//! needed (and the keys again for a key id not seen yet).
//!
//! Not implemented: logout at the provider (RP-initiated logout), the
//! userinfo endpoint (the ID token's claims are enough), refresh tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::auth;
use super::error::ApiError;
use super::AppState;
use crate::accounts::{self, access, validate, Actor, NewUser};
use crate::config::OidcSettings;
use crate::task::Op;

/// The cookie holding a sign-in in progress.
const FLOW_COOKIE: &str = "taskraft_oidc";
/// How long a sign-in at the provider may take.
const FLOW_TTL: Duration = Duration::from_secs(600);
/// How long the provider may take to answer.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider's endpoints, from its discovery document.
#[derive(Clone, Debug, Deserialize)]
struct Discovered {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// OpenID Connect as this node runs it.
pub struct Oidc {
    settings: OidcSettings,
    /// Signs the flow cookie: the first cluster secret (every node has
    /// it), else a random key of this node's (a cluster of one).
    key: Vec<u8>,
    discovered: Mutex<Option<Arc<Discovered>>>,
    keys: Mutex<Option<Arc<jsonwebtoken::jwk::JwkSet>>>,
}

impl Oidc {
    pub fn new(settings: OidcSettings, cluster_secrets: &[String]) -> Oidc {
        let key = match cluster_secrets.first() {
            Some(secret) => format!("taskraft-oidc:{secret}").into_bytes(),
            None => accounts::random_secret().into_bytes(),
        };
        Oidc {
            settings,
            key,
            discovered: Mutex::new(None),
            keys: Mutex::new(None),
        }
    }

    fn mac(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(payload.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    async fn discovered(&self) -> Result<Arc<Discovered>, ApiError> {
        if let Some(d) = self.discovered.lock().expect("oidc lock").clone() {
            return Ok(d);
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer);
        let found: Discovered = fetch_json(url).await?;
        if found.issuer.trim_end_matches('/') != self.settings.issuer {
            return Err(provider_error(format!(
                "the provider says its issuer is {}, not {}",
                found.issuer, self.settings.issuer
            )));
        }
        let found = Arc::new(found);
        *self.discovered.lock().expect("oidc lock") = Some(found.clone());
        Ok(found)
    }

    /// The provider's key `kid`, reading its keys again if it is new.
    async fn key(
        &self,
        discovered: &Discovered,
        kid: Option<&str>,
    ) -> Result<jsonwebtoken::DecodingKey, ApiError> {
        for fresh in [false, true] {
            let cached = self.keys.lock().expect("oidc lock").clone();
            let set = match (cached, fresh) {
                (Some(set), false) => set,
                _ => {
                    let set: jsonwebtoken::jwk::JwkSet =
                        fetch_json(discovered.jwks_uri.clone()).await?;
                    let set = Arc::new(set);
                    *self.keys.lock().expect("oidc lock") = Some(set.clone());
                    set
                }
            };
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = jwk {
                return jsonwebtoken::DecodingKey::from_jwk(jwk)
                    .map_err(|e| provider_error(format!("the provider's key: {e}")));
            }
        }
        Err(provider_error(format!(
            "the provider publishes no key {kid:?}"
        )))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn provider_error(message: String) -> ApiError {
    ApiError::BadGateway(format!("OpenID provider: {message}"))
}

/// GETs a JSON document from the provider, off the HTTP worker.
async fn fetch_json<T: serde::de::DeserializeOwned + Send + 'static>(
    url: String,
) -> Result<T, ApiError> {
    web::block(move || {
        let response = ureq::get(&url)
            .timeout(PROVIDER_TIMEOUT)
            .call()
            .map_err(|e| provider_error(format!("{url}: {e}")))?;
        response
            .into_json::<T>()
            .map_err(|e| provider_error(format!("{url}: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

fn configured(state: &AppState) -> Result<&Oidc, ApiError> {
    state
        .oidc
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("OpenID Connect is not configured on this node".into()))
}

fn flow_cookie(value: &str, max_age: Duration, secure: bool) -> String {
    let mut cookie = format!(
        "{FLOW_COOKIE}={value}; Path=/auth/oidc; Max-Age={}; HttpOnly; SameSite=Lax",
        max_age.as_secs()
    );
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// `GET /auth/oidc/login`: off to the provider.
/// `GET /auth/oidc`: whether this node offers OpenID Connect sign-in (so
/// the board's sign-in dialog can show its button), and where it starts.
pub async fn offered(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "enabled": state.oidc.is_some(),
            "login": "/auth/oidc/login",
        }))
}

/// `GET /auth/oidc/login`: to the provider.
pub async fn login(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let oidc = configured(&state)?;
    let discovered = oidc.discovered().await?;
    let state_value = accounts::random_secret();
    let nonce = accounts::random_secret();
    let verifier = accounts::random_secret();
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
    let payload = format!("{state_value}.{nonce}.{verifier}");
    let cookie = format!("{payload}.{}", oidc.mac(&payload));
    let mut location = url::Url::parse(&discovered.authorization_endpoint)
        .map_err(|e| provider_error(format!("authorization_endpoint: {e}")))?;
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.settings.client_id)
        .append_pair("redirect_uri", &oidc.settings.redirect_url)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state_value)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((
            header::SET_COOKIE,
            flow_cookie(&cookie, FLOW_TTL, auth::over_tls(&req)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: String,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The state, nonce and verifier the flow cookie holds, if it is ours.
fn read_flow(oidc: &Oidc, req: &HttpRequest) -> Option<(String, String, String)> {
    let cookies = req.headers().get(header::COOKIE)?.to_str().ok()?;
    let value = cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == FLOW_COOKIE)?
        .1;
    let (payload, mac) = value.rsplit_once('.')?;
    if !access::constant_time_eq(mac.as_bytes(), oidc.mac(payload).as_bytes()) {
        return None;
    }
    let mut parts = payload.split('.');
    let (state, nonce, verifier) = (parts.next()?, parts.next()?, parts.next()?);
    Some((state.into(), nonce.into(), verifier.into()))
}

/// `GET /auth/oidc/callback`: back from the provider.
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let oidc = configured(&state)?;
    if let Some(error) = &query.error {
        return Err(ApiError::Forbidden(format!(
            "the OpenID provider refused the sign-in: {error:.100} {:.200}",
            query.error_description.as_deref().unwrap_or("")
        )));
    }
    let (expected_state, nonce, verifier) = read_flow(oidc, &req).ok_or_else(|| {
        ApiError::invalid(
            "state",
            "no sign-in in progress here (it expired after 10 minutes, or cookies are off)",
        )
    })?;
    let given_state = query.state.as_deref().unwrap_or("");
    if !access::constant_time_eq(given_state.as_bytes(), expected_state.as_bytes()) {
        return Err(ApiError::invalid(
            "state",
            "does not match the sign-in this browser started",
        ));
    }
    let code = query
        .code
        .clone()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| ApiError::invalid("code", "is missing"))?;
    let discovered = oidc.discovered().await?;
    let token_endpoint = discovered.token_endpoint.clone();
    let settings = oidc.settings.clone();
    let answer: TokenAnswer = web::block(move || {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            urlencode(&settings.client_id),
            urlencode(&settings.client_secret)
        ));
        let response = ureq::post(&token_endpoint)
            .timeout(PROVIDER_TIMEOUT)
            .set("Authorization", &format!("Basic {basic}"))
            .send_form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &settings.redirect_url),
                ("code_verifier", &verifier),
            ])
            .map_err(|e| provider_error(format!("the token endpoint: {e}")))?;
        response
            .into_json::<TokenAnswer>()
            .map_err(|e| provider_error(format!("the token endpoint's answer: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;

    let claims = verify_id_token(oidc, &discovered, &answer.id_token, &nonce).await?;
    // The person is the provider's subject, never a name: a user name at the
    // provider may be chosen by its user (`preferred_username` is not unique
    // by the standard), and must not open a local account of that name.
    let user_id = subject_user_id(&oidc.settings.issuer, &claims.sub);
    let user = match user_with_id(&state, user_id)? {
        Some(user) => user,
        None => provision(&state, oidc, user_id, &claims).await?,
    };
    if user.disabled {
        return Err(ApiError::InvalidCredentials);
    }
    let actor = Actor {
        id: user.id.to_string(),
        name: user.username.clone(),
    };
    let (secret, _) = auth::new_session(&state, actor, user.id).await?;
    let secure = auth::over_tls(&req);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .append_header((
            header::SET_COOKIE,
            access::set_cookie(Some(&secret), auth::SESSION_TTL, secure),
        ))
        .append_header((header::SET_COOKIE, flow_cookie("", Duration::ZERO, secure)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn verify_id_token(
    oidc: &Oidc,
    discovered: &Discovered,
    id_token: &str,
    nonce: &str,
) -> Result<IdClaims, ApiError> {
    use jsonwebtoken::Algorithm;
    let bad = |why: String| provider_error(format!("the ID token: {why}"));
    let head = jsonwebtoken::decode_header(id_token).map_err(|e| bad(e.to_string()))?;
    // Signed with the provider's published keys only: no `none`, and no
    // HMAC (which would make the client secret a signing key).
    if !matches!(
        head.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    ) {
        return Err(bad(format!("{:?} signatures are not accepted", head.alg)));
    }
    let key = oidc.key(discovered, head.kid.as_deref()).await?;
    let mut validation = jsonwebtoken::Validation::new(head.alg);
    validation.set_issuer(&[&oidc.settings.issuer, &discovered.issuer]);
    validation.set_audience(&[&oidc.settings.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
        .map_err(|e| bad(e.to_string()))?;
    let given = data.claims.nonce.as_deref().unwrap_or("");
    if !access::constant_time_eq(given.as_bytes(), nonce.as_bytes()) {
        return Err(bad("its nonce is not this sign-in's".into()));
    }
    Ok(data.claims)
}

/// The id of the user a provider's subject signs in as: derived from the
/// issuer and the subject, so that only that subject ever reaches it (a
/// local user's id is random and can never be it).
pub fn subject_user_id(issuer: &str, subject: &str) -> Uuid {
    let digest = Sha256::digest(format!("taskraft-oidc\n{issuer}\n{subject}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn user_with_id(state: &AppState, id: Uuid) -> Result<Option<accounts::User>, ApiError> {
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    Ok(accounts.user(&id).cloned())
}

/// The user name a new user from the provider gets: their
/// `preferred_username` (else the subject) if taskraft accepts it and it is
/// free, else that name with a piece of their id (`alice.1f2e3d`).
fn free_username(state: &AppState, id: Uuid, claims: &IdClaims) -> Result<String, ApiError> {
    let wanted = claims.preferred_username.as_deref().unwrap_or(&claims.sub);
    let base = validate::username(wanted)
        .or_else(|_| validate::username(&format!("oidc.{}", &id.simple().to_string()[..12])))
        .map_err(|_| ApiError::Internal("a derived user name was refused".into()))?;
    let accounts = state
        .accounts
        .get()
        .ok_or(ApiError::Consensus(crate::raft::ConsensusError::NoLeader))?;
    if accounts.user_by_name(&base).is_none() {
        return Ok(base);
    }
    let suffix = &id.simple().to_string()[..6];
    let keep = base.len().min(validate::USERNAME_MAX - suffix.len() - 1);
    validate::username(&format!("{}.{suffix}", &base[..keep]))
        .map_err(|_| ApiError::Internal("a derived user name was refused".into()))
}

/// Creates the user at their first sign-in, with the id their subject
/// gives, `oidc_default_role` and a password nobody knows (an admin may set
/// one later).
async fn provision(
    state: &AppState,
    oidc: &Oidc,
    id: Uuid,
    claims: &IdClaims,
) -> Result<accounts::User, ApiError> {
    let username = free_username(state, id, claims)?;
    let display_name = claims
        .name
        .as_deref()
        .and_then(|n| validate::label("display_name", n, validate::DISPLAY_NAME_MAX).ok())
        .unwrap_or_else(|| username.clone());
    let op = Op::UserCreate(NewUser {
        id,
        username,
        display_name,
        role: oidc.settings.default_role,
        password_hash: auth::hash(accounts::random_secret()).await?,
    });
    let outcome = auth::propose_as(state, Actor::system(), op).await?;
    match outcome {
        accounts::AccountOutcome::User { user } => {
            tracing::info!(user = %user.username, role = %user.role, "created a user at their first OpenID Connect sign-in");
        }
        // Made meanwhile by another sign-in of theirs.
        accounts::AccountOutcome::Rejected {
            rejection: accounts::AccountRejection::IdTaken { .. },
        } => {}
        other => {
            return Err(auth::outcome_user(other).map_or_else(
                |e| e,
                |_| ApiError::Internal("a user creation came to another outcome".into()),
            ))
        }
    }
    user_with_id(state, id)?.ok_or_else(|| ApiError::Internal("the new user is not there".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_has_one_id_per_issuer_and_it_never_collides_with_a_name() {
        let alice = subject_user_id("https://id.example", "248289761001");
        assert_eq!(alice, subject_user_id("https://id.example", "248289761001"));
        assert_ne!(
            alice,
            subject_user_id("https://other.example", "248289761001")
        );
        assert_ne!(alice, subject_user_id("https://id.example", "248289761002"));
        // Not a v7 (what local users get): the two kinds never meet.
        assert_ne!(alice.get_version_num(), 7);
    }
}
