//! Where the nodes live on the network, and how a partition cuts them.
//!
//! **Namespaces** (the default, as root): node *i* of a run gets network
//! namespace `tjr<x>n<i>` with `eth0` at `10.231.<x>.<i>/24`, a veth whose
//! other end is on the run's bridge `tjr<x>br` in the root namespace
//! (`10.231.<x>.254`, where the harness and its clients are). Each
//! namespace has its own loopback, so each node's MariaDB listens on
//! 127.0.0.1:3306 of its own. The directed Raft link *i*→*j* goes through
//! the harness's proxy at its own address `10.231.<x>.<10i+j>` (on the
//! bridge): every node is given the same peer list (the real addresses —
//! taskraft derives its cluster id from that list, so it must be the same
//! everywhere), and a DNAT rule in node *i*'s namespace sends what it
//! dials for *j* to that proxy, which connects onward *from* that address — so inside the
//! namespaces the link has a name an iptables rule can drop, in one
//! direction or both, while client traffic from `.254` is never cut (a
//! client can still reach an isolated node: that is how a stale read would
//! show). `<x>` is claimed per run by creating the bridge (an atomic
//! `ip link add`), so concurrent runs get different subnets and names.
//!
//! **Loopback** (the fallback when namespaces cannot be made): every
//! process on 127.0.0.1 with its own ports. With one peer list for all,
//! there is one proxy per *destination* node (nothing on loopback tells
//! the sources apart), so a cut of *i*→*j* is the proxy refusing
//! everything bound for *j*: partitions there are coarser (inbound cuts).
//!
//! Everything created is removed on drop (namespaces take their rules and
//! veth ends with them); a run that died without cleaning is swept by the
//! next one, which finds its owner PID gone.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::os;

/// How the nodes are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One network namespace per node, a bridge, iptables partitions.
    Namespaces,
    /// Everything on 127.0.0.1; partitions through the proxy.
    Loopback,
}

/// What the run asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Namespaces if they can be made, else loopback.
    Auto,
    /// Namespaces or fail.
    Namespaces,
    /// Loopback only.
    Loopback,
}

/// Every node's HTTP port (namespace mode: each node has its own address).
pub const HTTP_PORT: u16 = 8080;
/// Every node's Raft port (namespace mode).
pub const RAFT_PORT: u16 = 9090;
/// The proxy's port on each link address (namespace mode).
pub const PROXY_PORT: u16 = 7000;

/// Where the harness notes which runs own which names.
const OWNERS: &str = "/run/taskraft-jepsen";

/// The run's network.
pub struct Network {
    /// Namespaces or loopback.
    pub mode: Mode,
    /// The run's subnet byte `<x>` (namespace mode).
    subnet: u8,
    /// Nodes, numbered 1..=nodes.
    nodes: usize,
    /// Why namespaces were not used, for the report.
    pub fallback_reason: Option<String>,
}

fn prefix(x: u8) -> String {
    format!("tjr{x}")
}

impl Network {
    /// Sets up the network for `nodes` nodes (at most 5).
    pub fn create(nodes: usize, choice: Choice) -> Result<Network, String> {
        assert!((1..=5).contains(&nodes), "1 to 5 nodes");
        let loopback = |reason: Option<String>| Network {
            mode: Mode::Loopback,
            subnet: 0,
            nodes,
            fallback_reason: reason,
        };
        if choice == Choice::Loopback {
            return Ok(loopback(None));
        }
        match Network::create_namespaces(nodes) {
            Ok(network) => Ok(network),
            Err(e) if choice == Choice::Auto => Ok(loopback(Some(e))),
            Err(e) => Err(e),
        }
    }

    fn create_namespaces(nodes: usize) -> Result<Network, String> {
        if !os::is_root() {
            return Err("not root".into());
        }
        os::run(Command::new("iptables").arg("--version"))
            .map_err(|e| format!("iptables is missing ({e}); apt-get install iptables"))?;
        sweep_stale();
        let start = (std::process::id() % 200) as u8 + 20;
        let used = os::run(Command::new("ip").args(["-4", "-o", "addr"]))
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut claimed = None;
        for k in 0..230u16 {
            let x = (20 + (u16::from(start) - 20 + k) % 230) as u8;
            if used.contains(&format!("10.231.{x}.")) {
                continue;
            }
            if os::ip(&["link", "add", &format!("{}br", prefix(x)), "type", "bridge"]).is_ok() {
                claimed = Some(x);
                break;
            }
        }
        let x = claimed.ok_or("no free 10.231.x.0/24 subnet")?;
        let _ = std::fs::create_dir_all(OWNERS);
        let _ = std::fs::write(
            Path::new(OWNERS).join(prefix(x)),
            std::process::id().to_string(),
        );
        let network = Network {
            mode: Mode::Namespaces,
            subnet: x,
            nodes,
            fallback_reason: None,
        };
        // From here on, drop cleans up whatever was made.
        network.build()?;
        Ok(network)
    }

    fn build(&self) -> Result<(), String> {
        let p = prefix(self.subnet);
        let bridge = format!("{p}br");
        os::ip(&["link", "set", &bridge, "up"])?;
        let mut bridge_ips = vec![self.client_ip()];
        for i in 1..=self.nodes {
            for j in 1..=self.nodes {
                if i != j {
                    bridge_ips.push(self.link_ip(i, j));
                }
            }
        }
        for ip in bridge_ips {
            os::ip(&["addr", "add", &format!("{ip}/24"), "dev", &bridge])?;
        }
        for i in 1..=self.nodes {
            let ns = format!("{p}n{i}");
            let (host, peer) = (format!("{p}v{i}"), format!("{p}p{i}"));
            os::ip(&["netns", "add", &ns])?;
            os::ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
            os::ip(&["link", "set", &peer, "netns", &ns])?;
            os::ip(&["link", "set", &host, "master", &bridge])?;
            os::ip(&["link", "set", &host, "up"])?;
            os::ip(&["-n", &ns, "link", "set", &peer, "name", "eth0"])?;
            let addr = format!("{}/24", self.node_ip(i));
            os::ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            os::ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            os::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            self.iptables(i, &["-F"])?;
        }
        // Every node is configured with the same peer list (the real
        // addresses); inside node i's namespace, connections to peer j's
        // Raft port are redirected to the proxy of the link i->j.
        for i in 1..=self.nodes {
            for j in (1..=self.nodes).filter(|&j| j != i) {
                let (dst, port) = (self.node_ip(j).to_string(), RAFT_PORT.to_string());
                let to = format!("{}:{PROXY_PORT}", self.link_ip(i, j));
                self.iptables(
                    i,
                    &[
                        "-t",
                        "nat",
                        "-A",
                        "OUTPUT",
                        "-p",
                        "tcp",
                        "-d",
                        &dst,
                        "--dport",
                        &port,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        &to,
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Node `i`'s namespace, in namespace mode.
    pub fn namespace(&self, i: usize) -> Option<String> {
        match self.mode {
            Mode::Namespaces => Some(format!("{}n{i}", prefix(self.subnet))),
            Mode::Loopback => None,
        }
    }

    /// Node `i`'s address (its HTTP and Raft listeners bind it).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        match self.mode {
            Mode::Namespaces => Ipv4Addr::new(10, 231, self.subnet, i as u8),
            Mode::Loopback => Ipv4Addr::LOCALHOST,
        }
    }

    /// The proxy's address for the directed link `from`→`to`.
    pub fn link_ip(&self, from: usize, to: usize) -> Ipv4Addr {
        match self.mode {
            Mode::Namespaces => Ipv4Addr::new(10, 231, self.subnet, (10 * from + to) as u8),
            Mode::Loopback => Ipv4Addr::LOCALHOST,
        }
    }

    /// The harness's own address, seen by the nodes.
    pub fn client_ip(&self) -> Ipv4Addr {
        match self.mode {
            Mode::Namespaces => Ipv4Addr::new(10, 231, self.subnet, 254),
            Mode::Loopback => Ipv4Addr::LOCALHOST,
        }
    }

    /// A name for the report: `namespaces 10.231.x.0/24 (tjrX*)` or `loopback`.
    pub fn describe(&self) -> String {
        match self.mode {
            Mode::Namespaces => format!(
                "namespaces 10.231.{}.0/24 ({}n*, bridge {}br)",
                self.subnet,
                prefix(self.subnet),
                prefix(self.subnet)
            ),
            Mode::Loopback => match &self.fallback_reason {
                Some(why) => format!("loopback (namespaces failed: {why})"),
                None => "loopback".into(),
            },
        }
    }

    fn iptables(&self, i: usize, args: &[&str]) -> Result<(), String> {
        let mut command = Command::new("iptables");
        command.arg("-w").args(args);
        os::enter_netns(&mut command, self.namespace(i).as_deref());
        os::run(&mut command).map(|_| ())
    }

    /// Drops the directed link `from`→`to` with iptables, at both ends:
    /// `from` cannot send to it, `to` does not accept from it (nor from
    /// `from`'s own address, for any direct connection). Namespace mode only.
    pub fn drop_link(&self, from: usize, to: usize) -> Result<(), String> {
        let link = self.link_ip(from, to).to_string();
        let (src, dst) = (self.node_ip(from).to_string(), self.node_ip(to).to_string());
        self.iptables(from, &["-A", "OUTPUT", "-d", &link, "-j", "DROP"])?;
        self.iptables(from, &["-A", "OUTPUT", "-d", &dst, "-j", "DROP"])?;
        self.iptables(to, &["-A", "INPUT", "-s", &link, "-j", "DROP"])?;
        self.iptables(to, &["-A", "INPUT", "-s", &src, "-j", "DROP"])
    }

    /// Removes every rule (namespace mode): the network is whole again.
    pub fn heal(&self) -> Result<(), String> {
        if self.mode == Mode::Loopback {
            return Ok(());
        }
        (1..=self.nodes).try_for_each(|i| self.iptables(i, &["-F"]))
    }

    /// The rules in force, for a report of what the nemesis left.
    pub fn rules(&self) -> String {
        (1..=self.nodes)
            .filter_map(|i| {
                let mut command = Command::new("iptables");
                command.args(["-w", "-S"]);
                os::enter_netns(&mut command, self.namespace(i).as_deref());
                os::run(&mut command)
                    .ok()
                    .map(|o| format!("n{i}: {}", String::from_utf8_lossy(&o.stdout).trim()))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if self.mode == Mode::Namespaces {
            remove(self.subnet);
        }
    }
}

/// Removes run `<x>`'s namespaces, veths and bridge (errors ignored: some
/// may not have been made).
fn remove(x: u8) {
    let p = prefix(x);
    for i in 1..=5 {
        let _ = os::ip(&["netns", "del", &format!("{p}n{i}")]);
        let _ = os::ip(&["link", "del", &format!("{p}v{i}")]);
    }
    let _ = os::ip(&["link", "del", &format!("{p}br")]);
    let _ = std::fs::remove_file(Path::new(OWNERS).join(p));
}

/// Cleans up after runs whose harness died (their owner PID is gone).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(OWNERS) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(x) = name.strip_prefix("tjr").and_then(|x| x.parse::<u8>().ok()) else {
            continue;
        };
        let path: PathBuf = entry.path();
        let owner: Option<i32> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            remove(x);
        }
    }
}
