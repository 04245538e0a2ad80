//! Real Redis servers as child processes, for the tests of scale-out over Redis: a single
//! [`RedisServer`], or a [`RedisCluster`] of masters. Each node is `redis-server` on a
//! free loopback port (never 6379, so a Redis the machine runs as a service is left alone)
//! with its own temporary directory and no persistence; `redis-cli` talks to it. Every
//! wait polls against a generous deadline, and every node is killed and reaped when its
//! value is dropped, however the test ends.
//!
//! `scripts/test` installs the Debian packages `redis-server` and `redis-tools`; without
//! them the first start panics and says so.

use loopchat::redis::{Event, Link, RedisUrl, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a node may take to answer PING after it is started, and a cluster to agree
/// on its slots. Generous: a loaded CI machine is slow, and a passing test never waits
/// this long.
pub const REDIS_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM.
pub const REDIS_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Starts tried before giving up, each on a new port (another process may take a free
/// port between our check and the server's bind).
const START_ATTEMPTS: usize = 10;
/// Redis Cluster's slot count.
pub const CLUSTER_SLOTS: u32 = 16384;
/// A cluster node also listens on its port plus this, the cluster bus.
const CLUSTER_BUS_OFFSET: u16 = 10_000;
/// Cluster nodes take ports below this, so that the bus port is a valid port too.
const CLUSTER_PORT_LIMIT: u16 = 55_000;

/// One `redis-server` process on a loopback port, with its own directory.
pub struct RedisServer {
    node: Node,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers PING.
    /// Panics, naming the Debian package, if Redis is not installed.
    pub fn start() -> RedisServer {
        RedisServer {
            node: Node::start(&[]),
        }
    }

    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// `redis://127.0.0.1:PORT`, as `loopchat serve --redis` takes it.
    pub fn url(&self) -> String {
        self.node.url()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.node.child.as_ref().map(Child::id)
    }

    /// Runs `redis-cli` with `args` against this server and returns its stdout. Panics
    /// with its stderr if it fails, an error reply included.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.node.port, args)
    }

    /// Calls per command, from `INFO commandstats` (`"set"`, `"publish"`,
    /// `"cluster|slots"`, ...).
    pub fn commandstats(&self) -> BTreeMap<String, u64> {
        parse_commandstats(&self.cli(&["INFO", "commandstats"]))
    }

    /// Sends SIGTERM and waits for the process to exit (it saves nothing: `--save ""`).
    pub fn stop(&mut self) {
        self.node.stop();
    }

    /// Sends SIGKILL and reaps the process: Redis dying without a word.
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Starts it again on the same port and directory (stopping it first if it still
    /// runs), and waits until it answers PING. With no persistence, it starts empty.
    pub fn restart(&mut self) {
        self.node.stop();
        self.node.spawn_and_wait().unwrap_or_else(|why| {
            panic!(
                "redis-server did not restart on port {}: {why}",
                self.node.port
            )
        });
    }
}

/// A Redis Cluster of masters only, each a `redis-server` on its own port and directory.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3, Redis's minimum), creates the cluster with
    /// `redis-cli --cluster create`, and waits until every node reports `cluster_state:ok`
    /// and a slot map that covers all 16384 slots.
    pub fn start(masters: usize) -> RedisCluster {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let config = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ];
        let nodes: Vec<Node> = cluster_ports(masters)
            .into_iter()
            .map(|port| Node::start_on(port, &config))
            .collect();
        let cluster = RedisCluster { nodes };
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(cluster.ports().iter().map(|p| format!("127.0.0.1:{p}")));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        let output = Command::new("redis-cli")
            .args(&create)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_until_ok();
        cluster
    }

    /// Every node's `redis://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The process ids of the nodes that run.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }

    /// Runs `redis-cli` with `args` against node `node` (0-based) and returns its stdout;
    /// pass `-c` first to follow the cluster's redirections.
    pub fn cli(&self, node: usize, args: &[&str]) -> String {
        cli(self.nodes[node].port, args)
    }

    /// Calls per command summed over every node, from `INFO commandstats`.
    pub fn commandstats(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for node in &self.nodes {
            for (command, calls) in parse_commandstats(&cli(node.port, &["INFO", "commandstats"])) {
                *total.entry(command).or_default() += calls;
            }
        }
        total
    }

    /// Sends SIGTERM to every node and waits for each to exit.
    pub fn stop(&mut self) {
        self.nodes.iter_mut().for_each(Node::stop);
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn key_slot(&self, key: &str) -> u32 {
        let slot = self.cli(0, &["CLUSTER", "KEYSLOT", key]);
        slot.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key}: {slot}"))
    }

    /// The node (0-based) that serves `slot`, as node `asked` sees it, if any does.
    pub fn master_of(&self, slot: u32, asked: usize) -> Option<usize> {
        let slots = self.cli(asked, &["--json", "CLUSTER", "SLOTS"]);
        let serde_json::Value::Array(ranges) = serde_json::from_str(slots.trim()).ok()? else {
            return None;
        };
        let port = ranges.iter().find_map(|range| {
            let (start, end) = (range.get(0)?.as_u64()?, range.get(1)?.as_u64()?);
            (start..=end)
                .contains(&u64::from(slot))
                .then(|| range.get(2)?.get(1)?.as_u64())?
        })?;
        self.nodes.iter().position(|n| u64::from(n.port) == port)
    }

    /// Moves `slot` with its keys to node `to`, the way `redis-cli --cluster reshard`
    /// does while clients go on: the target IMPORTING, the source MIGRATING, every key
    /// MIGRATEd (a batch at a time, each batch atomically), then, `dwell` later,
    /// `SETSLOT NODE` on the target and then the source. Returns once every node says
    /// `to` serves the slot. During `dwell` the keys are on the target while the source
    /// still serves the slot, as in a reshard of many keys: a call for them is answered
    /// `-ASK`.
    pub fn move_slot(&self, slot: u32, to: usize, dwell: Duration) {
        let from = self.master_of(slot, to).expect("someone serves the slot");
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let id = |node: usize| self.cli(node, &["CLUSTER", "MYID"]).trim().to_owned();
        let (from_id, to_id, slot) = (id(from), id(to), slot.to_string());
        self.cli(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        self.cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        let to_port = self.nodes[to].port.to_string();
        loop {
            let keys = self.cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "10000", "KEYS"];
            migrate.extend(keys);
            self.cli(from, &migrate);
        }
        thread::sleep(dwell);
        self.cli(to, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        self.cli(from, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        let slot: u32 = slot.parse().expect("a slot");
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        while (0..self.nodes.len()).any(|node| self.master_of(slot, node) != Some(to)) {
            assert!(
                Instant::now() < deadline,
                "the nodes did not agree that node {to} serves slot {slot} within \
                 {REDIS_START_TIMEOUT:?}"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until every node says `cluster_state:ok` and its `CLUSTER SLOTS` covers
    /// every slot: the gossip that spreads the slot map takes a moment after `create`.
    fn wait_until_ok(&self) {
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            let pending: Vec<String> = self
                .nodes
                .iter()
                .filter_map(|node| node.cluster_not_ok())
                .collect();
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster was not ok within {REDIS_START_TIMEOUT:?}: {}",
                pending.join("; ")
            );
            thread::sleep(POLL_INTERVAL);
        }
    }
}

/// One node: a port, a directory, and the process while it runs.
struct Node {
    port: u16,
    /// The node's `--dir`, holding its log (and a cluster node's `nodes.conf`).
    dir: TempDir,
    /// Options beyond the common ones (the cluster's).
    extra: Vec<String>,
    child: Option<Child>,
}

impl Node {
    /// A node on a free port, retried on a new port if the start fails (the port was
    /// taken between our check and the server's bind).
    fn start(extra: &[&str]) -> Node {
        let mut why = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port(|_| true);
            let mut node = Node::new(port, extra);
            match node.spawn_and_wait() {
                Ok(()) => return node,
                Err(e) => why = e,
            }
        }
        panic!("redis-server did not start in {START_ATTEMPTS} attempts; the last: {why}");
    }

    /// A node on `port`, chosen by the caller; if that port is gone, another one that
    /// passes the same check as the cluster's.
    fn start_on(port: u16, extra: &[&str]) -> Node {
        let mut node = Node::new(port, extra);
        let mut why = match node.spawn_and_wait() {
            Ok(()) => return node,
            Err(e) => e,
        };
        for _ in 1..START_ATTEMPTS {
            let mut node = Node::new(free_port(bus_port_free), extra);
            match node.spawn_and_wait() {
                Ok(()) => return node,
                Err(e) => why = e,
            }
        }
        panic!("redis-server did not start in {START_ATTEMPTS} attempts; the last: {why}");
    }

    fn new(port: u16, extra: &[&str]) -> Node {
        Node {
            port,
            dir: tempfile::Builder::new()
                .prefix("loopchat-redis-")
                .tempdir()
                .expect("a temporary directory for redis-server"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns the server and waits until it answers PING. An error (the process exited,
    /// or never answered) says why, with the end of its log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let dir = self.dir.path();
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!("{}", not_installed()),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Some(status) = child.try_wait().expect("try_wait on redis-server") {
                self.child = None;
                return Err(format!(
                    "redis-server on port {port} exited with {status}; its log:\n{}",
                    log_tail(&self.log_path())
                ));
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "redis-server on port {port} did not answer PING within \
                     {REDIS_START_TIMEOUT:?}; its log:\n{}",
                    log_tail(&self.log_path())
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGTERM by process id, then wait for the exit (SIGKILL if it does not come).
    fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            child.id()
        );
        let deadline = Instant::now() + REDIS_STOP_TIMEOUT;
        loop {
            if child
                .try_wait()
                .expect("try_wait on redis-server")
                .is_some()
            {
                self.child = None;
                return;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "redis-server on port {} did not exit within {REDIS_STOP_TIMEOUT:?} of \
                     SIGTERM; its log:\n{}",
                    self.port,
                    log_tail(&self.log_path())
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL by process id (what `Child::kill` sends), and reap it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Why this cluster node is not ready yet, or `None` if it is.
    fn cluster_not_ok(&self) -> Option<String> {
        let info = cli(self.port, &["CLUSTER", "INFO"]);
        if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
            return Some(format!("node {} is not cluster_state:ok", self.port));
        }
        let slots = cli(self.port, &["--json", "CLUSTER", "SLOTS"]);
        let covered = slots_covered(&slots);
        (covered != CLUSTER_SLOTS).then(|| {
            format!(
                "node {}'s CLUSTER SLOTS covers {covered} of {CLUSTER_SLOTS} slots",
                self.port
            )
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT -e ARGS...` (`-e`: an error reply fails it).
fn cli(port: u16, args: &[&str]) -> String {
    let output = cli_output(port, args)
        .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}\n{}", not_installed()));
    assert!(
        output.status.success(),
        "redis-cli -p {port} {} failed ({}): {}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("redis-cli printed UTF-8")
}

fn cli_output(port: u16, args: &[&str]) -> io::Result<Output> {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-e"])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// Whether the server on `port` answers `redis-cli PING` with PONG.
fn ping(port: u16) -> bool {
    match cli_output(port, &["PING"]) {
        Ok(output) => output.status.success() && output.stdout.starts_with(b"PONG"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => panic!("{}", not_installed()),
        Err(e) => panic!("cannot run redis-cli: {e}"),
    }
}

fn not_installed() -> String {
    "the Redis tests need redis-server and redis-cli (Debian packages `redis-server` and \
     `redis-tools`); scripts/test installs them when run as root, or: \
     sudo apt-get install redis-server redis-tools"
        .to_owned()
}

/// The last lines of a node's log, for failure messages.
fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"));
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A loopback port that is free now (bound with port 0, then released) and passes
/// `also`. Another process may still take it before redis-server binds it: callers retry.
fn free_port(also: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if also(port) {
            return port;
        }
    }
    panic!("found no free loopback port");
}

/// Whether `port` can be a cluster node's: below [`CLUSTER_PORT_LIMIT`], so that its bus
/// port (port + 10000) is a valid port, and that bus port free too.
fn bus_port_free(port: u16) -> bool {
    bind_bus_port(port).is_some()
}

fn bind_bus_port(port: u16) -> Option<TcpListener> {
    if port >= CLUSTER_PORT_LIMIT {
        return None;
    }
    TcpListener::bind(SocketAddr::from((
        [127, 0, 0, 1],
        port + CLUSTER_BUS_OFFSET,
    )))
    .ok()
}

/// `count` distinct ports for cluster nodes, each with its bus port free. Every
/// listener is held until all the ports are chosen, so no node's port or bus port is
/// another's.
fn cluster_ports(count: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..1000 {
        if ports.len() == count {
            break;
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if let Some(bus) = bind_bus_port(port) {
            held.push((listener, bus));
            ports.push(port);
        }
    }
    assert_eq!(
        ports.len(),
        count,
        "too few free loopback ports with free bus ports"
    );
    ports
}

/// How many slots a `redis-cli --json CLUSTER SLOTS` reply covers: each entry is
/// `[start, end, master, replicas...]`; ranges do not overlap.
pub fn slots_covered(json: &str) -> u32 {
    let Ok(serde_json::Value::Array(ranges)) = serde_json::from_str(json.trim()) else {
        return 0;
    };
    ranges
        .iter()
        .filter_map(|range| {
            let start = range.get(0)?.as_u64()?;
            let end = range.get(1)?.as_u64()?;
            Some((end + 1).saturating_sub(start) as u32)
        })
        .sum()
}

/// Calls per command from `INFO commandstats`, whose lines read
/// `cmdstat_set:calls=3,usec=12,...`.
pub fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// A link and its socket, driven in the simplest loop: write all output, read once,
/// feed, poll.
pub struct Driven {
    pub link: Link<u32>,
    pub stream: TcpStream,
    /// Read size: 64 KiB, as the server's loop reads.
    buffer: Vec<u8>,
    /// How many reads fed the link.
    pub reads: usize,
}

impl Driven {
    pub fn connect(url: &RedisUrl) -> Driven {
        Driven::with_link(url, Link::new(url))
    }

    pub fn with_link(url: &RedisUrl, link: Link<u32>) -> Driven {
        let stream = TcpStream::connect((url.host.as_str(), url.port)).expect("connect");
        // Short reads, so the deadline is checked often.
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Driven {
            link,
            stream,
            buffer: vec![0; 64 * 1024],
            reads: 0,
        }
    }

    /// Connects and waits for [`Event::Ready`].
    pub fn ready(url: &RedisUrl) -> Driven {
        let mut driven = Driven::connect(url);
        assert_eq!(driven.next_event(), Event::Ready);
        driven
    }

    /// The next event, moving bytes until there is one.
    pub fn next_event(&mut self) -> Event<u32> {
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            if let Some(event) = self.link.poll_event() {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no event in {REDIS_START_TIMEOUT:?}"
            );
            if self.link.wants_write() {
                self.stream.write_all(self.link.output()).expect("write");
                let n = self.link.output_len();
                self.link.consume_output(n);
            }
            match self.stream.read(&mut self.buffer) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => {
                    self.reads += 1;
                    self.link.feed(&self.buffer[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Sends one command and returns its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Value {
        self.link.command(0, args);
        match self.next_event() {
            Event::Reply { tag: 0, value } => value,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(args[0])),
        }
    }
}
