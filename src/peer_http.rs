//! The node's HTTP calls to other members: joining, asking for promotion,
//! reading a member's `/api/cluster`, relaying a membership change or a
//! leadership transfer to the leader. Blocking (callers run it on
//! `spawn_blocking`), with a connect and a total timeout.

use std::time::Duration;

use serde_json::Value;

/// One blocking HTTP call; any status is an answer, no answer is an error.
pub fn call(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
        .build();
    let mut request = agent.request(method, url);
    if let Some(auth) = auth {
        request = request.set("Authorization", auth);
    }
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            let status = response.status();
            Ok((status, response.into_string().unwrap_or_default()))
        }
        Err(ureq::Error::Transport(e)) => Err(format!("{url}: {e}")),
    }
}
