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
    asset!("js/archived.js", "text/javascript; charset=utf-8"),
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
    asset!("js/dialog.js", "text/javascript; charset=utf-8"),
    asset!("js/feed.js", "text/javascript; charset=utf-8"),
    asset!("js/filters.js", "text/javascript; charset=utf-8"),
    asset!("js/health.js", "text/javascript; charset=utf-8"),
    asset!("js/history.js", "text/javascript; charset=utf-8"),
    asset!("js/markdown.js", "text/javascript; charset=utf-8"),
    asset!("js/members.js", "text/javascript; charset=utf-8"),
    asset!("js/past.js", "text/javascript; charset=utf-8"),
    asset!("js/store.js", "text/javascript; charset=utf-8"),
    asset!("js/session.js", "text/javascript; charset=utf-8"),
    asset!("js/toast.js", "text/javascript; charset=utf-8"),
    asset!("js/util.js", "text/javascript; charset=utf-8"),
];

/// The file for `path`: from `dir` when given (development), else built in.
pub fn serve(path: &str, dir: Option<&std::path::Path>) -> Option<HttpResponse> {
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
    Some(
        HttpResponse::Ok()
            .content_type(content_type)
            // The page must always come fresh from the node it names.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(body),
    )
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
        assert!(serve("/", None).is_some());
        assert!(serve("/js/app.js", None).is_some());
        assert!(serve("/nope.js", None).is_none());
        assert!(serve("/../Cargo.toml", None).is_none());
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/static"));
        assert!(serve("/js/app.js", Some(dir)).is_some());
        assert!(serve("/../Cargo.toml", Some(dir)).is_none());
        assert!(serve("/.hidden", Some(dir)).is_none());
    }

    #[test]
    fn a_board_address_is_the_board_page_and_nothing_else_under_b_is() {
        assert!(serve("/b/01a243d4-1d9a-7020-90d2-81c89109699e", None).is_some());
        assert!(serve("/b/not-a-board", None).is_none());
        assert!(serve("/b/", None).is_none());
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/static"));
        assert!(serve("/b/01a243d4-1d9a-7020-90d2-81c89109699e", Some(dir)).is_some());
    }
}
