//! What the loop counts. A leaf: every layer that counts something imports it.

/// What the loop counts, for operators and tests ([`Server::stats`](super::Server::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted, on either port.
    pub accepted: u64,
    /// Connections refused with 503: the server was full, or out of file descriptors
    /// (those are also in `refused_no_descriptors`).
    pub refused_full: u64,
    /// Of `refused_full`, those refused because the process had no file descriptor
    /// left (the spare one was given up to answer them).
    pub refused_no_descriptors: u64,
    /// Clients closed with 1008 for letting their output queue fill (under
    /// [`SlowConsumer::Drop`](super::SlowConsumer::Drop), only those whose own Pongs filled it).
    pub slow_closed: u64,
    /// Messages not queued for a full client, or shed from its queue
    /// ([`SlowConsumer::Drop`](super::SlowConsumer::Drop)).
    pub dropped_messages: u64,
    /// WebSocket clients dropped after the idle timeout, their Ping unanswered.
    pub idle_dropped: u64,
    /// Connections closed with 1008 for sending messages faster than
    /// [`ServerConfig::message_rate`](super::ServerConfig::message_rate) allows. (A
    /// handler's own limits, such as the chat's, close through
    /// [`Context::close`](super::Context::close) and are not counted here.)
    pub rate_closed: u64,
    /// Connections dropped because the peer did not finish the closing handshake (or,
    /// on the line port, take its last output) within the close timeout.
    pub close_timed_out: u64,
}
