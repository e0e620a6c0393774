//! The lab's HTTP side: its page and `/lab/*`, on the supervisor's own
//! port (see API.md, "The lab"). Errors are the nodes' JSON shape.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{middleware, web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;

use super::Lab;

const PAGE_CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self' http://127.0.0.1:* http://localhost:*; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({ "error": { "code": code, "message": message.into() } }))
}

/// Serves the lab on `listener` from a thread of its own, until the process
/// exits.
pub fn serve(lab: Arc<Lab>, listener: TcpListener) -> std::io::Result<()> {
    let server = {
        let lab = web::Data::new(lab);
        HttpServer::new(move || {
            App::new()
                .app_data(lab.clone())
                .app_data(web::JsonConfig::default().error_handler(|e, _| {
                    actix_web::error::InternalError::from_response(
                        e.to_string(),
                        error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
                    )
                    .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    actix_web::error::InternalError::from_response(
                        e.to_string(),
                        error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
                    )
                    .into()
                }))
                .wrap(
                    middleware::DefaultHeaders::new()
                        .add(("Content-Security-Policy", PAGE_CSP))
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "no-referrer"))
                        .add(("Cache-Control", "no-store")),
                )
                .route("/lab", web::get().to(page))
                .route("/lab/", web::get().to(page))
                .route("/lab/state", web::get().to(state))
                .route("/lab/nodes", web::post().to(add_node))
                .route("/lab/nodes/{id}", web::delete().to(remove_node))
                .route("/lab/nodes/{id}/log", web::get().to(node_log))
                .route("/lab/nodes/{id}/{action}", web::post().to(node_action))
                .route("/lab/links", web::post().to(set_link))
                .route("/lab/isolate/{id}", web::post().to(isolate))
                .route("/lab/heal", web::post().to(heal))
                .route("/lab/leader", web::post().to(transfer_leader))
                .route("/lab/{file}", web::get().to(asset))
                .default_service(web::to(|| async {
                    error(StatusCode::NOT_FOUND, "not_found", "no such lab resource")
                }))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run()
    };
    std::thread::Builder::new()
        .name("lab http".into())
        .spawn(move || {
            if let Err(e) = actix::System::new().block_on(server) {
                eprintln!("the lab's HTTP server stopped: {e}");
            }
        })?;
    Ok(())
}

/// The board's shared files (style, icon), from `static/`.
macro_rules! file {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/", $path)).as_slice()
    };
}

/// The lab's own page: not among the board's files, since a node does not
/// serve it.
async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_bytes!("page/lab.html").as_slice())
}

async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, kind) = match file.as_str() {
        "lab.js" => (
            include_bytes!("page/lab.js").as_slice(),
            "text/javascript; charset=utf-8",
        ),
        "style.css" => (file!("style.css"), "text/css; charset=utf-8"),
        "favicon.svg" => (file!("favicon.svg"), "image/svg+xml"),
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such lab file"),
    };
    HttpResponse::Ok().content_type(kind).body(body)
}

async fn state(lab: web::Data<Arc<Lab>>) -> HttpResponse {
    let lab = lab.get_ref().clone();
    match web::block(move || lab.state()).await {
        Ok(state) => HttpResponse::Ok().json(state),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
    }
}

/// A 404 for a node this lab does not have.
fn known(lab: &Lab, id: u64) -> Option<HttpResponse> {
    if lab.nodes().iter().any(|n| n.id == id) {
        None
    } else {
        Some(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no node {id} in this lab"),
        ))
    }
}

async fn node_log(lab: web::Data<Arc<Lab>>, id: web::Path<u64>) -> HttpResponse {
    let id = id.into_inner();
    if let Some(response) = known(&lab, id) {
        return response;
    }
    let url = lab
        .nodes()
        .iter()
        .find(|n| n.id == id)
        .map(|n| n.url.clone())
        .unwrap_or_default();
    let bearer = lab.bearer();
    let answer = web::block(move || {
        ureq::get(&format!("{url}/api/cluster/log?limit=40"))
            .set("Authorization", &bearer)
            .timeout(Duration::from_millis(800))
            .call()
            .ok()
            .and_then(|r| r.into_json::<serde_json::Value>().ok())
    })
    .await
    .ok()
    .flatten();
    match answer {
        Some(log) => HttpResponse::Ok().json(log),
        // A node that does not answer (killed a moment ago, restarting,
        // paused, catching up) is what the lab is for, not a failure of
        // the lab: it says so, as `/lab/state` does, instead of a 503 that
        // the page's browser logs as an error.
        None => HttpResponse::Ok().json(json!({ "node": id, "answering": false })),
    }
}

async fn node_action(lab: web::Data<Arc<Lab>>, path: web::Path<(u64, String)>) -> HttpResponse {
    let (id, action) = path.into_inner();
    if let Some(response) = known(&lab, id) {
        return response;
    }
    let lab = lab.get_ref().clone();
    let result = web::block(move || lab.act(id, &action)).await;
    match result {
        Ok(Ok(())) => HttpResponse::Accepted().json(json!({ "ok": true })),
        Ok(Err((status, message))) => error(status, "refused", message),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
    }
}

/// `POST /lab/nodes`: a new node, joining the cluster (see [`Lab::add_node`]).
async fn add_node(lab: web::Data<Arc<Lab>>) -> HttpResponse {
    let lab = lab.get_ref().clone();
    match web::block(move || lab.add_node()).await {
        Ok(Ok(node)) => HttpResponse::Accepted().json(node),
        Ok(Err((status, message))) => error(status, "refused", message),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
    }
}

/// `DELETE /lab/nodes/{id}`: out of the cluster, then stopped (see
/// [`Lab::remove_node`]).
async fn remove_node(lab: web::Data<Arc<Lab>>, id: web::Path<u64>) -> HttpResponse {
    let id = id.into_inner();
    if let Some(response) = known(&lab, id) {
        return response;
    }
    let lab = lab.get_ref().clone();
    match web::block(move || lab.remove_node(id)).await {
        Ok(Ok(removed)) => HttpResponse::Ok().json(removed),
        Ok(Err((status, message))) if status == StatusCode::NOT_FOUND => {
            error(status, "not_found", message)
        }
        Ok(Err((status, message))) => error(status, "refused", message),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    from: u64,
    to: u64,
    state: LinkState,
    #[serde(default)]
    both: bool,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum LinkState {
    Cut,
    Ok,
}

async fn set_link(lab: web::Data<Arc<Lab>>, body: web::Json<LinkBody>) -> HttpResponse {
    let body = body.into_inner();
    let cut = body.state == LinkState::Cut;
    let mut changed = 0;
    for link in lab.links() {
        let forward = link.from == body.from && link.to == body.to;
        let back = body.both && link.from == body.to && link.to == body.from;
        if forward || back {
            link.set_cut(cut);
            changed += 1;
        }
    }
    if changed == 0 {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no link {} → {}", body.from, body.to),
        );
    }
    let arrow = if body.both { "↔" } else { "→" };
    lab.record(
        "fault",
        format!(
            "link {} {arrow} {} {}",
            body.from,
            body.to,
            if cut { "cut" } else { "healed" }
        ),
    );
    HttpResponse::Accepted().json(json!({ "links": changed }))
}

async fn isolate(lab: web::Data<Arc<Lab>>, id: web::Path<u64>) -> HttpResponse {
    let id = id.into_inner();
    if let Some(response) = known(&lab, id) {
        return response;
    }
    for link in lab.links().iter().filter(|l| l.from == id || l.to == id) {
        link.set_cut(true);
    }
    lab.record(
        "fault",
        format!("node {id} isolated (every link to and from it cut)"),
    );
    HttpResponse::Accepted().json(json!({ "isolated": id }))
}

async fn heal(lab: web::Data<Arc<Lab>>) -> HttpResponse {
    for link in lab.links() {
        link.set_cut(false);
    }
    lab.record("fault", "every link healed".into());
    HttpResponse::Accepted().json(json!({ "healed": true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaderBody {
    to: u64,
}

async fn transfer_leader(lab: web::Data<Arc<Lab>>, body: web::Json<LeaderBody>) -> HttpResponse {
    let to = body.to;
    if let Some(response) = known(&lab, to) {
        return response;
    }
    let urls: Vec<String> = lab
        .nodes()
        .iter_mut()
        .filter_map(|n| (n.state() == "running").then_some(n))
        .map(|n| n.url.clone())
        .collect();
    let bearer = lab.bearer();
    let answer = web::block(move || {
        // Any running node forwards it to the leader.
        for url in urls {
            match ureq::post(&format!("{url}/api/cluster/leader"))
                .set("Authorization", &bearer)
                .timeout(Duration::from_secs(3))
                .send_json(json!({ "to": to }))
            {
                Ok(_) => return Ok(()),
                Err(ureq::Error::Status(status, r)) if status < 500 => {
                    return Err(r.into_string().unwrap_or_default())
                }
                Err(_) => continue,
            }
        }
        Err("no node could hand leadership over".to_string())
    })
    .await;
    match answer {
        Ok(Ok(())) => {
            lab.record("fault", format!("leadership handed to node {to}"));
            HttpResponse::Accepted().json(json!({ "transferring_to": to }))
        }
        Ok(Err(message)) => error(StatusCode::CONFLICT, "cannot_transfer", message),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
    }
}
