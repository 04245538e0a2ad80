//! The defaults the README's tables give, as the library and the command line have them:
//! "Modes and options", "Limits and what a client sees", and the chat's limits. What each
//! limit does past its value is tested elsewhere (`bad_input.rs`, `policies.rs`,
//! `keepalive.rs`, `robustness.rs`, `chat_protocol.rs`, `tests/conformance/`); this file
//! holds the figures themselves to the README.

use loopchat::ServerConfig;
use loopchat::apps::ChatConfig;
use loopchat::event_loop::SlowConsumer;
use loopchat::http::OriginPolicy;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

#[test]
fn the_library_defaults_are_the_readmes() {
    let config = ServerConfig::default();
    assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.max_message_size, 16 * MIB);
    assert_eq!(config.head_limits.max_head_bytes, 8 * 1024);
    assert_eq!(config.head_limits.max_headers, 64);
    assert_eq!(config.handshake_timeout, Duration::from_secs(10));
    assert_eq!(config.close_timeout, Duration::from_secs(5));
    assert_eq!(config.max_outbound_bytes, 64 * MIB);
    assert_eq!(config.slow_consumer, SlowConsumer::Close);
    assert_eq!(config.max_connections, 100_000);
    assert_eq!(config.max_line_bytes, 8 * 1024);
    let keepalive = config.keepalive.expect("keepalive on by default");
    assert_eq!(keepalive.ping_interval, Duration::from_secs(30));
    assert_eq!(keepalive.idle_timeout, Duration::from_secs(60));
    assert!(matches!(config.origins, OriginPolicy::Any));
    assert!(config.message_rate.is_none(), "no message rate in the loop");
}

#[test]
fn the_chat_defaults_are_the_readmes() {
    let chat = ChatConfig::default();
    assert_eq!(chat.default_room, "lobby");
    assert_eq!(chat.max_text_bytes, 4 * 1024);
    assert_eq!(chat.max_image_bytes, 2 * MIB);
    assert_eq!(chat.max_nick_chars, 24);
    assert_eq!(chat.max_room_chars, 32);
    assert_eq!(chat.max_rooms_per_member, 20);
    assert_eq!(chat.history_len, 50);
    assert_eq!(chat.history_bytes, 8 * MIB);
    assert_eq!((chat.rate_per_second, chat.rate_burst), (20.0, 60));
}

#[test]
#[cfg(feature = "cli")]
fn the_command_line_defaults_are_the_readmes() {
    use std::process::Command;
    let out = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["serve", "--help"])
        .output()
        .expect("run loopchat serve --help");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    // Each option is followed, a few lines further, by its `[default: ...]`.
    let default_of = |option: &str| -> String {
        let at = help
            .find(&format!("--{option} "))
            .unwrap_or_else(|| panic!("no --{option} in:\n{help}"));
        let rest = &help[at..];
        let start = rest
            .find("[default: ")
            .unwrap_or_else(|| panic!("no default for --{option}"))
            + "[default: ".len();
        rest[start..start + rest[start..].find(']').unwrap()].to_owned()
    };
    for (option, default) in [
        ("addr", "127.0.0.1:8080"),
        ("mode", "chat"),
        ("max-message-size", "16777216"),
        ("max-connections", "100000"),
        ("handshake-timeout", "10"),
        ("close-timeout", "5"),
        ("ping-interval", "30"),
        ("idle-timeout", "60"),
        ("max-outbound-bytes", "67108864"),
        ("slow-consumer", "close"),
        ("redis-timeout", "10"),
        ("deflate", "on"),
        ("deflate-min-bytes", "128"),
    ] {
        assert_eq!(default_of(option), default, "--{option}");
    }
}
