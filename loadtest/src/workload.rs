//! What the virtual clients do: a weighted mix of operations against
//! taskraft's REST API, or etcd's JSON gateway for comparison.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::http::{Conn, Reply};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Create,
    Get,
    Update,
    List,
    Delete,
    /// `POST /api/tasks/{id}/comments` on an existing task, `--payload`
    /// characters of body.
    Comment,
    /// etcd: `POST /v3/kv/put`, a new key each time.
    EtcdPut,
    /// etcd: `POST /v3/kv/range` of a preloaded key (linearizable).
    EtcdRange,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Get => "get",
            Op::Update => "update",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Comment => "comment",
            Op::EtcdPut => "etcd-put",
            Op::EtcdRange => "etcd-range",
        }
    }

    /// Operations that need existing tasks (or keys) to work on.
    pub fn needs_pool(self) -> bool {
        matches!(
            self,
            Op::Get | Op::Update | Op::Delete | Op::Comment | Op::EtcdRange
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Op, String> {
        [
            Op::Create,
            Op::Get,
            Op::Update,
            Op::List,
            Op::Delete,
            Op::Comment,
            Op::EtcdPut,
            Op::EtcdRange,
        ]
        .into_iter()
        .find(|op| op.name() == s)
        .ok_or_else(|| format!("unknown operation `{s}`"))
    }
}

/// `create=60,get=30,update=10`: operations by percentage (weights).
#[derive(Clone, Debug)]
pub struct Mix(pub Vec<(Op, u32)>);

impl FromStr for Mix {
    type Err = String;
    fn from_str(text: &str) -> Result<Mix, String> {
        let mut mix = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (op, weight) = match part.split_once('=') {
                Some((op, w)) => (
                    op.parse()?,
                    w.parse().map_err(|_| format!("bad weight in `{part}`"))?,
                ),
                None => (part.parse()?, 100),
            };
            mix.push((op, weight));
        }
        if mix.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            return Err("the mix has no weight".into());
        }
        Ok(Mix(mix))
    }
}

impl Mix {
    pub fn pick(&self, rng: &mut Rng) -> Op {
        let total: u32 = self.0.iter().map(|(_, w)| w).sum();
        let mut roll = (rng.next() % u64::from(total)) as u32;
        for (op, weight) in &self.0 {
            if roll < *weight {
                return *op;
            }
            roll -= weight;
        }
        self.0[0].0
    }

    pub fn needs_pool(&self) -> bool {
        self.0.iter().any(|(op, w)| *w > 0 && op.needs_pool())
    }
}

/// xorshift64*: seeded, so runs are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Tasks (id, version) the clients share, for get/update/delete.
#[derive(Clone, Default)]
pub struct Pool(Rc<RefCell<Vec<(String, u64)>>>);

impl Pool {
    pub fn add(&self, id: String, version: u64) {
        self.0.borrow_mut().push((id, version));
    }

    fn pick(&self, rng: &mut Rng) -> Option<(usize, String, u64)> {
        let pool = self.0.borrow();
        if pool.is_empty() {
            return None;
        }
        let at = (rng.next() % pool.len() as u64) as usize;
        Some((at, pool[at].0.clone(), pool[at].1))
    }

    /// The ids of the tasks in the pool.
    pub fn ids(&self) -> Vec<String> {
        self.0.borrow().iter().map(|(id, _)| id.clone()).collect()
    }

    fn set_version(&self, id: &str, version: u64) {
        if let Some(entry) = self.0.borrow_mut().iter_mut().find(|(i, _)| i == id) {
            entry.1 = version;
        }
    }

    fn remove(&self, id: &str) {
        self.0.borrow_mut().retain(|(i, _)| i != id);
    }
}

/// Settings every operation needs.
pub struct Shape {
    /// Bytes of description (taskraft) or value (etcd) per write.
    pub payload: usize,
    pub consistency: Option<String>,
    pub idempotency: bool,
    /// Distinguishes this run's etcd keys from other runs'.
    pub run_tag: String,
    /// etcd-range reads keys read/000000 .. read/<etcd_keys - 1>.
    pub etcd_keys: u64,
    /// `list`: the path to GET, a template (`seed::fill`).
    pub path: Option<String>,
}

fn filler(len: usize) -> String {
    "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// Standard base64, for etcd's JSON gateway.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs one operation; the reply's status is what gets counted.
pub async fn run(
    op: Op,
    conn: &mut Conn,
    pool: &Pool,
    shape: &Shape,
    rng: &mut Rng,
    client: usize,
    n: u64,
) -> Reply {
    let query = shape
        .consistency
        .as_ref()
        .map(|c| format!("?consistency={c}"))
        .unwrap_or_default();
    match op {
        Op::Create => {
            let body = json!({"title": format!("load {client}-{n}"), "description": filler(shape.payload)});
            let mut headers = Vec::new();
            if shape.idempotency {
                headers.push(("idempotency-key", format!("{}-{client}-{n}", shape.run_tag)));
            }
            let reply = conn
                .request(
                    Method::POST,
                    "/api/tasks",
                    &headers,
                    Some(Bytes::from(body.to_string())),
                )
                .await;
            if reply.status == 201 {
                if let Ok(task) = serde_json::from_slice::<Value>(&reply.body) {
                    if let Some(id) = task["id"].as_str() {
                        pool.add(id.to_string(), task["version"].as_u64().unwrap_or(1));
                    }
                }
            }
            reply
        }
        Op::Get => match pool.pick(rng) {
            Some((_, id, _)) => {
                conn.request(Method::GET, &format!("/api/tasks/{id}{query}"), &[], None)
                    .await
            }
            None => {
                conn.request(Method::GET, &format!("/api/tasks{query}"), &[], None)
                    .await
            }
        },
        Op::List => {
            if let Some(template) = &shape.path {
                let path = crate::seed::fill(template, rng);
                return conn.request(Method::GET, &path, &[], None).await;
            }
            let sep = if query.is_empty() { "?" } else { "&" };
            conn.request(
                Method::GET,
                &format!("/api/tasks{query}{sep}limit=50"),
                &[],
                None,
            )
            .await
        }
        Op::Update => {
            let Some((_, id, version)) = pool.pick(rng) else {
                return Reply::failed();
            };
            let priority = ["low", "medium", "high", "urgent"][(rng.next() % 4) as usize];
            let body = json!({"priority": priority, "position": (rng.next() % 1_000_000) as f64});
            let reply = conn
                .request(
                    Method::PATCH,
                    &format!("/api/tasks/{id}"),
                    &[("if-match", format!("\"{version}\""))],
                    Some(Bytes::from(body.to_string())),
                )
                .await;
            let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
            match (reply.status, parsed) {
                (200, Some(task)) => {
                    pool.set_version(&id, task["version"].as_u64().unwrap_or(version))
                }
                (412, Some(error)) => pool.set_version(
                    &id,
                    error["error"]["current_version"]
                        .as_u64()
                        .unwrap_or(version),
                ),
                (404, _) => pool.remove(&id),
                _ => {}
            }
            reply
        }
        Op::Delete => {
            let Some((_, id, _)) = pool.pick(rng) else {
                return Reply::failed();
            };
            pool.remove(&id);
            conn.request(Method::DELETE, &format!("/api/tasks/{id}"), &[], None)
                .await
        }
        Op::Comment => {
            let Some((_, id, _)) = pool.pick(rng) else {
                return Reply::failed();
            };
            let body = json!({ "body": format!("{client}-{n} {}", filler(shape.payload)) });
            conn.request(
                Method::POST,
                &format!("/api/tasks/{id}/comments"),
                &[],
                Some(Bytes::from(body.to_string())),
            )
            .await
        }
        Op::EtcdPut => {
            let key = format!("task/{}/{client}/{n}", shape.run_tag);
            let value = json!({"title": format!("load {client}-{n}"), "description": filler(shape.payload)}).to_string();
            let body = json!({"key": base64(key.as_bytes()), "value": base64(value.as_bytes())});
            conn.request(
                Method::POST,
                "/v3/kv/put",
                &[],
                Some(Bytes::from(body.to_string())),
            )
            .await
        }
        Op::EtcdRange => {
            let key = format!("read/{:06}", rng.next() % shape.etcd_keys.max(1));
            let body = json!({"key": base64(key.as_bytes())});
            conn.request(
                Method::POST,
                "/v3/kv/range",
                &[],
                Some(Bytes::from(body.to_string())),
            )
            .await
        }
    }
}

/// Writes the etcd keys `read/NNNNNN` for the given numbers (the etcd-range
/// key space), each with the record a create would carry.
pub async fn preload_etcd(conn: &mut Conn, keys: &[usize], payload: usize) -> Result<(), String> {
    for i in keys {
        let value = json!({"title": format!("load preload-{i}"), "description": filler(payload)})
            .to_string();
        let body = json!({"key": base64(format!("read/{i:06}").as_bytes()), "value": base64(value.as_bytes())});
        let reply = conn
            .request(
                Method::POST,
                "/v3/kv/put",
                &[],
                Some(Bytes::from(body.to_string())),
            )
            .await;
        if reply.status != 200 {
            return Err(format!("preloading etcd: status {}", reply.status));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"task/1"), "dGFzay8x");
    }

    #[test]
    fn a_mix_picks_by_weight() {
        let mix: Mix = "create=75,get=25".parse().unwrap();
        let mut rng = Rng::new(7);
        let creates = (0..10_000)
            .filter(|_| mix.pick(&mut rng) == Op::Create)
            .count();
        assert!((7_000..8_000).contains(&creates), "{creates}");
        assert!("create=x".parse::<Mix>().is_err());
        assert!("fly=1".parse::<Mix>().is_err());
        assert!(mix.needs_pool());
    }
}
