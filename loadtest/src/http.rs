//! One keep-alive HTTP/1.1 connection, reconnected on failure: the unit of
//! concurrency of the load tool, as in `wrk`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response: status (0 when there was none) and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    fn failed() -> Reply {
        Reply {
            status: 0,
            body: Bytes::new(),
        }
    }
}

pub struct Conn {
    /// `host:port`.
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
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
        }
    }

    async fn connect(&mut self) -> Option<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return self.sender.as_mut();
        }
        let stream = TcpStream::connect(&self.authority).await.ok()?;
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
        let Ok(request) = request.body(Full::new(body.unwrap_or_default())) else {
            return Reply::failed();
        };
        match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(body) => Reply {
                        status,
                        body: body.to_bytes(),
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
