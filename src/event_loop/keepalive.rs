//! Keepalive: how the loop notices a WebSocket peer that vanished without closing.
//!
//! A peer that loses power or network sends no FIN, and TCP alone may not notice for
//! hours. So while an open WebSocket connection is quiet, its one deadline is the
//! keepalive's: after [`KeepaliveConfig::ping_interval`] with nothing heard it is sent a
//! Ping (any bytes it sends count as heard, its Pong included), and after
//! [`KeepaliveConfig::idle_timeout`] with nothing heard it is dropped. The bookkeeping
//! of when the peer was last heard is the sans-IO [`Keepalive`](crate::ws::Keepalive);
//! this file acts on its answer.

use super::connections::Connections;
use crate::ws::{KeepaliveAction, KeepaliveConfig};
use log::debug;

/// Acts on connection `key`'s keepalive deadline: pings it, or sets the next deadline.
/// Returns the reason to remove it, after the idle timeout. The client then sees the
/// connection end without a Close (1006 in a browser): a peer that has not answered for
/// that long is not expected to read one.
pub(crate) fn on_deadline(
    conns: &mut Connections,
    config: &KeepaliveConfig,
    key: usize,
) -> Option<String> {
    let conn = conns.slab.get_mut(key)?;
    let keepalive = conn.keepalive.as_mut()?;
    match keepalive.poll(conns.now, config) {
        KeepaliveAction::Wait(at) => conns.set_deadline(key, Some(at)),
        KeepaliveAction::Ping(at) => {
            let interval = config.ping_interval;
            debug!("{}: #{key} quiet for {interval:?}; ping", conn.peer);
            // A Ping is never dropped; a client whose own Pongs fill its queue is closed,
            // and then its close deadline stands.
            if conns.ping(key).is_ok() {
                conns.set_deadline(key, Some(at));
            }
        }
        KeepaliveAction::GiveUp => {
            conns.stats.idle_dropped += 1;
            return Some(format!("nothing heard for {:?}", config.idle_timeout));
        }
    }
    None
}
