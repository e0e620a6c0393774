//! One keep-alive HTTP/1.1 connection, reconnected on failure: the unit of
//! concurrency of the load tool, as in `wrk`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::time::Duration;

use tokio::net::TcpStream;

/// A response: status (0 when there was none) and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// `X-Taskraft-Seq`: the seq of the event a write produced (or, on a
    /// list, the last seq the node had applied).
    pub seq: Option<u64>,
}

impl Reply {
    pub fn failed() -> Reply {
        Reply {
            status: 0,
            body: Bytes::new(),
            seq: None,
        }
    }
}

/// How long one request (connect, send, whole body) may take before it
/// counts as "no answer" and the connection is dropped. Without a bound a
/// closed-loop client stuck on a dead node would never end the run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `Authorization: Bearer $TASKRAFT_TOKEN` for every request, when set
/// (a node with `auth = "on"` needs a personal token or its `api_token`).
fn authorization() -> Option<&'static HeaderValue> {
    static VALUE: std::sync::OnceLock<Option<HeaderValue>> = std::sync::OnceLock::new();
    VALUE
        .get_or_init(|| {
            let token = std::env::var("TASKRAFT_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())?;
            HeaderValue::from_str(&format!("Bearer {token}")).ok()
        })
        .as_ref()
}

pub struct Conn {
    /// `host:port`.
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl Conn {
    pub fn new(base_url: &str) -> Conn {
        let authority = base_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Conn {
            authority,
            sender: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Conn {
        self.timeout = timeout;
        self
    }

    async fn connect(&mut self) -> Option<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return self.sender.as_mut();
        }
        let stream = match TcpStream::connect(&self.authority).await {
            Ok(stream) => stream,
            Err(_) => {
                // A refused connection fails at once: without a pause a
                // closed-loop client against a dead node would spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                return None;
            }
        };
        stream.set_nodelay(true).ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        self.sender.as_mut()
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<Bytes>,
    ) -> Reply {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.request_unbounded(method, path, headers, body))
            .await
        {
            Ok(reply) => reply,
            Err(_) => {
                // The connection may still deliver the late answer: drop it.
                self.sender = None;
                Reply::failed()
            }
        }
    }

    async fn request_unbounded(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<Bytes>,
    ) -> Reply {
        let authority = self.authority.clone();
        let Some(sender) = self.connect().await else {
            return Reply::failed();
        };
        if sender.ready().await.is_err() {
            self.sender = None;
            return Reply::failed();
        }
        let mut request = Request::builder().method(method).uri(path);
        let Some(request_headers) = request.headers_mut() else {
            return Reply::failed();
        };
        request_headers.insert(
            HOST,
            HeaderValue::from_str(&authority).unwrap_or(HeaderValue::from_static("localhost")),
        );
        if body.is_some() {
            request_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                request_headers.insert(HeaderName::from_static(name), value);
            }
        }
        if let Some(value) = authorization() {
            request_headers.insert(hyper::header::AUTHORIZATION, value.clone());
        }
        let Ok(request) = request.body(Full::new(body.unwrap_or_default())) else {
            return Reply::failed();
        };
        match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let seq = response
                    .headers()
                    .get("x-taskraft-seq")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                match response.into_body().collect().await {
                    Ok(body) => Reply {
                        status,
                        body: body.to_bytes(),
                        seq,
                    },
                    Err(_) => {
                        self.sender = None;
                        Reply::failed()
                    }
                }
            }
            Err(_) => {
                self.sender = None;
                Reply::failed()
            }
        }
    }
}
