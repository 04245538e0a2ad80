//! The generator's shortcut for compressed broadcasts: a message compressed once by the
//! server and sent, byte for byte the same, to a thousand of the generator's clients is
//! inflated once, not a thousand times.
//!
//! A server that resets its compressor after every message (`server_no_context_takeover`:
//! loopchat, Bun's shared compressor) sends every recipient of a broadcast the same
//! compressed bytes, and those bytes inflate to the same message whichever connection
//! they arrive on: with no context taken over, the output depends on the input alone.
//! The generator has one core, and inflating every delivery of a 1 KiB chat message
//! costs it about 5 µs, so without this it, and not the server, would set the pace of a
//! deflate benchmark (about 130,000 deliveries/s on the development machine). So a
//! reader whose server resets its context looks each whole compressed message up here
//! first: a small table of recent messages, keyed by their compressed bytes (compared in
//! full, never by a hash alone), holding what each inflated to. Every delivery is still
//! read and its marker checked, from the same bytes a client inflating it would get.
//!
//! A server that keeps its context (Node's `ws` by default) compresses each connection's
//! stream differently, so its messages never match and are inflated one by one, as a
//! client must; and the table is not consulted for them at all.

use loopchat::ws::deflate::codec::{InflateError, Inflater};
use std::cell::RefCell;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// How many recent messages are kept: in sets of [`WAYS`], a message's set chosen by a
/// hash, the oldest of the set evicted by a new one. Many more than a benchmark has in
/// flight (senders × window), so that each is found again by all its recipients.
const SETS: usize = 256;
const WAYS: usize = 4;

/// How many bytes of a compressed message choose its slot (with its length). Compressed
/// data is close to random, so the first bytes spread messages well; the full
/// comparison makes the choice safe.
const KEY_PREFIX: usize = 64;

/// Messages larger than this once inflated are not kept, so the table holds at most
/// 16 MiB of them (and each such message is inflated for every recipient).
const MAX_KEPT: usize = 16 * 1024;

/// One remembered message.
#[derive(Debug, Default)]
struct Slot {
    compressed: Vec<u8>,
    inflated: Vec<u8>,
}

/// Recent compressed messages and what they inflated to.
#[derive(Debug)]
pub struct InflateCache {
    /// `SETS` sets of `WAYS` slots, set after set.
    slots: Vec<Slot>,
    /// For each set, the way the next new message takes: the oldest.
    next_way: Vec<u8>,
    /// What a message too large to keep inflated to, until the next one.
    scratch: Vec<u8>,
    hits: u64,
    misses: u64,
}

impl Default for InflateCache {
    fn default() -> InflateCache {
        InflateCache {
            slots: (0..SETS * WAYS).map(|_| Slot::default()).collect(),
            next_way: vec![0; SETS],
            scratch: Vec::new(),
            hits: 0,
            misses: 0,
        }
    }
}

thread_local! {
    /// The generator's one table: its clients all run on one thread.
    static CACHE: RefCell<InflateCache> = RefCell::new(InflateCache::default());
}

/// Calls `on` with what `compressed` (a whole message from a server that resets its
/// context) inflates to, within `max_message` bytes, using this thread's table.
pub fn with_inflated<R>(
    compressed: &[u8],
    max_message: usize,
    on: impl FnOnce(&[u8]) -> R,
) -> Result<R, InflateError> {
    CACHE.with_borrow_mut(|cache| cache.inflate(compressed, max_message).map(on))
}

impl InflateCache {
    /// What `compressed` inflates to: remembered, or inflated now (with a fresh state,
    /// as the server compressed it) and remembered.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        max_message: usize,
    ) -> Result<&[u8], InflateError> {
        let key = &compressed[..compressed.len().min(KEY_PREFIX)];
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one((compressed.len(), key));
        let set = (hash % SETS as u64) as usize;
        let ways = set * WAYS..(set + 1) * WAYS;
        if let Some(index) = ways.clone().find(|&i| {
            let slot = &self.slots[i];
            slot.compressed == compressed && slot.inflated.len() <= max_message
        }) {
            self.hits += 1;
            return Ok(&self.slots[index].inflated);
        }
        self.misses += 1;
        let mut inflated = std::mem::take(&mut self.scratch);
        inflated.clear();
        let mut inflater = Inflater::new(max_message, false);
        let result = inflater
            .feed(compressed, &mut inflated)
            .and_then(|()| inflater.finish(&mut inflated));
        if let Err(e) = result {
            self.scratch = inflated;
            return Err(e);
        }
        if inflated.len() > MAX_KEPT {
            self.scratch = inflated;
            return Ok(&self.scratch);
        }
        let way = &mut self.next_way[set];
        let index = ways.start + usize::from(*way);
        *way = (*way + 1) % WAYS as u8;
        let slot = &mut self.slots[index];
        slot.compressed.clear();
        slot.compressed.extend_from_slice(compressed);
        self.scratch = std::mem::replace(&mut slot.inflated, inflated);
        Ok(&slot.inflated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopchat::ws::deflate::codec::compress_message;

    #[test]
    fn each_message_is_inflated_once_and_found_by_its_bytes() {
        let mut cache = InflateCache::default();
        let texts: Vec<String> = (0..40)
            .map(|i| format!("message {i}: ").repeat(20 + i))
            .collect();
        let compressed: Vec<Vec<u8>> = texts
            .iter()
            .map(|t| compress_message(t.as_bytes(), 15, 2))
            .collect();
        for _recipient in 0..3 {
            for (text, bytes) in texts.iter().zip(&compressed) {
                assert_eq!(cache.inflate(bytes, 1 << 20).unwrap(), text.as_bytes());
            }
        }
        assert_eq!((cache.misses, cache.hits), (40, 80));
        // The limit still holds for a remembered message, and bad data is an error.
        assert_eq!(
            cache.inflate(&compressed[39], 10),
            Err(InflateError::TooBig { limit: 10 })
        );
        assert_eq!(
            cache.inflate(&[0xff, 0xff, 0xff], 1 << 20),
            Err(InflateError::Corrupt)
        );
        // The same start and length, another last byte: not taken for the remembered
        // message (whatever it inflates to, if anything).
        let mut changed = compressed[0].clone();
        *changed.last_mut().unwrap() ^= 0x80;
        let hits = cache.hits;
        let _ = cache.inflate(&changed, 1 << 20);
        assert_eq!(cache.hits, hits);
    }
}
