//! Many instances, one chat: `loopchat serve --redis` processes sharing a real
//! `redis-server` (and a 3-master Redis Cluster) that the tests start on free loopback
//! ports, with tungstenite clients on each instance.
//!
//! Checked: one chat across instances (unique nicknames without regard to case, guest
//! names, `who`, `rooms`, join/leave/nick notices, private messages, the history a
//! newcomer gets); exactly-once delivery in the room's one order across three instances;
//! an instance killed with SIGKILL (its members leave everywhere within the default 10 s
//! timeout plus a heartbeat, and their nicknames come free); Redis stopped and restarted
//! mid-chat (`split`, the instance goes on alone, `whole`, and the messages said
//! elsewhere meanwhile); a reconnect to another instance with the last id seen; one
//! Redis function call and one PUBLISH per message; the same over a Redis Cluster with
//! sharded pub/sub; and a cluster slot (a room's, or the directory's) moved to another
//! master mid-chat, the way a reshard does (calls answered `-ASK`, then subscriptions
//! dropped by the server): a short split, then nothing lost, repeated or renumbered.

mod common;

use common::chat::{ChatClient as Client, everyone_hears_everything_once_in_one_order};
use common::process::ServerProcess;
use common::redis::{RedisCluster, RedisServer};
use loopchat::apps::chat::protocol::{ErrorCode, LeaveReason, ServerEvent};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long to wait for an event that must come.
const WAIT: Duration = Duration::from_secs(30);

/// How long an instance killed without a word may stay in the chat with the default
/// `--redis-timeout` (10 s): the timeout, plus the heartbeat that notices (every third of
/// it), plus slack for a loaded machine; the bound is 15 s.
const DEAD_INSTANCE_BOUND: Duration = Duration::from_secs(15);

fn instance(redis: &str) -> Instance {
    Instance(ServerProcess::start(&["--redis", redis]))
}

/// An instance whose log is printed if its test fails.
struct Instance(ServerProcess);

impl std::ops::Deref for Instance {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Instance {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- log of the instance at {}:\n{}",
                self.0.addr,
                self.0.log_text()
            );
        }
    }
}

#[test]
fn instances_sharing_a_redis_are_one_chat() {
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis.url()), instance(&redis.url()));
    let mut ada = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    assert_ne!(
        ada.nick, bob.nick,
        "guest names are unique across instances"
    );

    // Nicknames: unique without regard to case, across instances.
    ada.set_nick("Ada");
    bob.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "Ada"));
    bob.send(json!({"type": "nick", "nick": "ADA"}));
    bob.expect_error(ErrorCode::NickTaken);
    bob.set_nick("bob");
    ada.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "bob"));

    // A message said on one instance reaches the other, with the same id.
    let id = ada.say("hello from A");
    assert_eq!(bob.hears("Ada", "hello from A"), id);
    assert_eq!(ada.who("lobby"), ["Ada", "bob"]);
    assert_eq!(bob.who("lobby"), ["Ada", "bob"]);

    // Rooms, joins and leaves across instances.
    bob.send(json!({"type": "join", "room": "rust"}));
    bob.expect(|e| matches!(e, ServerEvent::History { room, .. } if room == "rust"));
    ada.send(json!({"type": "rooms"}));
    let rooms = match ada.expect(|e| matches!(e, ServerEvent::Rooms { .. })) {
        ServerEvent::Rooms { rooms } => rooms
            .into_iter()
            .map(|r| (r.name, r.members))
            .collect::<BTreeMap<_, _>>(),
        _ => unreachable!(),
    };
    assert_eq!(
        rooms,
        BTreeMap::from([("lobby".into(), 2), ("rust".into(), 1)])
    );
    ada.send(json!({"type": "join", "room": "rust"}));
    bob.expect(
        |e| matches!(e, ServerEvent::Join { room, nick, .. } if room == "rust" && nick == "Ada"),
    );
    let members =
        match ada.expect(|e| matches!(e, ServerEvent::Members { room, .. } if room == "rust")) {
            ServerEvent::Members { members, .. } => members,
            _ => unreachable!(),
        };
    assert_eq!(members, ["Ada", "bob"]);
    ada.send(json!({"type": "leave", "room": "rust"}));
    bob.expect(|e| {
        matches!(e, ServerEvent::Leave { room, nick, reason: LeaveReason::Left, .. }
            if room == "rust" && nick == "Ada")
    });

    // A private message reaches its recipient on the other instance, and the sender.
    ada.send(json!({"type": "private", "to": "BOB", "text": "psst"}));
    let got = bob.expect(|e| matches!(e, ServerEvent::Private { text, .. } if text == "psst"));
    let sent = ada.expect(|e| matches!(e, ServerEvent::Private { text, .. } if text == "psst"));
    assert_eq!(got, sent);

    // A newcomer on either instance gets the lobby's history, said on the other.
    let mut cy = Client::arrive(b.addr);
    let (history, _) = cy.arrival_history();
    assert!(
        matches!(history.last(), Some(ServerEvent::Message { text, id: i, .. }) if text == "hello from A" && *i == id),
        "{history:?}"
    );

    // A disconnect is a leave everywhere, and frees the nickname.
    drop(bob);
    ada.expect(|e| {
        matches!(e, ServerEvent::Leave { nick, reason: LeaveReason::Disconnected, room, .. }
            if nick == "bob" && room == "lobby")
    });
    cy.set_nick("Bob");
}

#[test]
fn every_message_reaches_everyone_once_in_one_order() {
    let redis = RedisServer::start();
    let instances: Vec<Instance> = (0..3).map(|_| instance(&redis.url())).collect();
    let mut clients: Vec<Client> = instances
        .iter()
        .flat_map(|i| [Client::arrive(i.addr), Client::arrive(i.addr)])
        .collect();
    everyone_hears_everything_once_in_one_order(&mut clients, 20);
}

#[test]
fn an_instance_killed_without_a_word_leaves_the_chat() {
    let redis = RedisServer::start();
    let a = instance(&redis.url());
    let mut b = instance(&redis.url());
    let mut ada = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    bob.set_nick("bob");
    ada.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "bob"));
    b.signal("KILL");
    b.wait_exit(WAIT);
    let killed = Instant::now();
    ada.expect_within(DEAD_INSTANCE_BOUND + Duration::from_secs(5), |e| {
        matches!(e, ServerEvent::Leave { nick, reason: LeaveReason::Disconnected, .. } if nick == "bob")
    });
    let took = killed.elapsed();
    assert!(
        took <= DEAD_INSTANCE_BOUND,
        "bob left {took:?} after his instance died"
    );
    assert_eq!(ada.who("lobby"), [ada.nick.clone()]);
    let mut again = Client::arrive(a.addr);
    again.set_nick("Bob");
}

#[test]
fn a_split_keeps_each_instance_going_and_heals() {
    let mut redis = RedisServer::start();
    let (a, b) = (instance(&redis.url()), instance(&redis.url()));
    let mut ada = Client::arrive(a.addr);
    let mut ann = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    ada.set_nick("ada");
    ann.set_nick("ann");
    bob.set_nick("bob");
    ada.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "bob"));
    let before = ada.say("before");
    bob.hears("ada", "before");

    redis.stop();
    ada.expect(|e| matches!(e, ServerEvent::Split { .. }));
    bob.expect(|e| matches!(e, ServerEvent::Split { .. }));
    // Within the instance the room goes on; messages said now carry id 0.
    assert_eq!(ada.say("alone"), 0);
    ann.hears("ada", "alone");
    ada.send(json!({"type": "nick", "nick": "ada2"}));
    ada.expect_error(ErrorCode::ChatSplit);
    ada.send(json!({"type": "private", "to": "bob", "text": "x"}));
    ada.expect_error(ErrorCode::ChatSplit);
    // A newcomer during the split is welcomed, and told.
    let mut cy = Client::arrive(a.addr);
    assert!(
        cy.seen
            .iter()
            .any(|e| matches!(e, ServerEvent::Split { .. }))
    );

    redis.restart();
    ada.expect(|e| matches!(e, ServerEvent::Whole { .. }));
    bob.expect(|e| matches!(e, ServerEvent::Whole { .. }));
    // The restarted Redis lost everything: the instances registered their members again.
    let everyone = [
        ada.nick.clone(),
        ann.nick.clone(),
        bob.nick.clone(),
        cy.nick.clone(),
    ];
    let mut expected = everyone.to_vec();
    expected.sort_by_key(|n| n.to_lowercase());
    let deadline = Instant::now() + WAIT;
    while bob.who("lobby") != expected {
        assert!(Instant::now() < deadline, "the lobby is whole again");
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = bob.say("back");
    ada.hears("bob", "back");
    cy.hears("bob", "back");
    assert!(
        after > before,
        "ids go on increasing after Redis lost its data: {before} then {after}"
    );
}

#[test]
fn a_client_that_comes_back_to_another_instance_misses_nothing() {
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis.url()), instance(&redis.url()));
    let mut ada = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    bob.set_nick("bob");
    let mut last = 0;
    for i in 0..3 {
        last = bob.say(&format!("seen {i}"));
        ada.hears("bob", &format!("seen {i}"));
    }
    drop(ada);
    let mut missed = Vec::new();
    for i in 0..4 {
        missed.push(bob.say(&format!("missed {i}")));
    }
    // Back, on the other instance, with the last id seen.
    let mut ada = Client::arrive_at(b.addr, &format!("/ws?after=lobby:{last}"));
    let (messages, after) = ada.arrival_history();
    assert_eq!(after, Some(last));
    let ids: Vec<u64> = messages
        .iter()
        .map(|m| match m {
            ServerEvent::Message { id, .. } => *id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, missed, "exactly the messages missed, in order");
    let next = bob.say("new");
    assert_eq!(ada.hears("bob", "new"), next);
    assert_eq!(next, missed.last().unwrap() + 1);
    // Joining a room with `after` works the same way.
    ada.send(json!({"type": "join", "room": "lobby", "after": missed[1]}));
    let history = ada.expect(|e| matches!(e, ServerEvent::History { after: Some(_), .. }));
    let ServerEvent::History { messages, .. } = history else {
        unreachable!()
    };
    assert_eq!(messages.len(), 3, "missed 2, missed 3, new");
}

#[test]
fn a_message_costs_redis_one_call_and_one_publish() {
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis.url()), instance(&redis.url()));
    let mut ada = Client::arrive(a.addr);
    let mut others: Vec<Client> = (0..4).map(|_| Client::arrive(b.addr)).collect();
    let last = others.last().unwrap().nick.clone();
    ada.expect(|e| matches!(e, ServerEvent::Join { nick, .. } if *nick == last));
    let before = redis.commandstats();
    let n = 10;
    for i in 0..n {
        ada.say(&format!("m{i}"));
    }
    for other in &mut others {
        other.hears(&ada.nick.clone(), &format!("m{}", n - 1));
    }
    let after = redis.commandstats();
    let delta = |name: &str| after.get(name).unwrap_or(&0) - before.get(name).unwrap_or(&0);
    // Beats may have run meanwhile (each one fcall); messages are the rest.
    let fcalls = delta("fcall");
    assert!(
        (n..n + 3).contains(&fcalls),
        "fcall {fcalls} for {n} messages"
    );
    assert_eq!(
        delta("publish"),
        n,
        "one PUBLISH per message, whatever the recipients"
    );
}

#[test]
fn a_redis_cluster_spreads_rooms_and_uses_sharded_pub_sub() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let a = instance(&urls[0]);
    let b = instance(&urls[1]);
    let mut ada = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    ada.set_nick("ada");
    bob.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "ada"));
    // Rooms whose keys land on different masters.
    let rooms = ["lobby", "rust", "go", "zig", "ocaml", "elm"];
    for room in &rooms[1..] {
        for client in [&mut ada, &mut bob] {
            client.send(json!({"type": "join", "room": room}));
            client.expect(|e| matches!(e, ServerEvent::History { room: r, .. } if r == room));
        }
    }
    for room in &rooms {
        ada.send(json!({"type": "message", "room": room, "text": format!("in {room}")}));
    }
    let mut ids = Vec::new();
    for room in &rooms {
        let text = format!("in {room}");
        let sent =
            match ada.expect(|e| matches!(e, ServerEvent::Message { text: t, .. } if *t == text)) {
                ServerEvent::Message { id, .. } => id,
                _ => unreachable!(),
            };
        assert_eq!(
            bob.hears("ada", &text),
            sent,
            "#{room}: one id on both instances"
        );
        ids.push(sent);
    }
    // Each room counts its own ids: messages in the other rooms took none of #rust's.
    ada.send(json!({"type": "message", "room": "rust", "text": "again"}));
    assert_eq!(bob.hears("ada", "again"), ids[1] + 1);
    let stats = cluster.commandstats();
    assert!(
        stats.get("spublish").copied().unwrap_or(0) >= rooms.len() as u64,
        "{stats:?}"
    );
    assert_eq!(stats.get("publish").copied().unwrap_or(0), 0, "{stats:?}");
    bob.send(json!({"type": "private", "to": "ada", "text": "over the cluster"}));
    ada.expect(|e| matches!(e, ServerEvent::Private { text, .. } if text == "over the cluster"));
}

/// How long a moving slot stays half-moved (its keys on the new master, the slot still
/// the old one's): long enough for the chat's calls to be answered `-ASK` meanwhile.
const MIGRATION_DWELL: Duration = Duration::from_secs(1);

/// How long a probe line may take to reach everyone once the chat is whole.
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// Has each prober say a line, again and again, until every client hears every one of
/// them with an id from Redis: then each instance is connected with the cluster's current
/// layout and subscribed where the room's channel now lives.
#[track_caller]
fn wait_until_whole(clients: &mut [Client], probers: &[usize]) {
    let deadline = Instant::now() + WAIT;
    for attempt in 0.. {
        assert!(
            Instant::now() < deadline,
            "the chat was not whole again within {WAIT:?}"
        );
        let texts: Vec<String> = probers
            .iter()
            .map(|&p| format!("probe {attempt} by {}", clients[p].nick))
            .collect();
        for (&p, text) in probers.iter().zip(&texts) {
            clients[p].send(json!({"type": "message", "text": text}));
        }
        // Heard with an id from Redis: not 0, a line said while the chat is split.
        let heard = |seen: &[ServerEvent]| {
            texts.iter().all(|text| {
                seen.iter().any(
                    |e| matches!(e, ServerEvent::Message { text: t, id, .. } if t == text && *id != 0),
                )
            })
        };
        let mut whole = true;
        for client in clients.iter_mut() {
            whole &= client.saw_within(PROBE_WAIT, heard);
        }
        if whole {
            return;
        }
    }
}

/// The ids from Redis of the messages a client saw, in the order it saw them.
fn redis_ids(events: &[ServerEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Message { id, .. } if *id != 0 => Some(*id),
            _ => None,
        })
        .collect()
}

/// Each client that was told the chat split was told it is whole again, later.
#[track_caller]
fn whole_after_every_split(client: &Client) {
    let last_split = client
        .seen
        .iter()
        .rposition(|e| matches!(e, ServerEvent::Split { .. }));
    if let Some(split) = last_split {
        assert!(
            client.seen[split..]
                .iter()
                .any(|e| matches!(e, ServerEvent::Whole { .. })),
            "{}: split, and never whole again",
            client.nick
        );
    }
}

#[test]
fn a_cluster_slot_that_moves_mid_chat_loses_nothing() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let (a, b) = (instance(&urls[0]), instance(&urls[1]));
    // ada and ann on A, bob and ben on B.
    let mut clients: Vec<Client> = [a.addr, a.addr, b.addr, b.addr]
        .into_iter()
        .map(Client::arrive)
        .collect();
    for (client, nick) in clients.iter_mut().zip(["ada", "ann", "bob", "ben"]) {
        client.set_nick(nick);
    }
    clients[0].expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "ben"));
    let mut before = Vec::new();
    for i in 0..clients.len() {
        let (nick, text) = (clients[i].nick.clone(), format!("before {i}"));
        let id = clients[i].say(&text);
        for (j, client) in clients.iter_mut().enumerate() {
            if j != i {
                assert_eq!(client.hears(&nick, &text), id);
            }
        }
        before.push(id);
    }

    // Move #lobby's slot to another master while ada and bob go on talking.
    let slot = cluster.key_slot("lc:{r:lobby}:seq");
    let from = cluster.master_of(slot, 0).expect("the lobby's master");
    let to = (from + 1) % urls.len();
    let talkers = [0, 2];
    let mut said = 0;
    std::thread::scope(|scope| {
        let mover = scope.spawn(|| cluster.move_slot(slot, to, MIGRATION_DWELL));
        let mut round = 0;
        while !mover.is_finished() {
            // At most 6 rounds, so that the history (50 messages) still holds `before`.
            if round < 6 {
                said += 1;
            }
            for talker in talkers.into_iter().filter(|_| round < 6) {
                let text = format!("during {round} by {}", clients[talker].nick);
                clients[talker].send(json!({"type": "message", "text": text}));
            }
            for client in &mut clients {
                while client.next_within(Duration::from_millis(50)).is_some() {}
            }
            round += 1;
        }
        mover.join().expect("the slot moved");
    });
    assert_eq!(cluster.master_of(slot, from), Some(to));
    // A line said during the move was said (with an id from Redis, or with id 0 while
    // the chat was split), or its sayer was told it may not have been.
    for talker in talkers.map(|t| &clients[t]) {
        let mine = format!("by {}", talker.nick);
        let echoes = talker
            .seen
            .iter()
            .filter(|e| matches!(e, ServerEvent::Message { text, .. } if text.starts_with("during ") && text.ends_with(&mine)))
            .count();
        let refused = talker
            .seen
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ServerEvent::Error {
                        code: ErrorCode::ChatSplit,
                        ..
                    }
                )
            })
            .count();
        assert!(
            echoes <= said && echoes + refused >= said,
            "{}: said {said} lines during the move; {echoes} came back, {refused} refused",
            talker.nick
        );
    }

    // Each instance finds the new layout (a split and a whole, if it noticed the move by
    // a MOVED, an ASK or a dropped subscription); then nothing is lost.
    wait_until_whole(&mut clients, &[0, 2]);
    let mark: Vec<usize> = clients.iter().map(|c| c.seen.len()).collect();
    let per_client = 3;
    for round in 0..per_client {
        for client in &mut clients {
            let text = format!("after {round} by {}", client.nick);
            client.send(json!({"type": "message", "text": text}));
        }
    }
    let total = per_client * clients.len();
    let mut orders = Vec::new();
    for (client, &mark) in clients.iter_mut().zip(&mark) {
        let after = |events: &[ServerEvent]| {
            events
                .iter()
                .filter_map(|e| match e {
                    ServerEvent::Message { id, text, .. } if text.starts_with("after ") => {
                        Some((*id, text.clone()))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        while after(&client.seen[mark..]).len() < total {
            if client.next_within(WAIT).is_none() {
                panic!("{}: {:?}", client.nick, after(&client.seen[mark..]));
            }
        }
        assert!(
            client
                .next_within(Duration::from_millis(300))
                .is_none_or(|e| !matches!(e, ServerEvent::Message { .. })),
            "{}: a message after the last",
            client.nick
        );
        let heard = after(&client.seen[mark..]);
        let texts: std::collections::BTreeSet<&String> = heard.iter().map(|(_, t)| t).collect();
        assert_eq!(texts.len(), total, "{}: each once: {heard:?}", client.nick);
        assert!(
            client.seen[mark..]
                .iter()
                .all(|e| !matches!(e, ServerEvent::Split { .. })),
            "{}: split again once whole",
            client.nick
        );
        orders.push(heard.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
    }
    let first = &orders[0];
    assert!(
        first.windows(2).all(|w| w[1] == w[0] + 1) && first[0] != 0,
        "ids contiguous after the move: {first:?}"
    );
    for order in &orders {
        assert_eq!(order, first, "every client saw the room's one order");
    }

    // Over the whole run, everyone saw every message that got an id, once, in order:
    // the ids went on from before the move (no reset, no gap, no duplicate).
    let everything = redis_ids(&clients[0].seen);
    assert_eq!(everything[..before.len()], before);
    assert!(
        everything.windows(2).all(|w| w[1] == w[0] + 1),
        "ids continue across the move: {everything:?}"
    );
    assert_eq!(everything.last(), first.last());
    for client in &clients {
        assert_eq!(redis_ids(&client.seen), everything, "{}", client.nick);
        whole_after_every_split(client);
    }

    // A newcomer on either instance gets the history, from before the move on.
    for addr in [a.addr, b.addr] {
        let cy = Client::arrive(addr);
        let history = redis_ids(&cy.arrival_history().0);
        assert_eq!(history, everything, "the history on {addr}");
    }
}

#[test]
fn a_cluster_directory_slot_that_moves_keeps_nicknames_and_presence() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let (a, b) = (instance(&urls[0]), instance(&urls[1]));
    let mut clients = vec![Client::arrive(a.addr), Client::arrive(b.addr)];
    clients[0].set_nick("ada");
    clients[1].set_nick("bob");
    clients[0].expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "bob"));

    // Move the directory's slot (members, nicknames, the presence channel and the
    // instances' inboxes) while ada and bob talk.
    let slot = cluster.key_slot("lc:{lc}:ver");
    let from = cluster.master_of(slot, 0).expect("the directory's master");
    let to = (from + 1) % urls.len();
    std::thread::scope(|scope| {
        let mover = scope.spawn(|| cluster.move_slot(slot, to, MIGRATION_DWELL));
        let mut round = 0;
        while !mover.is_finished() {
            for client in &mut clients {
                let text = format!("during {round} by {}", client.nick);
                client.send(json!({"type": "message", "text": text}));
                while client.next_within(Duration::from_millis(50)).is_some() {}
            }
            round += 1;
        }
        mover.join().expect("the slot moved");
    });

    // Private messages go through the directory's shard: once one reaches each side,
    // both instances are whole with the new layout.
    let deadline = Instant::now() + WAIT;
    for attempt in 0.. {
        assert!(Instant::now() < deadline, "no private message got through");
        let text = format!("psst {attempt}");
        clients[0].send(json!({"type": "private", "to": "bob", "text": text}));
        let got = |seen: &[ServerEvent]| {
            seen.iter()
                .any(|e| matches!(e, ServerEvent::Private { text: t, .. } if *t == text))
        };
        let mut through = true;
        for client in &mut clients {
            through &= client.saw_within(PROBE_WAIT, got);
        }
        if through {
            break;
        }
    }
    let [ada, bob] = &mut clients[..] else {
        unreachable!()
    };
    whole_after_every_split(ada);
    whole_after_every_split(bob);

    // The nicknames and the members came through the move.
    assert_eq!(ada.who("lobby"), ["ada", "bob"]);
    assert_eq!(bob.who("lobby"), ["ada", "bob"]);
    bob.send(json!({"type": "nick", "nick": "ADA"}));
    bob.expect_error(ErrorCode::NickTaken);
    bob.set_nick("bobby");
    ada.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "bobby"));
    // Presence: a newcomer arrives everywhere with a fresh guest name, and leaves.
    let cy = Client::arrive(b.addr);
    assert!(!["ada", "bobby"].contains(&cy.nick.as_str()));
    let nick = cy.nick.clone();
    ada.expect(|e| matches!(e, ServerEvent::Join { nick: n, .. } if *n == nick));
    drop(cy);
    ada.expect(|e| {
        matches!(e, ServerEvent::Leave { nick: n, reason: LeaveReason::Disconnected, .. }
            if *n == nick)
    });
    bob.send(json!({"type": "private", "to": "ada", "text": "after the move"}));
    ada.expect(|e| matches!(e, ServerEvent::Private { text, .. } if text == "after the move"));
    let id = ada.say("still one chat");
    assert_eq!(bob.hears("ada", "still one chat"), id);
}

#[test]
fn the_line_port_is_in_the_same_chat() {
    use std::io::{BufRead, BufReader, Write};
    let redis = RedisServer::start();
    let a = instance(&redis.url());
    let b = ServerProcess::start(&["--redis", &redis.url(), "--tcp-addr", "127.0.0.1:0"]);
    // Logged just after the address ServerProcess waited for.
    let deadline = Instant::now() + WAIT;
    let line_addr: SocketAddr = loop {
        let found = b.log_text().lines().find_map(|l| {
            l.split("line port for nc/telnet on ")
                .nth(1)?
                .trim()
                .parse()
                .ok()
        });
        if let Some(addr) = found {
            break addr;
        }
        assert!(Instant::now() < deadline, "no line port in the log");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut ada = Client::arrive(a.addr);
    ada.set_nick("ada");
    let stream = TcpStream::connect(line_addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut nc = stream;
    let mut read_until = |wanted: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "EOF before {wanted:?}"
            );
            if line.contains(wanted) {
                return line.clone();
            }
        }
    };
    read_until("recent messages in #lobby");
    nc.write_all(b"/nick netcat\n").unwrap();
    ada.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "netcat"));
    nc.write_all(b"hello from the line port\n").unwrap();
    ada.hears("netcat", "hello from the line port");
    ada.say("hello, netcat");
    read_until("[#lobby] ada: hello, netcat");
    nc.write_all(b"/who\n").unwrap();
    let who = read_until("* in #lobby:");
    assert!(who.contains("ada") && who.contains("netcat"), "{who}");
}

#[test]
fn a_redis_password_works_from_the_url_or_the_environment_and_is_never_logged() {
    let redis = RedisServer::start();
    let secret = "s3cret-pa55";
    redis.cli(&["CONFIG", "SET", "requirepass", secret]);
    let with_url = format!("redis://:{secret}@127.0.0.1:{}", redis.port());
    let a = ServerProcess::start(&["--redis", &with_url]);
    let b = ServerProcess::start_with(
        &[],
        &["--redis", &format!("redis://127.0.0.1:{}", redis.port())],
        &[("LOOPCHAT_REDIS_PASSWORD", secret), ("RUST_LOG", "debug")],
    );
    let mut ada = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    ada.set_nick("ada");
    bob.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "ada"));
    for (name, server) in [("a", &a), ("b", &b)] {
        let log = server.log_text();
        assert!(
            !log.contains(secret),
            "instance {name} logged the password:\n{log}"
        );
        assert!(log.contains("redis://:***@") || name == "b", "{log}");
    }
    // A wrong password: the instance says so, and its clients are told the chat is split.
    let wrong = format!("redis://:wrong@127.0.0.1:{}", redis.port());
    let c = ServerProcess::start(&["--redis", &wrong]);
    let cy = Client::arrive(c.addr);
    assert!(
        cy.seen
            .iter()
            .any(|e| matches!(e, ServerEvent::Split { .. }))
    );
    let deadline = Instant::now() + WAIT;
    while !c.log_text().contains("WRONGPASS") {
        assert!(Instant::now() < deadline, "{}", c.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!c.log_text().contains("wrong@"));
}

/// Whether a `split` comes within `within`.
fn split_within(client: &mut Client, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(ServerEvent::Split { .. }) = client.next_within(deadline - Instant::now()) {
            return true;
        }
    }
    false
}

#[test]
fn leaving_and_rejoining_a_room_does_not_split_the_chat() {
    let redis = RedisServer::start();
    let a = instance(&redis.url());
    let mut ada = Client::arrive(a.addr);
    for _ in 0..3 {
        ada.send(json!({"type": "join", "room": "x"}));
        ada.expect(|e| matches!(e, ServerEvent::History { room, .. } if room == "x"));
        ada.send(json!({"type": "leave", "room": "x"}));
        ada.send(json!({"type": "join", "room": "x"}));
        ada.expect(|e| matches!(e, ServerEvent::History { room, .. } if room == "x"));
        ada.send(json!({"type": "leave", "room": "x"}));
    }
    assert!(
        !split_within(&mut ada, Duration::from_secs(2)),
        "leaving and joining again split the chat"
    );
}

#[test]
fn what_was_said_elsewhere_during_a_split_reaches_every_room_after_it() {
    let redis = RedisServer::start();
    // Instance A reaches Redis as its own user, so that it alone can be cut off.
    redis.cli(&["ACL", "SETUSER", "a", "on", ">pw", "~*", "&*", "+@all"]);
    let a = instance(&format!("redis://a:pw@127.0.0.1:{}", redis.port()));
    let b = instance(&redis.url());
    let (mut ada, mut bob) = (Client::arrive(a.addr), Client::arrive(b.addr));
    bob.set_nick("bob");
    for room in ["quiet", "busy"] {
        for client in [&mut ada, &mut bob] {
            client.send(json!({"type": "join", "room": room}));
            client.expect(|e| matches!(e, ServerEvent::History { room: r, .. } if r == room));
        }
    }
    bob.send(json!({"type": "message", "room": "busy", "text": "before"}));
    ada.hears("bob", "before");
    redis.cli(&["ACL", "SETUSER", "a", "off"]);
    redis.cli(&["CLIENT", "KILL", "USER", "a"]);
    ada.expect(|e| matches!(e, ServerEvent::Split { .. }));
    for (room, text) in [("busy", "during busy"), ("quiet", "during quiet")] {
        bob.send(json!({"type": "message", "room": room, "text": text}));
        bob.expect(|e| matches!(e, ServerEvent::Message { text: t, .. } if t == text));
    }
    redis.cli(&["ACL", "SETUSER", "a", "on"]);
    ada.expect(|e| matches!(e, ServerEvent::Whole { .. }));
    ada.hears("bob", "during busy");
    ada.hears("bob", "during quiet");
}

#[test]
fn an_instance_taken_for_dead_after_a_stall_registers_its_members_again() {
    let redis = RedisServer::start();
    let args = ["--redis", &redis.url(), "--redis-timeout", "1"];
    let a = Instance(ServerProcess::start(&args));
    let b = Instance(ServerProcess::start(&args));
    let (mut ada, mut bob) = (Client::arrive(a.addr), Client::arrive(b.addr));
    ada.set_nick("ada");
    bob.expect(|e| matches!(e, ServerEvent::Nick { new, .. } if new == "ada"));
    // A stall longer than the timeout: B takes A for dead and removes ada.
    a.signal("STOP");
    bob.expect(|e| matches!(e, ServerEvent::Leave { nick, .. } if nick == "ada"));
    a.signal("CONT");
    // A finds out at its next beat, and registers ada again.
    bob.expect(|e| matches!(e, ServerEvent::Join { nick, .. } if nick == "ada"));
    ada.expect(|e| matches!(e, ServerEvent::Whole { .. }));
    let id = ada.say("still here");
    assert_ne!(id, 0);
    assert_eq!(bob.hears("ada", "still here"), id);
}

#[test]
fn a_big_image_crosses_instances_and_comes_back_in_a_history() {
    use base64::Engine;
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis.url()), instance(&redis.url()));
    let mut ada = Client::arrive(a.addr);
    let mut bob = Client::arrive(b.addr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(1_500_000, 7);
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    ada.send(json!({"type": "image", "data": data}));
    for client in [&mut ada, &mut bob] {
        client.expect(|e| matches!(e, ServerEvent::Image { size, .. } if *size == png.len()));
    }
    // A newcomer on the other instance of a room it holds no more: the history (several
    // MiB, several reads of the link) is loaded from Redis.
    drop(bob);
    let deadline = Instant::now() + WAIT;
    while ada.who("lobby").len() != 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..2 {
        let cy = Client::arrive(b.addr);
        let (history, _) = cy.arrival_history();
        assert!(
            matches!(history.last(), Some(ServerEvent::Image { size, data, .. }) if *size == png.len() && *data == data_of(&png)),
            "the image in the history"
        );
    }
}

fn data_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn the_terminal_client_shows_the_split_and_its_end() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    let mut redis = RedisServer::start();
    let a = instance(&redis.url());
    let mut client = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(["client", &format!("ws://{}/ws", a.addr)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loopchat client");
    let stdout = client.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut expect = |wanted: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(wanted) => return,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line with {wanted:?}; saw {seen:#?}"),
            }
        }
    };
    expect("recent messages in #lobby");
    redis.stop();
    expect("the chat is split");
    redis.restart();
    expect("the chat is whole again");
    let _ = client.kill();
    let _ = client.wait();
}

#[test]
fn workers_and_instances_compose_over_redis() {
    // Two processes of two workers each: four instances on one Redis, one chat.
    let redis = RedisServer::start();
    let processes: Vec<Instance> = (0..2)
        .map(|_| {
            Instance(ServerProcess::start(&[
                "--redis",
                &redis.url(),
                "--workers",
                "2",
            ]))
        })
        .collect();
    let mut clients: Vec<Client> = processes
        .iter()
        .flat_map(|p| (0..3).map(|_| Client::arrive(p.addr)).collect::<Vec<_>>())
        .collect();
    let guests: std::collections::BTreeSet<String> =
        clients.iter().map(|c| c.nick.clone()).collect();
    assert_eq!(guests.len(), clients.len(), "guest names are unique");
    let last = clients.last().unwrap().nick.clone();
    clients[0].expect(|e| matches!(e, ServerEvent::Join { nick, .. } if *nick == last));
    clients[0].set_nick("Ada");
    for client in clients.iter_mut().skip(1) {
        client.send(json!({"type": "nick", "nick": "ADA"}));
        client.expect_error(ErrorCode::NickTaken);
    }
    let id = clients[0].say("hello, everyone");
    for client in clients.iter_mut().skip(1) {
        assert_eq!(client.hears("Ada", "hello, everyone"), id);
    }
    let mut members = clients[5].who("lobby");
    members.sort();
    let mut everyone: Vec<String> = clients.iter().map(|c| c.nick.clone()).collect();
    everyone.sort();
    assert_eq!(members, everyone);
}
