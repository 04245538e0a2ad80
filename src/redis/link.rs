//! [`Link`]: the protocol state of one connection to one Redis server.
//!
//! Everything that decides what the link does lives here: the handshake, the queue of
//! what the server still owes, and how each frame is matched against it. The rules:
//!
//! - Redis answers the commands of a connection in the order it received them, so a
//!   FIFO of what is awaited (`Awaiting`) pairs each reply with its command. Commands
//!   are pipelined: the handshake's, then the caller's, all written at once.
//! - A RESP3 push frame (`>`) is never a reply. Messages, and the confirmations of
//!   `SUBSCRIBE` and its three siblings, arrive as pushes, and a push never takes a
//!   command's place in the FIFO.
//! - A subscription command that *fails* is answered like any other command, with an
//!   in-order error reply and no push. So the FIFO holds a marker for it, without a
//!   tag (`Awaiting::Confirmations`). The marker goes as the error arrives, or once its
//!   channels are all confirmed: a command that has begun to confirm cannot fail, and
//!   counting them all keeps its confirmations from being taken for the next command's.
//!   An "unsubscribe from all" names no channels, so its first confirmation is enough.
//!
//! What redis-server 7.0.15 does on a RESP3 connection, checked on the wire (a single
//! server, and a two-node cluster moving a slot):
//!
//! - `SUBSCRIBE a b a` answers three pushes, one per argument in order, duplicates
//!   included: `>3 subscribe a 1`, `>3 subscribe b 2`, `>3 subscribe a 2` (the number is
//!   the connection's subscription count). `SSUBSCRIBE` answers `ssubscribe` pushes
//!   and counts shard channels apart.
//! - `UNSUBSCRIBE x y` answers one push per argument, subscribed or not:
//!   `>3 unsubscribe x 0`. `UNSUBSCRIBE` with no argument answers one push per channel
//!   it drops, in no defined order, or, with none to drop, one push whose channel is
//!   null: `>3 unsubscribe _ 0`. `SUNSUBSCRIBE` does the same with `sunsubscribe`.
//!   The count after a plain `UNSUBSCRIBE` includes pattern subscriptions, so it is no
//!   guide to when an "unsubscribe from all" is done.
//! - Errors come as ordinary in-order replies, never as pushes: `SUBSCRIBE` with no
//!   channel is `-ERR wrong number of arguments for 'subscribe' command`; a user whose
//!   ACL forbids a channel gets `-NOPERM this user has no permissions to access one of
//!   the channels used as arguments` for the whole command, and no push.
//! - `SSUBSCRIBE a b` with channels in different hash slots is accepted by a server
//!   that is not in cluster mode. A cluster node refuses it with `-CROSSSLOT Keys in
//!   request don't hash to the same slot`, and answers `SSUBSCRIBE` or `SUNSUBSCRIBE`
//!   for a slot it does not serve with `-MOVED 13271 127.0.0.1:7402`: in order, no push.
//! - Ordinary commands (`PING`, `GET`) still work on a subscribed RESP3 connection and
//!   answer in order, which is why one link can carry both.
//! - Messages are `>3 message channel payload` and `>3 smessage channel payload`.
//! - In a cluster, a node that hands a hash slot to another (`CLUSTER SETSLOT s NODE
//!   id`) at once sends `>3 sunsubscribe channel count` for each sharded channel of the
//!   slot, unasked; the link reports it as an [`Event::Unsubscribed`] like any other.
//! - `HELLO 3 AUTH default wrong` on a server with `requirepass` answers `-WRONGPASS`;
//!   the commands pipelined behind it get `-NOAUTH` and are not run. On a server without
//!   a password, `HELLO 3 AUTH default anything` succeeds (the `default` user has
//!   `nopass`). `HELLO 4` answers `-NOPROTO`. (Not checked here: a Redis older than 6
//!   answers `HELLO` with `-ERR unknown command` and would run the pipelined commands in
//!   RESP2; the link fails, and the caller should take their tags as lost, not as never
//!   run.)

use std::collections::VecDeque;
use std::fmt;

use redis_protocol::resp3::encode::complete::encode_borrowed;
use redis_protocol::resp3::types::{BorrowedFrame, OwnedFrame};

use super::reader::ReplyReader;
use super::{Channel, Event, LinkError, RedisUrl, Value};

/// One Redis connection's protocol state, without the connection.
///
/// The caller owns the socket: it writes [`Link::output`] and reports how much the
/// kernel took with [`Link::consume_output`], passes what it reads to [`Link::feed`],
/// and handles [`Link::poll_event`]'s events. `T` is the caller's tag for a command
/// (a connection id, a request number), returned with the command's reply.
pub struct Link<T> {
    /// Where the conversation is.
    state: State,
    /// Bytes from the server, split into frames.
    reader: ReplyReader,
    /// Encoded commands, from `sent` on not yet taken by the kernel.
    output: Vec<u8>,
    /// How much of `output` has been written.
    sent: usize,
    /// What the server owes, in the order it will answer.
    awaiting: VecDeque<Awaiting<T>>,
    /// How many of `awaiting` are [`Awaiting::Reply`]: the caller's commands.
    tagged: usize,
    /// Events not yet polled.
    events: VecDeque<Event<T>>,
}

/// Where a link's conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many handshake replies are still to come.
    Handshaking { steps_left: usize },
    /// The handshake succeeded.
    Ready,
    /// The link failed or was given up: it reads, sends and reports nothing more.
    Failed,
}

/// One thing the server owes, in order.
enum Awaiting<T> {
    /// The reply to a handshake command.
    Handshake(&'static str),
    /// The reply to the caller's command with this tag.
    Reply(T),
    /// The outcome of a subscription command: its confirmation pushes, or an error.
    Confirmations(SubscriptionCommand),
}

/// A (S)SUBSCRIBE or (S)UNSUBSCRIBE whose confirmations have not all arrived.
struct SubscriptionCommand {
    kind: Channel,
    /// Subscribing or unsubscribing: with `kind`, which push confirms it.
    subscribing: bool,
    /// The channels named, in order; none for "unsubscribe from all".
    channels: Vec<Vec<u8>>,
    /// How many of `channels` have been confirmed. They are confirmed in order, so
    /// matching each push against the next one keeps the confirmations of this command
    /// from being taken for those of the next.
    confirmed: usize,
}

impl<T> Link<T> {
    /// A link to the server at `url`, with its handshake queued: `HELLO 3` (with
    /// `AUTH user password` if the URL has a password, the user being `default` if it
    /// names none), then `SELECT db` if the database is not 0.
    pub fn new(url: &RedisUrl) -> Link<T> {
        Link::start(url, None)
    }

    /// [`Link::new`], naming the connection for `CLIENT LIST` (`HELLO`'s `SETNAME`).
    /// Redis refuses a name with spaces or newlines, and the link then fails.
    pub fn with_client_name(url: &RedisUrl, name: &str) -> Link<T> {
        Link::start(url, Some(name))
    }

    fn start(url: &RedisUrl, name: Option<&str>) -> Link<T> {
        let mut link = Link {
            state: State::Handshaking { steps_left: 0 },
            reader: ReplyReader::new(),
            output: Vec::new(),
            sent: 0,
            awaiting: VecDeque::new(),
            tagged: 0,
            events: VecDeque::new(),
        };
        let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if let Some(password) = &url.password {
            hello.extend([b"AUTH", url.auth_user().as_bytes(), password.as_bytes()]);
        }
        if let Some(name) = name {
            hello.extend([&b"SETNAME"[..], name.as_bytes()]);
        }
        link.handshake("HELLO", &hello);
        if url.db != 0 {
            link.handshake("SELECT", &[b"SELECT", url.db.to_string().as_bytes()]);
        }
        link
    }

    fn handshake(&mut self, command: &'static str, args: &[&[u8]]) {
        self.encode(args);
        self.awaiting.push_back(Awaiting::Handshake(command));
        if let State::Handshaking { steps_left } = &mut self.state {
            *steps_left += 1;
        }
    }

    // ---- Commands -------------------------------------------------------------------

    /// Sends a command (`args[0]` is its name) and remembers `tag`, returned with the
    /// reply as [`Event::Reply`]. Replies are matched to commands by order, so a command
    /// that changes how the server answers must not be sent this way: not the
    /// subscription commands (use [`Link::subscribe`]; in RESP3 their answers are
    /// pushes, and the tag would wait for a reply that never comes, then take the next
    /// command's), nor `PSUBSCRIBE`, `MONITOR`, `CLIENT REPLY`, `HELLO` or `RESET`.
    ///
    /// Before [`Event::Ready`] the command is sent right behind the handshake. On a
    /// failed link nothing is sent, and the tag is kept for [`Link::fail_pending`].
    /// A command with no arguments is not sent (Redis would ignore it without a reply):
    /// it is answered at once with a [`Value::Error`].
    pub fn command(&mut self, tag: T, args: &[&[u8]]) {
        if args.is_empty() {
            let value = Value::Error("ERR empty command, not sent".into());
            self.events.push_back(Event::Reply { tag, value });
            return;
        }
        if self.state != State::Failed {
            self.encode(args);
        }
        self.awaiting.push_back(Awaiting::Reply(tag));
        self.tagged += 1;
    }

    /// Subscribes to `channels`: `SUBSCRIBE` or `SSUBSCRIBE`. Each channel is confirmed
    /// with an [`Event::Subscribed`]; a refusal is one [`Event::SubscriptionRefused`].
    /// No tag: nothing is added to [`Link::pending_replies`]. With no channels, or on a
    /// failed link, nothing is sent.
    pub fn subscribe(&mut self, kind: Channel, channels: &[&[u8]]) {
        if !channels.is_empty() {
            self.subscription_command(kind, true, channels);
        }
    }

    /// Unsubscribes from `channels`, or from every channel of `kind` if `channels` is
    /// empty: `UNSUBSCRIBE` or `SUNSUBSCRIBE`. Each channel dropped is reported with an
    /// [`Event::Unsubscribed`] (Redis confirms channels that were not subscribed, too;
    /// unsubscribing from all with none subscribed reports nothing).
    pub fn unsubscribe(&mut self, kind: Channel, channels: &[&[u8]]) {
        self.subscription_command(kind, false, channels);
    }

    fn subscription_command(&mut self, kind: Channel, subscribing: bool, channels: &[&[u8]]) {
        if self.state == State::Failed {
            return;
        }
        let command = match subscribing {
            true => kind.subscribe_command(),
            false => kind.unsubscribe_command(),
        };
        let mut args = Vec::with_capacity(channels.len() + 1);
        args.push(command);
        args.extend_from_slice(channels);
        self.encode(&args);
        self.awaiting
            .push_back(Awaiting::Confirmations(SubscriptionCommand {
                kind,
                subscribing,
                channels: channels.iter().map(|c| c.to_vec()).collect(),
                confirmed: 0,
            }));
    }

    /// Appends `args` to the output as a RESP array of blob strings, the form Redis
    /// reads commands in.
    fn encode(&mut self, args: &[&[u8]]) {
        // Drop what the kernel has taken once it is half the buffer: each byte is moved
        // at most once, and the buffer does not grow while the socket keeps up.
        if self.sent > 0 && self.sent * 2 >= self.output.len() {
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        let blobs: Vec<BorrowedFrame<'_>> = args
            .iter()
            .map(|arg| BorrowedFrame::BlobString {
                data: arg,
                attributes: None,
            })
            .collect();
        let frame = BorrowedFrame::Array {
            data: &blobs,
            attributes: None,
        };
        let start = self.output.len();
        self.output.resize(start + frame.encode_len(false), 0);
        // The encoder fails only when the buffer is too small, and it was just sized.
        let written = encode_borrowed(&mut self.output[start..], &frame, false)
            .expect("the buffer is sized by encode_len");
        self.output.truncate(start + written);
    }

    // ---- Bytes in, events out -------------------------------------------------------

    /// Takes bytes read from the server, and turns every frame they complete into
    /// events. Bytes of a frame not yet whole are kept, up to
    /// [`MAX_REPLY_BYTES`](super::MAX_REPLY_BYTES) for one reply. On a failed link,
    /// does nothing.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.state == State::Failed {
            return;
        }
        self.reader.extend(bytes);
        while self.state != State::Failed {
            match self.reader.next_frame() {
                Ok(Some(OwnedFrame::Push { data, .. })) => self.handle_push(data),
                Ok(Some(frame)) => self.handle_reply(Value::from(frame)),
                Ok(None) => break,
                Err(error) => self.fail(error),
            }
        }
    }

    /// The next event, in the order the server's bytes caused them.
    pub fn poll_event(&mut self) -> Option<Event<T>> {
        self.events.pop_front()
    }

    /// An in-order reply: pairs it with the front of the FIFO.
    fn handle_reply(&mut self, value: Value) {
        match self.awaiting.pop_front() {
            None => self.fail(LinkError::UnexpectedReply),
            Some(Awaiting::Reply(tag)) => {
                self.tagged -= 1;
                self.events.push_back(Event::Reply { tag, value });
            }
            Some(Awaiting::Handshake(command)) => match value {
                Value::Error(message) => self.fail(LinkError::Refused { command, message }),
                _ => {
                    if let State::Handshaking { steps_left } = &mut self.state {
                        *steps_left -= 1;
                        if *steps_left == 0 {
                            self.state = State::Ready;
                            self.events.push_back(Event::Ready);
                        }
                    }
                }
            },
            Some(Awaiting::Confirmations(command)) => match value {
                Value::Error(error) => self.events.push_back(Event::SubscriptionRefused {
                    kind: command.kind,
                    channels: command.channels,
                    error,
                }),
                // In RESP3 a subscription command that succeeds answers only pushes.
                _ => self.fail(LinkError::UnexpectedReply),
            },
        }
    }

    /// A push frame: a message, a subscription change, or something else.
    fn handle_push(&mut self, frame: Vec<OwnedFrame>) {
        let mut items: Vec<Value> = frame.into_iter().map(Value::from).collect();
        let push = items
            .first()
            .and_then(Value::as_bytes)
            .and_then(PushKind::of);
        let event = match (push, items.as_mut_slice()) {
            (Some(PushKind::Message(kind)), [_, Value::Bytes(channel), Value::Bytes(payload)]) => {
                Event::Message {
                    kind,
                    channel: std::mem::take(channel),
                    payload: std::mem::take(payload),
                }
            }
            (
                Some(PushKind::Confirmation { kind, subscribing }),
                [_, channel @ (Value::Bytes(_) | Value::Nil), Value::Int(_)],
            ) => {
                let channel = match channel {
                    Value::Bytes(channel) => Some(std::mem::take(channel)),
                    _ => None,
                };
                self.confirm(kind, subscribing, channel.as_deref());
                match (channel, subscribing) {
                    (None, _) => return, // "unsubscribe from all" with nothing to drop
                    (Some(channel), true) => Event::Subscribed { kind, channel },
                    (Some(channel), false) => Event::Unsubscribed { kind, channel },
                }
            }
            _ => Event::Push(Value::Array(items)),
        };
        self.events.push_back(event);
    }

    /// Counts a confirmation push against the subscription command at the front of the
    /// FIFO, if it is the one it confirms. Only the front can be: the server answers in
    /// order, so every command before it has been answered.
    fn confirm(&mut self, kind: Channel, subscribing: bool, channel: Option<&[u8]>) {
        let Some(Awaiting::Confirmations(command)) = self.awaiting.front_mut() else {
            return; // a later confirmation of an "unsubscribe from all", or unasked
        };
        if (command.kind, command.subscribing) != (kind, subscribing) {
            return;
        }
        let done = if command.channels.is_empty() {
            // "Unsubscribe from all": its first push shows it succeeded. How many more
            // follow is unknown here (see the module documentation), and they need
            // nothing from the FIFO.
            true
        } else if channel == command.channels.get(command.confirmed).map(Vec::as_slice) {
            command.confirmed += 1;
            command.confirmed == command.channels.len()
        } else {
            false // unasked, as a cluster's `sunsubscribe` when a slot moves
        };
        if done {
            self.awaiting.pop_front();
        }
    }

    /// The link is dead: reports why, once, and drops the buffers.
    fn fail(&mut self, error: LinkError) {
        self.state = State::Failed;
        self.reader = ReplyReader::new();
        self.output = Vec::new();
        self.sent = 0;
        self.events.push_back(Event::Failed(error));
    }

    // ---- Bytes out ------------------------------------------------------------------

    /// The bytes to write to the socket, from the first not yet written.
    pub fn output(&self) -> &[u8] {
        &self.output[self.sent..]
    }

    /// Marks the first `n` bytes of [`Link::output`] as written.
    pub fn consume_output(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.output.len());
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
        }
    }

    /// Whether there is output to write.
    pub fn wants_write(&self) -> bool {
        self.sent < self.output.len()
    }

    /// How many bytes are waiting to be written, so the caller can bound the output
    /// (a command is never refused here).
    pub fn output_len(&self) -> usize {
        self.output.len() - self.sent
    }

    // ---- State ----------------------------------------------------------------------

    /// Whether the handshake has succeeded and the link has not failed.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the link has failed or been given up ([`Link::fail_pending`]).
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// How many of the caller's commands await their reply.
    pub fn pending_replies(&self) -> usize {
        self.tagged
    }

    /// Gives the link up, as when its socket closed: returns the tags of the commands
    /// that will never be answered, oldest first. Some may have run: the server may have
    /// run a command and then lost the connection before its reply arrived. The link is
    /// failed afterwards (without an [`Event::Failed`]).
    pub fn fail_pending(&mut self) -> Vec<T> {
        self.state = State::Failed;
        self.reader = ReplyReader::new();
        self.output = Vec::new();
        self.sent = 0;
        self.tagged = 0;
        self.awaiting
            .drain(..)
            .filter_map(|awaiting| match awaiting {
                Awaiting::Reply(tag) => Some(tag),
                _ => None,
            })
            .collect()
    }
}

/// The pushes a link understands, by their first element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushKind {
    /// `message` or `smessage`: `[kind, channel, payload]`.
    Message(Channel),
    /// `subscribe`, `ssubscribe`, `unsubscribe` or `sunsubscribe`:
    /// `[kind, channel or null, count]`.
    Confirmation { kind: Channel, subscribing: bool },
}

impl PushKind {
    fn of(name: &[u8]) -> Option<PushKind> {
        Some(match name {
            b"message" => PushKind::Message(Channel::Plain),
            b"smessage" => PushKind::Message(Channel::Sharded),
            b"subscribe" => PushKind::Confirmation {
                kind: Channel::Plain,
                subscribing: true,
            },
            b"ssubscribe" => PushKind::Confirmation {
                kind: Channel::Sharded,
                subscribing: true,
            },
            b"unsubscribe" => PushKind::Confirmation {
                kind: Channel::Plain,
                subscribing: false,
            },
            b"sunsubscribe" => PushKind::Confirmation {
                kind: Channel::Sharded,
                subscribing: false,
            },
            _ => return None,
        })
    }
}

/// The state and the sizes, not the bytes.
impl<T> fmt::Debug for Link<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("state", &self.state)
            .field("pending_replies", &self.tagged)
            .field("awaiting", &self.awaiting.len())
            .field("output_len", &self.output_len())
            .field("buffered_input", &self.reader.buffered())
            .field("events", &self.events.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
