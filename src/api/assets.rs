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
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
];

pub fn serve(path: &str) -> Option<HttpResponse> {
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    let asset = ASSETS.iter().find(|a| a.path == name)?;
    Some(
        HttpResponse::Ok()
            .content_type(asset.content_type)
            // The page must always come fresh from the node it names.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(asset.body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(serve("/").is_some());
        assert!(serve("/app.js").is_some());
        assert!(serve("/nope.js").is_none());
        assert!(serve("/../Cargo.toml").is_none());
    }
}
