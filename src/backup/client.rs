//! `taskraft backup --url URL [--token T] --out FILE` and
//! `taskraft backup verify FILE`.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{verify, Summary};

/// Downloads a backup from the node at `url` into `out`: written to
/// `out.partial`, verified, then renamed. On any failure `out` is not
/// created (and the partial file is removed).
pub fn download(url: &str, token: Option<&str>, out: &Path) -> Result<Summary, String> {
    let url = url.trim_end_matches('/');
    let endpoint = format!("{url}/api/admin/backup");
    let partial = partial_path(out);
    let result = fetch(&endpoint, token, &partial).and_then(|()| {
        let summary = verify_file(&partial).map_err(|e| format!("the download is bad: {e}"))?;
        std::fs::rename(&partial, out).map_err(|e| format!("{}: {e}", out.display()))?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn fetch(endpoint: &str, token: Option<&str>, partial: &Path) -> Result<(), String> {
    let agent = crate::peer_http::agent_builder()
        .timeout_connect(Duration::from_secs(10))
        // Per read, not for the whole download.
        .timeout_read(Duration::from_secs(120))
        .build();
    let mut request = agent.get(endpoint);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(status, response)) => {
            let body: serde_json::Value = response.into_json().unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("").to_string();
            return Err(match status {
                401 => format!("{endpoint}: 401: credentials needed (--token) {message}"),
                403 => format!("{endpoint}: 403: only an admin may take a backup {message}"),
                _ => format!("{endpoint}: {status} {message}"),
            });
        }
        Err(e) => return Err(format!("{endpoint}: {e}")),
    };
    let mut file = File::create(partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    io::copy(&mut response.into_reader(), &mut file)
        .map_err(|e| format!("{endpoint}: the download broke off: {e}"))?;
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", partial.display()))
}

/// Checks a backup file; the error says what is wrong.
pub fn verify_file(path: &Path) -> Result<Summary, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    verify(BufReader::new(file), |_, _| Ok(())).map_err(|e| format!("{}: {e}", path.display()))
}

/// What `backup` and `backup verify` print about a good file.
pub fn describe(summary: &Summary) -> String {
    let h = &summary.header;
    let mut text = format!(
        "backup format {} of cluster {} from node {} (taskraft {}), taken {}\n\
         applied index {} (term {}), events 1..={}\n",
        h.format,
        h.cluster_id,
        h.node_id,
        h.taskraft_version,
        h.created_at,
        h.applied_index,
        h.applied_term,
        h.last_seq
    );
    for (part, rows) in &summary.parts {
        text.push_str(&format!("  {part:<17} {rows} rows\n"));
    }
    text.push_str(&format!("sha256 {}\n", summary.sha256));
    text
}
