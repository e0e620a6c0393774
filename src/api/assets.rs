//! The board's files, compiled into the binary so a node serves them from
//! anywhere. `static/` has no build step: what is there is what is served.

use actix_web::http::header;
use actix_web::HttpResponse;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/", $path)),
        }
    };
}

/// Every file in `static/`; a test checks that none is missing.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("cluster.html", "text/html; charset=utf-8"),
    asset!("js/charts.js", "text/javascript; charset=utf-8"),
    asset!("js/clusterpage.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", "text/javascript; charset=utf-8"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/board.js", "text/javascript; charset=utf-8"),
    asset!("js/boards.js", "text/javascript; charset=utf-8"),
    asset!("js/activity.js", "text/javascript; charset=utf-8"),
    asset!("js/archived.js", "text/javascript; charset=utf-8"),
    asset!("js/presence.js", "text/javascript; charset=utf-8"),
    asset!("js/search.js", "text/javascript; charset=utf-8"),
    asset!("js/place.js", "text/javascript; charset=utf-8"),
    asset!("js/switcher.js", "text/javascript; charset=utf-8"),
    asset!("js/board/columns.js", "text/javascript; charset=utf-8"),
    asset!("js/board/column-drag.js", "text/javascript; charset=utf-8"),
    asset!("js/board/column-edit.js", "text/javascript; charset=utf-8"),
    asset!("js/board/drag.js", "text/javascript; charset=utf-8"),
    asset!(
        "js/board/keyboard-move.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("js/board/keyboard-nav.js", "text/javascript; charset=utf-8"),
    asset!("js/board/moves.js", "text/javascript; charset=utf-8"),
    asset!("js/board/render.js", "text/javascript; charset=utf-8"),
    asset!("js/board/undo.js", "text/javascript; charset=utf-8"),
    asset!("js/board/write-queue.js", "text/javascript; charset=utf-8"),
    asset!("js/cluster.js", "text/javascript; charset=utf-8"),
    asset!("js/checklists.js", "text/javascript; charset=utf-8"),
    asset!("js/comments.js", "text/javascript; charset=utf-8"),
    asset!("js/notifications.js", "text/javascript; charset=utf-8"),
    asset!("js/dialog.js", "text/javascript; charset=utf-8"),
    asset!("js/feed.js", "text/javascript; charset=utf-8"),
    asset!("js/filters.js", "text/javascript; charset=utf-8"),
    asset!("js/health.js", "text/javascript; charset=utf-8"),
    asset!("js/history.js", "text/javascript; charset=utf-8"),
    asset!("js/importer.js", "text/javascript; charset=utf-8"),
    asset!("js/markdown.js", "text/javascript; charset=utf-8"),
    asset!("js/members.js", "text/javascript; charset=utf-8"),
    asset!("js/past.js", "text/javascript; charset=utf-8"),
    asset!("js/shown-view.js", "text/javascript; charset=utf-8"),
    asset!("js/store.js", "text/javascript; charset=utf-8"),
    asset!("js/session.js", "text/javascript; charset=utf-8"),
    asset!("js/toast.js", "text/javascript; charset=utf-8"),
    asset!("js/util.js", "text/javascript; charset=utf-8"),
    asset!("js/webhooks.js", "text/javascript; charset=utf-8"),
];

/// The file for `path`: from `dir` when given (development), else built in.
/// Each answer has an `ETag` (a hash of the bytes) and `no-cache`: a browser
/// asks again every time (a node upgraded under an open page serves its
/// new files at once) and, with `If-None-Match` (`if_none_match`) still
/// naming these bytes, gets an empty 304 instead of the file.
pub fn serve(
    path: &str,
    dir: Option<&std::path::Path>,
    if_none_match: Option<&str>,
) -> Option<HttpResponse> {
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        "cluster" => "cluster.html",
        // A board's own address: the page, which reads the id from it.
        board
            if board
                .strip_prefix("b/")
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()) =>
        {
            "index.html"
        }
        other => other,
    };
    let asset = ASSETS.iter().find(|a| a.path == name);
    let (content_type, body): (&str, Vec<u8>) = match dir {
        Some(dir) => {
            // Only plain names below `dir`: no `..`, no absolute paths.
            if name
                .split('/')
                .any(|part| part.is_empty() || part.starts_with('.'))
            {
                return None;
            }
            let body = std::fs::read(dir.join(name)).ok()?;
            (content_type_of(name), body)
        }
        None => {
            let asset = asset?;
            (asset.content_type, asset.body.to_vec())
        }
    };
    let tag = etag(&body);
    if if_none_match.is_some_and(|tags| tags.split(',').any(|t| t.trim() == tag)) {
        return Some(
            HttpResponse::NotModified()
                .insert_header((header::ETAG, tag))
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .finish(),
        );
    }
    Some(
        HttpResponse::Ok()
            .content_type(content_type)
            // The page must always come fresh from the node it names.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::ETAG, tag))
            .body(body),
    )
}

/// A strong entity tag of `body`: the same bytes, the same tag, on every
/// node and after every restart of the same build.
fn etag(body: &[u8]) -> String {
    use std::hash::Hasher;
    // Fixed keys: SipHash-1-3 with keys (0, 0).
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    hasher.write(body);
    format!("\"{:016x}-{:x}\"", hasher.finish(), body.len())
}

fn content_type_of(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_file_has_a_known_content_type() {
        for asset in ASSETS {
            assert_eq!(
                content_type_of(asset.path),
                asset.content_type,
                "{}",
                asset.path
            );
        }
    }

    #[test]
    fn every_file_in_static_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static");
        let mut files = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(path) = stack.pop() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    files.push(rel);
                }
            }
        }
        files.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed);
    }

    #[test]
    fn the_root_is_the_board_and_unknown_files_are_not_found() {
        assert!(serve("/", None, None).is_some());
        assert!(serve("/js/app.js", None, None).is_some());
        assert!(serve("/nope.js", None, None).is_none());
        assert!(serve("/../Cargo.toml", None, None).is_none());
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/static"));
        assert!(serve("/js/app.js", Some(dir), None).is_some());
        assert!(serve("/../Cargo.toml", Some(dir), None).is_none());
        assert!(serve("/.hidden", Some(dir), None).is_none());
    }

    #[test]
    fn a_board_address_is_the_board_page_and_nothing_else_under_b_is() {
        assert!(serve("/b/01a243d4-1d9a-7020-90d2-81c89109699e", None, None).is_some());
        assert!(serve("/b/not-a-board", None, None).is_none());
        assert!(serve("/b/", None, None).is_none());
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/static"));
        assert!(serve("/b/01a243d4-1d9a-7020-90d2-81c89109699e", Some(dir), None).is_some());
    }

    #[test]
    fn a_file_the_browser_holds_is_a_304_and_a_changed_one_is_sent() {
        let first = serve("/js/app.js", None, None).unwrap();
        assert_eq!(first.status(), 200);
        let tag = first
            .headers()
            .get(header::ETAG)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        let again = serve("/js/app.js", None, Some(&format!("\"x\", {tag}"))).unwrap();
        assert_eq!(again.status(), 304);
        let other = serve("/js/app.js", None, Some("\"0000000000000000-1\"")).unwrap();
        assert_eq!(other.status(), 200);
        // Another file, another tag.
        let css = serve("/style.css", None, None).unwrap();
        assert_ne!(
            css.headers().get(header::ETAG).unwrap().to_str().unwrap(),
            tag
        );
    }
}
