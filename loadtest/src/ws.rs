//! `loadtest ws`: WebSocket fan-out under a steady write load.
//!
//! M sockets are opened on `/ws`, spread over the URLs (socket i on url
//! i mod n), and every one must say `hello` before any write is sent. Then
//! writes (`POST /api/tasks`) go out open loop at `--rate` per second over
//! `--connections` HTTP connections, also spread over the URLs. Each 201
//! carries the seq of its event (`X-Taskraft-Seq`); the tool maps seq → the
//! time the write was *scheduled* (open loop: a client-side stall counts
//! against the server, not for it) and, for every socket that receives the
//! event with that seq, records delivery latency = arrival − scheduled send.
//! An event can reach a socket before the 201 reaches the writer; such
//! arrivals are parked until the seq is known. Events whose seq is not one
//! of this run's acknowledged writes (other clients, writes that failed or
//! timed out) are ignored for latency, but still checked for order.
//!
//! Completeness: every socket must receive every event of the run. Per
//! socket the tool counts misses (acknowledged writes never received),
//! gaps (a seq that is not last + 1), repeats (a seq at or below the last),
//! resyncs (`{"type":"resync"}` / close 4000) and reconnects. After a
//! resync or a dropped connection the socket reconnects with
//! `?since=<last seq>` (unless `--no-reconnect`), as the board does, so a
//! late event counts as late rather than lost if the node still has it.
//!
//! Everything runs on one thread: a socket costs a task and two small
//! buffers, so a thousand are cheap. The open-files limit is raised to fit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::http::Conn;
use crate::report::{self, Stats};
use crate::workload::{self, Op, Pool, Rng, Shape};

/// The close code taskraft uses for "reload and reconnect with since".
const RESYNC_CLOSE_CODE: u16 = 4000;
/// A socket that keeps losing its connection stops trying after this many.
const MAX_RECONNECTS: u32 = 20;

#[derive(clap::Args, Debug, Clone)]
pub struct WsArgs {
    /// Node URLs (http://host:port), repeated or comma-separated.
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    /// WebSocket connections, spread over the URLs.
    #[arg(long, short = 's', default_value_t = 100)]
    pub sockets: usize,
    /// Writes per second (open loop), spread over the URLs.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Recorded write phase.
    #[arg(long, short = 'd', default_value = "10s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Writes before the recorded phase (their events are checked for
    /// order but not measured).
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    pub warmup: Duration,
    /// After the last write: how long to wait for every socket to catch up.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub drain: Duration,
    /// HTTP connections that send the writes.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub connections: usize,
    /// Bytes of description per task (about 200 B of JSON at 150).
    #[arg(long, default_value_t = 150)]
    pub payload: usize,
    /// Socket handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// How long all sockets may take to connect and say hello.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub connect_timeout: Duration,
    /// Per-request timeout for the writes.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// Do not reconnect (with ?since=) after a resync or a dropped socket.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Diagnostic: re-arm TCP_QUICKACK after every frame, so this client
    /// acknowledges each segment at once. If delivery gets faster with it,
    /// the server holds small frames back (Nagle: no TCP_NODELAY) until the
    /// client's delayed ACK.
    #[arg(long)]
    pub quickack: bool,
    /// Exit with status 3 when any socket missed an event or resynced.
    #[arg(long)]
    pub fail_on_miss: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long, default_value = "taskraft-ws")]
    pub label: String,
}

/// What one socket saw over the whole run (across reconnects).
#[derive(Clone, Debug, Default)]
struct SocketStats {
    url: usize,
    node_id: Option<u64>,
    hello_seq: Option<u64>,
    /// The last event seq received (any event, ours or not).
    last_seq: u64,
    /// Events of this run's recorded writes received.
    received: u64,
    /// Times an event's seq was not last + 1, and the seqs skipped.
    gaps: u64,
    skipped: u64,
    /// Events at or below the last seq (should never happen).
    repeats: u64,
    resyncs: u32,
    reconnects: u32,
    /// Connections lost without a resync (error or close).
    drops: u32,
    connect_failures: u32,
    /// Stopped trying to (re)connect.
    gave_up: bool,
}

#[derive(Clone, Copy)]
struct Sent {
    /// When the write was scheduled (open loop).
    at: Instant,
    /// Sent during the recorded phase (not the warm-up).
    recorded: bool,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 120_000_000)
}

struct State {
    /// seq → when its write was scheduled, for this run's acknowledged writes.
    sent: HashMap<u64, Sent>,
    /// Arrivals of seqs not (yet) known: (socket, when). Resolved when the
    /// 201 with that seq comes back; what is left at the end is not ours.
    early: HashMap<u64, Vec<(u32, Instant)>>,
    sockets: Vec<SocketStats>,
    /// Every (socket, event) pair of the recorded writes, microseconds.
    delivery: Histogram<u64>,
    /// The same, by the url index of the socket.
    by_url: Vec<Histogram<u64>>,
    /// seq → (sockets that got it, the latest arrival).
    per_event: HashMap<u64, (u32, Instant)>,
    writes: Stats,
    /// 201s without an X-Taskraft-Seq header.
    missing_seq_header: u64,
    /// Sockets that said hello at least once.
    ready: usize,
}

impl State {
    fn acknowledged(&mut self, seq: u64, sent: Sent) {
        self.sent.insert(seq, sent);
        if let Some(arrivals) = self.early.remove(&seq) {
            for (socket, at) in arrivals {
                self.record(socket as usize, seq, sent, at);
            }
        }
    }

    fn event(&mut self, socket: usize, seq: u64, at: Instant) {
        let s = &mut self.sockets[socket];
        if seq <= s.last_seq {
            s.repeats += 1;
            return;
        }
        if s.last_seq != 0 && seq != s.last_seq + 1 {
            s.gaps += 1;
            s.skipped += seq - s.last_seq - 1;
        }
        s.last_seq = seq;
        match self.sent.get(&seq).copied() {
            Some(sent) => self.record(socket, seq, sent, at),
            None => self.early.entry(seq).or_default().push((socket as u32, at)),
        }
    }

    fn record(&mut self, socket: usize, seq: u64, sent: Sent, at: Instant) {
        if !sent.recorded {
            return;
        }
        let latency = micros(at.saturating_duration_since(sent.at));
        let _ = self.delivery.record(latency);
        let url = self.sockets[socket].url;
        let _ = self.by_url[url].record(latency);
        self.sockets[socket].received += 1;
        let entry = self.per_event.entry(seq).or_insert((0, at));
        entry.0 += 1;
        entry.1 = entry.1.max(at);
    }
}

/// What a text frame from taskraft is.
enum Frame {
    Event(u64),
    Hello { node_id: Option<u64>, seq: u64 },
    Resync,
    Other,
}

/// Events are by far the most frequent frame: their seq is read straight
/// from the text (`{"type":"event","seq":N,...}`, serde's field order), and
/// only anything else is parsed as JSON.
fn classify(text: &str) -> Frame {
    const EVENT: &str = r#"{"type":"event","seq":"#;
    if let Some(rest) = text.strip_prefix(EVENT) {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(seq) = rest[..digits].parse() {
            return Frame::Event(seq);
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Frame::Other;
    };
    match value["type"].as_str() {
        Some("event") => value["seq"].as_u64().map_or(Frame::Other, Frame::Event),
        Some("hello") => Frame::Hello {
            node_id: value["node_id"].as_u64(),
            seq: value["seq"].as_u64().unwrap_or(0),
        },
        Some("resync") => Frame::Resync,
        _ => Frame::Other,
    }
}

fn ws_url(base: &str, since: Option<u64>) -> String {
    let host = base
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/');
    match since {
        Some(since) => format!("ws://{host}/ws?since={since}{}", token_param("&")),
        None => format!("ws://{host}/ws{}", token_param("?")),
    }
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// TCP_QUICKACK for the next ACKs on this socket (Linux clears it again by
/// itself, hence once per frame).
fn set_quickack(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

async fn connect(base: &str, since: Option<u64>, within: Duration) -> Result<Socket, String> {
    let url = ws_url(base, since);
    let authority = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    // Small buffers: a thousand sockets at the 128 KiB default would be
    // 256 MiB of buffers for a few hundred bytes per event, and tungstenite
    // zeroes the free part of the read buffer before every read (a profile
    // at 16 KiB showed memset as the top symbol). An event is ~600 bytes.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let attempt = async {
        let stream = TcpStream::connect(&authority)
            .await
            .map_err(|e| format!("connect {authority}: {e}"))?;
        stream.set_nodelay(true).ok();
        let (socket, _) =
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                .await
                .map_err(|e| format!("handshake {url}: {e}"))?;
        Ok(socket)
    };
    tokio::time::timeout(within, attempt)
        .await
        .map_err(|_| format!("{url}: no handshake within {within:?}"))?
}

/// One socket for the whole run: connect, read, reconnect with `since`.
async fn socket_task(
    id: usize,
    base: String,
    state: Rc<RefCell<State>>,
    gate: Rc<Semaphore>,
    reconnect: bool,
    quickack: bool,
) {
    let mut since: Option<u64> = None;
    let mut greeted = false;
    let mut failures = 0u32;
    loop {
        let connected = {
            // Only the first connection queues for the handshake gate.
            let _permit = if greeted {
                None
            } else {
                gate.acquire().await.ok()
            };
            connect(&base, since, Duration::from_secs(10)).await
        };
        let mut socket = match connected {
            Ok(socket) => socket,
            Err(e) => {
                failures += 1;
                let give_up = failures > 5;
                {
                    let s = &mut state.borrow_mut().sockets[id];
                    s.connect_failures += 1;
                    s.gave_up = give_up;
                }
                if give_up {
                    eprintln!("loadtest ws: socket {id} gives up: {e}");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                continue;
            }
        };
        failures = 0;
        let mut resync = false;
        while let Some(message) = socket.next().await {
            let now = Instant::now();
            if quickack {
                set_quickack(socket.get_ref());
            }
            match message {
                Ok(Message::Text(text)) => match classify(text.as_str()) {
                    Frame::Event(seq) => state.borrow_mut().event(id, seq, now),
                    Frame::Hello { node_id, seq } => {
                        let mut st = state.borrow_mut();
                        let s = &mut st.sockets[id];
                        s.node_id = node_id.or(s.node_id);
                        if s.hello_seq.is_none() {
                            s.hello_seq = Some(seq);
                        }
                        if since.is_none() {
                            // The feed starts after `seq`.
                            s.last_seq = s.last_seq.max(seq);
                        }
                        if !greeted {
                            greeted = true;
                            st.ready += 1;
                        }
                    }
                    Frame::Resync => resync = true,
                    Frame::Other => {}
                },
                Ok(Message::Close(frame)) => {
                    if frame.is_some_and(|f| f.code == CloseCode::from(RESYNC_CLOSE_CODE)) {
                        resync = true;
                    }
                    break;
                }
                // Pings are answered by tungstenite itself.
                Ok(_) => {}
                Err(_) => break,
            }
        }
        {
            let s = &mut state.borrow_mut().sockets[id];
            if resync {
                s.resyncs += 1;
            } else {
                s.drops += 1;
            }
            if !reconnect || s.reconnects >= MAX_RECONNECTS {
                s.gave_up = true;
                return;
            }
            s.reconnects += 1;
            // Resume where this socket stands; the node replays from memory
            // what it still has, or says resync again.
            since = Some(s.last_seq).filter(|seq| *seq > 0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct WsOutcome {
    pub report: String,
    pub json: Value,
    /// Some socket missed an event, resynced, or gave up.
    pub incomplete: bool,
}

pub async fn run(args: &WsArgs) -> Result<WsOutcome, String> {
    if args.sockets == 0 || args.connections == 0 || args.rate <= 0.0 {
        return Err("--sockets, --connections and --rate must be positive".into());
    }
    let mut notes = Vec::new();
    if let Some(note) =
        crate::sys::raise_fd_limit(args.sockets as u64 + args.connections as u64 + 256)
    {
        eprintln!("loadtest ws: {note}");
        notes.push(note);
    }
    let cpu_at_start = crate::sys::cpu_seconds();
    let n_urls = args.urls.len();
    let state = Rc::new(RefCell::new(State {
        sent: HashMap::new(),
        early: HashMap::new(),
        sockets: (0..args.sockets)
            .map(|i| SocketStats {
                url: i % n_urls,
                ..SocketStats::default()
            })
            .collect(),
        delivery: histogram(),
        by_url: (0..n_urls).map(|_| histogram()).collect(),
        per_event: HashMap::new(),
        writes: Stats::default(),
        missing_seq_header: 0,
        ready: 0,
    }));

    // 1. Sockets: all connected and greeted before the first write.
    let connect_started = Instant::now();
    let gate = Rc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut socket_tasks = Vec::new();
    for id in 0..args.sockets {
        socket_tasks.push(tokio::task::spawn_local(socket_task(
            id,
            args.urls[id % n_urls].clone(),
            state.clone(),
            gate.clone(),
            !args.no_reconnect,
            args.quickack,
        )));
    }
    loop {
        let (ready, gave_up) = {
            let st = state.borrow();
            (st.ready, st.sockets.iter().filter(|s| s.gave_up).count())
        };
        if ready + gave_up >= args.sockets {
            break;
        }
        if connect_started.elapsed() > args.connect_timeout {
            for task in &socket_tasks {
                task.abort();
            }
            return Err(format!(
                "only {ready} of {} sockets said hello within {:?}",
                args.sockets, args.connect_timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    if state.borrow().ready == 0 {
        return Err("no socket could connect".into());
    }
    let rss_connected = crate::sys::rss_kib();

    // 2. Writes, open loop, spread over the nodes.
    let shape = Rc::new(Shape {
        payload: args.payload,
        consistency: None,
        idempotency: false,
        run_tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        etcd_keys: 1,
        path: None,
    });
    let pool = Pool::default();
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let mut writers = Vec::new();
    for writer in 0..args.connections {
        let mut conn = Conn::new(&args.urls[writer % n_urls]).with_timeout(args.timeout);
        let state = state.clone();
        let shape = shape.clone();
        let pool = pool.clone();
        let offset = interval.mul_f64(writer as f64 / args.connections as f64);
        writers.push(tokio::task::spawn_local(async move {
            let mut rng = Rng::new(writer as u64 + 1);
            let mut n: u64 = 0;
            loop {
                let at = start + offset + interval.mul_f64(n as f64);
                if at >= until {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                let reply =
                    workload::run(Op::Create, &mut conn, &pool, &shape, &mut rng, writer, n).await;
                let done = Instant::now();
                let recorded = at >= measure_from;
                let mut st = state.borrow_mut();
                if recorded {
                    st.writes
                        .record(Op::Create, reply.status, done.saturating_duration_since(at));
                }
                if reply.status == 201 {
                    match reply.seq {
                        Some(seq) => st.acknowledged(seq, Sent { at, recorded }),
                        None => st.missing_seq_header += 1,
                    }
                }
                n += 1;
            }
        }));
    }
    for writer in writers {
        writer.await.map_err(|e| format!("a writer failed: {e}"))?;
    }
    let writes_done = Instant::now();

    // 3. Drain: wait until every socket still connected has the last seq.
    let last_recorded = state
        .borrow()
        .sent
        .iter()
        .filter(|(_, s)| s.recorded)
        .map(|(seq, _)| *seq)
        .max();
    if let Some(last) = last_recorded {
        let deadline = writes_done + args.drain;
        loop {
            let behind = state
                .borrow()
                .sockets
                .iter()
                .filter(|s| !s.gave_up && s.last_seq < last)
                .count();
            if behind == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let drain_secs = writes_done.elapsed().as_secs_f64();
    for task in &socket_tasks {
        task.abort();
    }
    // An aborted task is dropped (and lets go of the state) when next polled.
    for task in socket_tasks {
        let _ = task.await;
    }
    let client_cpu = crate::sys::cpu_seconds() - cpu_at_start;
    let rss_end = crate::sys::rss_kib();

    let st = Rc::try_unwrap(state)
        .map_err(|_| "sockets still hold the state".to_string())?
        .into_inner();
    Ok(summarize(
        args,
        st,
        Timing {
            connect_secs,
            drain_secs,
            client_cpu,
            rss_connected,
            rss_end,
            wall: connect_started.elapsed().as_secs_f64(),
        },
        notes,
    ))
}

struct Timing {
    connect_secs: f64,
    drain_secs: f64,
    client_cpu: f64,
    rss_connected: Option<u64>,
    rss_end: Option<u64>,
    wall: f64,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn hist_json(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.5)),
        "p90": ms(h.value_at_quantile(0.9)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": h.mean() / 1000.0,
    })
}

fn hist_line(name: &str, h: &Histogram<u64>, secs: f64, errors: u64) -> String {
    let q = |q: f64| ms(h.value_at_quantile(q));
    format!(
        "{:<11} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}\n",
        name,
        h.len(),
        h.len() as f64 / secs,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        ms(h.max()),
        errors
    )
}

fn summarize(args: &WsArgs, st: State, t: Timing, notes: Vec<String>) -> WsOutcome {
    let secs = args.duration.as_secs_f64();
    let expected = st.sent.values().filter(|s| s.recorded).count() as u64;
    let sockets = st.sockets.len() as u64;
    let misses: Vec<u64> = st
        .sockets
        .iter()
        .map(|s| expected.saturating_sub(s.received))
        .collect();
    let missed_pairs: u64 = misses.iter().sum();
    let with_misses = misses.iter().filter(|m| **m > 0).count();
    let sum = |f: &dyn Fn(&SocketStats) -> u64| st.sockets.iter().map(f).sum::<u64>();
    let resyncs = sum(&|s| u64::from(s.resyncs));
    let reconnects = sum(&|s| u64::from(s.reconnects));
    let drops = sum(&|s| u64::from(s.drops));
    let gaps = sum(&|s| s.gaps);
    let skipped = sum(&|s| s.skipped);
    let repeats = sum(&|s| s.repeats);
    let connect_failures = sum(&|s| u64::from(s.connect_failures));
    let gave_up = st.sockets.iter().filter(|s| s.gave_up).count();
    let never_greeted = st.sockets.iter().filter(|s| s.hello_seq.is_none()).count();
    let complete = st
        .sockets
        .iter()
        .zip(&misses)
        .filter(|(s, m)| **m == 0 && s.resyncs == 0 && s.gaps == 0 && s.repeats == 0)
        .count();

    // Per event: when the last socket got it (only events every socket got).
    let mut everyone = histogram();
    let mut not_everyone = 0u64;
    for (seq, sent) in st.sent.iter().filter(|(_, s)| s.recorded) {
        match st.per_event.get(seq) {
            Some((count, last)) if u64::from(*count) == sockets => {
                let _ = everyone.record(micros(last.saturating_duration_since(sent.at)));
            }
            _ => not_everyone += 1,
        }
    }
    let unknown_seqs = st.early.len();

    let writes = st.writes.ops.get(&Op::Create).map(|w| (w.ok(), w.errors()));
    let (write_ok, write_errors) = writes.unwrap_or((0, 0));
    let per_url_count: Vec<usize> = (0..args.urls.len())
        .map(|u| st.sockets.iter().filter(|s| s.url == u).count())
        .collect();
    let node_of_url: Vec<Option<u64>> = (0..args.urls.len())
        .map(|u| {
            st.sockets
                .iter()
                .find(|s| s.url == u)
                .and_then(|s| s.node_id)
        })
        .collect();

    let mut out = format!(
        "{}: {} socket(s) over {} url(s) ({}), writes open loop at {} /s over {} connection(s), {:.1}s recorded\n",
        args.label,
        sockets,
        args.urls.len(),
        per_url_count
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        args.rate,
        args.connections,
        secs
    );
    out.push_str(&format!(
        "{:<11} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}\n",
        "op", "ok", "ok/s", "p50 ms", "p90 ms", "p99 ms", "p99.9ms", "max ms", "errors"
    ));
    for (op, stats) in &st.writes.ops {
        out.push_str(&report::line(op.name(), stats, secs));
    }
    out.push_str(&hist_line("delivery", &st.delivery, secs, missed_pairs));
    for (u, h) in st.by_url.iter().enumerate() {
        let name = match node_of_url[u] {
            Some(id) => format!(" via node {id}"),
            None => format!(" via url {}", u + 1),
        };
        out.push_str(&hist_line(&name, h, secs, 0));
    }
    out.push_str(&hist_line("all sockets", &everyone, secs, not_everyone));
    out.push_str(
        "  (create: write latency; delivery: every (socket, event) pair, scheduled send -> arrival;\n   all sockets: per event, until the last socket had it; errors = misses)\n",
    );
    out.push_str(&format!(
        "sockets: {} complete of {sockets}; {} with misses; {missed_pairs} missed (socket, event) pairs of {} expected; \
         resyncs {resyncs}, reconnects {reconnects}, drops {drops}, gaps {gaps} ({skipped} seqs skipped), repeats {repeats}, \
         connect failures {connect_failures}, gave up {gave_up}, never said hello {never_greeted}\n",
        complete,
        with_misses,
        expected * sockets,
    ));
    if st.missing_seq_header > 0 {
        out.push_str(&format!(
            "WARNING: {} 201s had no X-Taskraft-Seq header: their events cannot be matched\n",
            st.missing_seq_header
        ));
    }
    let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0));
    out.push_str(&format!(
        "setup: sockets connected in {:.2}s; drain {:.2}s after the last write; client CPU {:.2}s ({:.0}% of one core), RSS {} MiB connected, {} MiB at the end\n",
        t.connect_secs,
        t.drain_secs,
        t.client_cpu,
        t.client_cpu / t.wall.max(1e-9) * 100.0,
        mib(t.rss_connected),
        mib(t.rss_end),
    ));
    let client_share = t.client_cpu / t.wall.max(1e-9);
    if client_share > 0.7 {
        out.push_str(&format!(
            "WARNING: the client itself used {:.0}% of its one thread: delivery latencies include client-side queueing; use fewer sockets or a lower rate\n",
            client_share * 100.0
        ));
    }
    for note in &notes {
        out.push_str(&format!("note: {note}\n"));
    }

    let json = json!({
        "label": args.label,
        "mode": "ws",
        "urls": args.urls,
        "sockets": sockets,
        "sockets_per_url": per_url_count,
        "node_id_per_url": node_of_url,
        "rate": args.rate,
        "connections": args.connections,
        "duration_s": secs,
        "warmup_s": args.warmup.as_secs_f64(),
        "quickack": args.quickack,
        "writes": st.writes.ops.get(&Op::Create).map(|w| report::summary(w, secs)),
        "writes_ok": write_ok,
        "write_errors": write_errors,
        "writes_without_seq_header": st.missing_seq_header,
        "delivery_ms": hist_json(&st.delivery),
        "delivery_ms_by_url": st.by_url.iter().map(hist_json).collect::<Vec<_>>(),
        "all_sockets_ms": hist_json(&everyone),
        "events_not_delivered_to_every_socket": not_everyone,
        "completeness": {
            "expected_events_per_socket": expected,
            "expected_pairs": expected * sockets,
            "missed_pairs": missed_pairs,
            "sockets_complete": complete,
            "sockets_with_misses": with_misses,
            "resyncs": resyncs,
            "reconnects": reconnects,
            "drops": drops,
            "gaps": gaps,
            "skipped_seqs": skipped,
            "repeats": repeats,
            "connect_failures": connect_failures,
            "gave_up": gave_up,
            "never_said_hello": never_greeted,
            "foreign_seqs_seen": unknown_seqs,
        },
        "per_socket": st.sockets.iter().zip(&misses).map(|(s, m)| json!({
            "url": s.url, "node_id": s.node_id, "hello_seq": s.hello_seq, "last_seq": s.last_seq,
            "received": s.received, "missed": m, "resyncs": s.resyncs, "reconnects": s.reconnects,
            "drops": s.drops, "gaps": s.gaps, "repeats": s.repeats, "gave_up": s.gave_up,
        })).collect::<Vec<_>>(),
        "connect_s": t.connect_secs,
        "drain_s": t.drain_secs,
        "client_cpu_s": t.client_cpu,
        "client_rss_kib": {"connected": t.rss_connected, "end": t.rss_end},
        "notes": notes,
    });
    let incomplete = missed_pairs > 0
        || resyncs > 0
        || gaps > 0
        || repeats > 0
        || gave_up > 0
        || never_greeted > 0
        || expected == 0;
    WsOutcome {
        report: out,
        json,
        incomplete,
    }
}

/// `?token=` (after `sep`) with `$TASKRAFT_TOKEN`, for nodes with auth on.
fn token_param(sep: &str) -> String {
    match std::env::var("TASKRAFT_TOKEN") {
        Ok(token) if !token.is_empty() => format!("{sep}token={token}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_frames_are_read_without_a_json_parse() {
        assert!(matches!(
            classify(r#"{"type":"event","seq":42,"raft_index":7}"#),
            Frame::Event(42)
        ));
        assert!(matches!(
            classify(r#"{"seq":9,"type":"event"}"#),
            Frame::Event(9)
        ));
        assert!(matches!(
            classify(r#"{"type":"hello","node_id":2,"seq":17}"#),
            Frame::Hello {
                node_id: Some(2),
                seq: 17
            }
        ));
        assert!(matches!(classify(r#"{"type":"resync"}"#), Frame::Resync));
        assert!(matches!(classify(r#"{"type":"cluster"}"#), Frame::Other));
        assert!(matches!(classify("not json"), Frame::Other));
    }

    #[test]
    fn early_arrivals_count_once_the_seq_is_known_and_gaps_are_seen() {
        let now = Instant::now();
        let mut st = State {
            sent: HashMap::new(),
            early: HashMap::new(),
            sockets: vec![SocketStats::default(), SocketStats::default()],
            delivery: histogram(),
            by_url: vec![histogram()],
            per_event: HashMap::new(),
            writes: Stats::default(),
            missing_seq_header: 0,
            ready: 2,
        };
        st.sockets[0].last_seq = 10;
        st.sockets[1].last_seq = 10;
        st.event(0, 11, now + Duration::from_millis(3));
        assert_eq!(st.sockets[0].received, 0, "parked until the 201");
        st.acknowledged(
            11,
            Sent {
                at: now,
                recorded: true,
            },
        );
        assert_eq!(st.sockets[0].received, 1);
        st.event(1, 11, now + Duration::from_millis(5));
        st.event(1, 11, now + Duration::from_millis(6));
        st.event(1, 13, now + Duration::from_millis(7));
        assert_eq!(st.sockets[1].received, 1);
        assert_eq!(st.sockets[1].repeats, 1);
        assert_eq!((st.sockets[1].gaps, st.sockets[1].skipped), (1, 1));
        assert_eq!(st.delivery.len(), 2);
        assert_eq!(st.per_event[&11].0, 2);
    }
}
