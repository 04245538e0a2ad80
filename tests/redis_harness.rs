//! The Redis test harness itself (tests/common/redis.rs): a server starts on a free port
//! and answers, keeps its port across a stop and a restart, counts the commands it ran,
//! and leaves nothing behind; a cluster of three masters agrees on its slots and stores a
//! key wherever its slot lives.

mod common;

use common::redis::{RedisCluster, RedisServer, parse_commandstats, slots_covered};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// Whether anything accepts connections on the loopback `port`.
fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Whether a `redis-server` process for `port` is still alive (Redis names its process
/// `redis-server 127.0.0.1:PORT`, with ` [cluster]` for a cluster node).
fn redis_process_alive(port: u16) -> bool {
    let pattern = format!("redis-server 127\\.0\\.0\\.1:{port}( |$)");
    let output = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .expect("run pgrep");
    output.status.success()
}

#[test]
fn a_server_answers_on_its_own_port_and_stores_keys() {
    let redis = RedisServer::start();
    assert_ne!(redis.port(), 6379, "never the default port");
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(redis.cli(&["PING"]).trim(), "PONG");
    assert_eq!(redis.cli(&["SET", "greeting", "hello"]).trim(), "OK");
    assert_eq!(redis.cli(&["GET", "greeting"]).trim(), "hello");
    // Configured as asked: no persistence, its own directory.
    assert_eq!(redis.cli(&["CONFIG", "GET", "save"]), "save\n\n");
    assert_eq!(
        redis.cli(&["CONFIG", "GET", "appendonly"]),
        "appendonly\nno\n"
    );
}

#[test]
#[should_panic(expected = "failed")]
fn an_error_reply_fails_cli() {
    let redis = RedisServer::start();
    redis.cli(&["NO-SUCH-COMMAND"]);
}

#[test]
fn stop_and_restart_keep_the_port_and_start_empty() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    redis.cli(&["SET", "k", "v"]);

    redis.stop();
    assert!(!listening(port), "stopped, yet something listens on {port}");
    assert!(!redis_process_alive(port));
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.cli(&["PING"]).trim(), "PONG");
    // No persistence: the key did not survive.
    assert_eq!(redis.cli(&["EXISTS", "k"]).trim(), "0");

    redis.kill();
    assert!(!listening(port), "killed, yet something listens on {port}");
    assert!(!redis_process_alive(port));
    redis.restart();
    assert_eq!(redis.cli(&["PING"]).trim(), "PONG");
}

#[test]
fn commandstats_counts_calls_per_command() {
    let redis = RedisServer::start();
    let before = redis.commandstats();
    for n in 0..3 {
        redis.cli(&["SET", "counted", &n.to_string()]);
    }
    redis.cli(&["PUBLISH", "room", "hi"]);
    let after = redis.commandstats();
    let calls = |stats: &std::collections::BTreeMap<String, u64>, c: &str| {
        stats.get(c).copied().unwrap_or(0)
    };
    assert_eq!(calls(&after, "set") - calls(&before, "set"), 3, "{after:?}");
    assert_eq!(calls(&after, "publish") - calls(&before, "publish"), 1);
}

#[test]
fn parsers_read_redis_output() {
    let info = "# Commandstats\r\ncmdstat_set:calls=3,usec=12,usec_per_call=4.00,\
                rejected_calls=0,failed_calls=0\r\ncmdstat_cluster|slots:calls=1,usec=1\r\n";
    let stats = parse_commandstats(info);
    assert_eq!(stats.get("set"), Some(&3));
    assert_eq!(stats.get("cluster|slots"), Some(&1));
    assert_eq!(stats.len(), 2);
    let slots = r#"[[0,5460,["127.0.0.1",7000,"a",[]]],[5461,10922,["127.0.0.1",7001,"b",[]]],
                   [10923,16383,["127.0.0.1",7002,"c",[]]]]"#;
    assert_eq!(slots_covered(slots), 16384);
    assert_eq!(slots_covered("[]"), 0);
}

#[test]
fn nothing_is_left_after_drop() {
    let redis = RedisServer::start();
    let port = redis.port();
    let pid = redis.pid().expect("running");
    assert!(listening(port));
    assert!(redis_process_alive(port));
    drop(redis);
    assert!(!listening(port), "dropped, yet something listens on {port}");
    assert!(
        !redis_process_alive(port),
        "redis-server {pid} survived its drop"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} was not reaped"
    );
}

#[test]
fn a_cluster_of_three_masters_serves_every_slot() {
    let mut cluster = RedisCluster::start(3);
    let ports = cluster.ports();
    assert_eq!(ports.len(), 3);
    assert_eq!(
        cluster.urls(),
        ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
    );
    for node in 0..3 {
        let info = cluster.cli(node, &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
        assert!(info.contains("cluster_size:3"), "{info}");
        let slots = cluster.cli(node, &["--json", "CLUSTER", "SLOTS"]);
        assert_eq!(slots_covered(&slots), 16384, "{slots}");
    }

    // Keys in different slots, set through node 0 following redirections, land on their
    // slots' masters and read back from any node.
    let before = cluster.commandstats();
    for key in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"] {
        assert_eq!(cluster.cli(0, &["-c", "SET", key, key]).trim(), "OK");
        for node in 0..3 {
            assert_eq!(cluster.cli(node, &["-c", "GET", key]).trim(), key);
        }
    }
    let keys: u64 = (0..3)
        .map(|node| {
            cluster
                .cli(node, &["DBSIZE"])
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(keys, 6, "each key is stored once, on its slot's master");
    let sets = cluster.commandstats().get("set").copied().unwrap_or(0)
        - before.get("set").copied().unwrap_or(0);
    assert_eq!(sets, 6, "one SET executed per key, summed over the nodes");

    cluster.stop();
    for port in &ports {
        assert!(
            !listening(*port),
            "stopped, yet something listens on {port}"
        );
        assert!(!listening(*port + 10_000), "bus port of {port} still open");
        assert!(!redis_process_alive(*port));
    }
}

#[test]
fn a_dropped_cluster_leaves_nothing() {
    let cluster = RedisCluster::start(3);
    let ports = cluster.ports();
    drop(cluster);
    for port in ports {
        assert!(!listening(port), "dropped, yet something listens on {port}");
        assert!(!listening(port + 10_000), "bus port of {port} still open");
        assert!(
            !redis_process_alive(port),
            "a node on {port} survived its drop"
        );
    }
}
