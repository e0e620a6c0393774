//! The harness's TCP proxy: one listener per directed node→node Raft link,
//! so the nemesis can slow, hold or cut one direction between two nodes
//! without touching the nodes.
//!
//! taskraft's transport opens one outbound connection per peer, so the
//! link *i*→*j* is exactly the connections node *i* dials to the address
//! its `TASKRAFT_PEERS` gives for *j* — the proxy's. Modes ([`LinkMode`]):
//!
//! - `Pass`: bytes go through as they come.
//! - `Delay`: every chunk waits `base ± jitter` ms, in order (TCP never
//!   reorders, so neither do we: a chunk is due no earlier than the last).
//! - `Blackhole`: accept and hold. Established connections stop being read
//!   (the sender's buffers fill and it stalls), new ones are accepted and
//!   left hanging; when the mode ends they carry on — a long stall, the
//!   way a dead route looks to TCP.
//! - `Drop`: accept and discard. Every byte is read and thrown away, no
//!   reset, nothing comes back: the sender's writes all succeed. When the
//!   mode ends the stream carries on from wherever it then is (a relay
//!   that lost what it was given), so the receiver sees the middle of a
//!   stream; connections accepted meanwhile are dialed onward only then.
//! - `Refuse`: connections are shut down, new ones are closed at once:
//!   a reset link, and the loopback mode's partition.
//! - `Flaky`: each connection is reset after a random lifetime up to
//!   `max_life_ms`: packet loss as the application sees it (reconnects).
//!
//! Bytes are never dropped from the middle of a stream: TCP does not do
//! that, and the node's framing rightly assumes it.
//!
//! Not here: packet-level loss or reordering (`tc netem` is not available
//! on this kernel).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::rng::Rng;

/// The most a relay reads (and forwards, or drops) at once.
const RELAY_CHUNK: usize = 1024;

/// What a link does with its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward as it comes.
    Pass,
    /// Hold each chunk `base_ms` plus up to `jitter_ms` more.
    Delay {
        /// The fixed part, milliseconds.
        base_ms: u64,
        /// The random part's maximum, milliseconds.
        jitter_ms: u64,
    },
    /// Accept and hold; forward nothing until the mode changes.
    Blackhole,
    /// Accept, read and discard; forward nothing until the mode changes.
    Drop,
    /// Shut connections down and close new ones.
    Refuse,
    /// Reset each connection after a random lifetime.
    Flaky {
        /// The longest lifetime, milliseconds.
        max_life_ms: u64,
    },
}

impl LinkMode {
    /// A short name for fault logs.
    pub fn describe(&self) -> String {
        match self {
            LinkMode::Pass => "pass".into(),
            LinkMode::Delay { base_ms, jitter_ms } => format!("delay {base_ms}±{jitter_ms}ms"),
            LinkMode::Blackhole => "blackhole".into(),
            LinkMode::Drop => "drop".into(),
            LinkMode::Refuse => "refuse".into(),
            LinkMode::Flaky { max_life_ms } => format!("flaky (resets within {max_life_ms}ms)"),
        }
    }
}

/// What one link's threads share.
struct LinkState {
    /// The current mode.
    mode: Mutex<LinkMode>,
    /// Bumped when the mode becomes `Refuse`: connections of an older
    /// generation shut themselves down.
    generation: AtomicU64,
    /// Delays and lifetimes.
    rng: Mutex<Rng>,
    /// The whole proxy is stopping.
    stop: Arc<AtomicBool>,
    /// Where the link goes.
    upstream: SocketAddr,
    /// The source address to connect from (namespace mode).
    bind: Option<IpAddr>,
    /// Connections accepted, for the report.
    accepted: AtomicU64,
}

impl LinkState {
    fn mode(&self) -> LinkMode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random(&self, n: u64) -> u64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).below(n)
    }
}

/// One directed link's listener.
struct Link {
    /// Where node `from` dials for `to`.
    listen: SocketAddr,
    state: Arc<LinkState>,
    acceptor: Option<JoinHandle<()>>,
}

/// Every directed link of a run.
pub struct Proxies {
    links: BTreeMap<(usize, usize), Link>,
    stop: Arc<AtomicBool>,
}

impl Proxies {
    /// Starts one listener per `(from, to, listen, upstream, bind)`; a
    /// listen port of 0 picks a free one.
    pub fn start(
        links: &[(usize, usize, SocketAddr, SocketAddr, Option<IpAddr>)],
        seed: u64,
    ) -> Result<Proxies, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut proxies = Proxies {
            links: BTreeMap::new(),
            stop: stop.clone(),
        };
        for &(from, to, listen, upstream, bind) in links {
            let listener = TcpListener::bind(listen).map_err(|e| format!("proxy {listen}: {e}"))?;
            let listen = listener.local_addr().map_err(|e| e.to_string())?;
            listener
                .set_nonblocking(true)
                .map_err(|e| format!("proxy {listen}: {e}"))?;
            let state = Arc::new(LinkState {
                mode: Mutex::new(LinkMode::Pass),
                generation: AtomicU64::new(0),
                rng: Mutex::new(Rng::derive(seed, (from * 10 + to) as u64)),
                stop: stop.clone(),
                upstream,
                bind,
                accepted: AtomicU64::new(0),
            });
            let accept_state = state.clone();
            let acceptor = std::thread::Builder::new()
                .name(format!("proxy-{from}-{to}"))
                .spawn(move || accept_loop(listener, accept_state))
                .map_err(|e| e.to_string())?;
            proxies.links.insert(
                (from, to),
                Link {
                    listen,
                    state,
                    acceptor: Some(acceptor),
                },
            );
        }
        Ok(proxies)
    }

    /// The link that carries `from`→`to`: its own, else the one every
    /// source shares (`from` 0, loopback mode).
    fn link(&self, from: usize, to: usize) -> Option<&Link> {
        self.links
            .get(&(from, to))
            .or_else(|| self.links.get(&(0, to)))
    }

    /// Where `from` must dial to reach `to` (`from` 0: any source).
    pub fn addr(&self, from: usize, to: usize) -> Option<SocketAddr> {
        self.link(from, to).map(|l| l.listen)
    }

    /// Sets the mode of the link `from`→`to`.
    pub fn set(&self, from: usize, to: usize, mode: LinkMode) {
        if let Some(link) = self.link(from, to) {
            *link.state.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
            if mode == LinkMode::Refuse {
                link.state.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Every link back to `Pass`.
    pub fn heal(&self) {
        for &(from, to) in self.links.keys() {
            self.set(from, to, LinkMode::Pass);
        }
    }

    /// Connections accepted on every link, in all.
    pub fn accepted(&self) -> u64 {
        self.links
            .values()
            .map(|l| l.state.accepted.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for link in self.links.values_mut() {
            if let Some(handle) = link.acceptor.take() {
                let _ = handle.join();
            }
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<LinkState>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                state.accepted.fetch_add(1, Ordering::Relaxed);
                let state = state.clone();
                let _ = std::thread::Builder::new()
                    .name("proxy-conn".into())
                    .spawn(move || serve(client, state));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// One accepted connection: hold it while blackholed, refuse it, or dial
/// upstream and pump both ways.
fn serve(mut client: TcpStream, state: Arc<LinkState>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_millis(20)));
    let generation = state.generation.load(Ordering::SeqCst);
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        match state.mode() {
            LinkMode::Blackhole => std::thread::sleep(Duration::from_millis(20)),
            LinkMode::Drop => match client.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            },
            LinkMode::Refuse => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            _ => break,
        }
    }
    let Ok(upstream) = dial(&state) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let life = match state.mode() {
        LinkMode::Flaky { max_life_ms } => {
            Some(Instant::now() + Duration::from_millis(50 + state.random(max_life_ms.max(1))))
        }
        _ => None,
    };
    let dead = Arc::new(AtomicBool::new(false));
    let pumps = [
        (client.try_clone(), upstream.try_clone()),
        (upstream.try_clone(), client.try_clone()),
    ];
    let mut handles = Vec::new();
    for (from, to) in pumps {
        let (Ok(from), Ok(to)) = (from, to) else {
            dead.store(true, Ordering::SeqCst);
            break;
        };
        let (state, dead) = (state.clone(), dead.clone());
        if let Ok(h) = std::thread::Builder::new()
            .name("proxy-pump".into())
            .spawn(move || pump(from, to, &state, &dead, generation, life))
        {
            handles.push(h);
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}

fn dial(state: &LinkState) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(ip) = state.bind {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&state.upstream.into(), Duration::from_secs(1))?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Copies `from` to `to` through a writer thread that releases each chunk
/// when it is due; ends both when either side ends or the link says so.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    state: &LinkState,
    dead: &AtomicBool,
    generation: u64,
    life: Option<Instant>,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer_dead = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut to = to.try_clone();
        let writer_dead = writer_dead.clone();
        std::thread::spawn(move || {
            let Ok(to) = to.as_mut() else { return };
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if to.write_all(&chunk).is_err() {
                    writer_dead.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    };
    let mut last_due = Instant::now();
    // Small reads, as a relay with a fixed buffer makes them: a frame of a
    // few kilobytes spans several, so a `Drop` that starts or ends between
    // two of them cuts it, and the receiver meets the middle of a frame.
    let mut buf = vec![0u8; RELAY_CHUNK];
    loop {
        let killed = state.stop.load(Ordering::SeqCst)
            || dead.load(Ordering::SeqCst)
            || writer_dead.load(Ordering::SeqCst)
            || state.generation.load(Ordering::SeqCst) != generation
            || life.is_some_and(|l| Instant::now() > l);
        if killed {
            break;
        }
        let mode = state.mode();
        if mode == LinkMode::Blackhole {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(_) if mode == LinkMode::Drop => {}
            Ok(n) => {
                let now = Instant::now();
                let due = match mode {
                    LinkMode::Delay { base_ms, jitter_ms } => {
                        now + Duration::from_millis(base_ms + state.random(jitter_ms + 1))
                    }
                    _ => now,
                };
                last_due = last_due.max(due);
                if tx.send((last_due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    dead.store(true, Ordering::SeqCst);
    drop(tx);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    let _ = writer.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn proxy_to(upstream: SocketAddr) -> Proxies {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        Proxies::start(&[(1, 2, listen, upstream, None)], 1).expect("the proxy starts")
    }

    fn round_trip(addr: SocketAddr) -> std::io::Result<Duration> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let start = Instant::now();
        stream.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf)?;
        assert_eq!(&buf, b"ping");
        Ok(start.elapsed())
    }

    #[test]
    fn a_passing_link_forwards_both_ways() {
        let proxies = proxy_to(echo_server());
        let addr = proxies.addr(1, 2).expect("link 1->2");
        assert!(round_trip(addr).expect("an echo") < Duration::from_millis(500));
    }

    #[test]
    fn a_delayed_link_holds_each_chunk() {
        let proxies = proxy_to(echo_server());
        proxies.set(
            1,
            2,
            LinkMode::Delay {
                base_ms: 150,
                jitter_ms: 0,
            },
        );
        let took = round_trip(proxies.addr(1, 2).expect("link")).expect("an echo");
        // Both directions are delayed: at least two delays.
        assert!(took >= Duration::from_millis(300), "took {took:?}");
    }

    #[test]
    fn a_refusing_link_closes_connections() {
        let proxies = proxy_to(echo_server());
        proxies.set(1, 2, LinkMode::Refuse);
        assert!(round_trip(proxies.addr(1, 2).expect("link")).is_err());
        proxies.heal();
        assert!(round_trip(proxies.addr(1, 2).expect("link")).is_ok());
    }

    #[test]
    fn a_dropping_link_swallows_bytes_without_a_reset() {
        let proxies = proxy_to(echo_server());
        let addr = proxies.addr(1, 2).expect("link");
        let mut stream = TcpStream::connect(addr).expect("connected");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        assert!(round_trip(addr).is_ok(), "passes before");
        proxies.set(1, 2, LinkMode::Drop);
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(b"lost").expect("the write succeeds");
        let mut buf = [0u8; 4];
        assert!(stream.read_exact(&mut buf).is_err(), "nothing comes back");
        proxies.heal();
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(b"kept").expect("the link carries on");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        stream
            .read_exact(&mut buf)
            .expect("delivered after healing");
        assert_eq!(&buf, b"kept", "what was sent while dropping is gone");
    }

    #[test]
    fn a_blackholed_link_holds_and_then_delivers() {
        let proxies = proxy_to(echo_server());
        let addr = proxies.addr(1, 2).expect("link");
        proxies.set(1, 2, LinkMode::Blackhole);
        let mut stream = TcpStream::connect(addr).expect("accepted while blackholed");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        stream.write_all(b"ping").expect("written into the buffers");
        let mut buf = [0u8; 4];
        assert!(stream.read_exact(&mut buf).is_err(), "nothing comes back");
        proxies.heal();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        stream
            .read_exact(&mut buf)
            .expect("delivered after healing");
        assert_eq!(&buf, b"ping");
    }
}
