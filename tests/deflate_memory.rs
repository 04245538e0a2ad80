//! What permessage-deflate holds on the heap, counted by a global allocator: the one
//! `Compressor` of a loop, an `Inflater` idle and mid-message, and a deflate bomb
//! inflated against the message size limit. `--nocapture` prints the figures.

use loopchat::ws::deflate::codec::{Compressor, Inflater, compress_message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    // The system's realloc, as the program uses it, counted as growth only: glibc grows
    // a large mapped block in place with mremap. A block that has to move is briefly held
    // twice, the old one being at most half the new one.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now =
                IN_USE.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            IN_USE.fetch_sub(layout.size() - new_size, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes `make` leaves allocated (negative: frees), with what it returns kept alive.
fn held_by<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let before = IN_USE.load(Relaxed) as isize;
    let value = make();
    (value, IN_USE.load(Relaxed) as isize - before)
}

// One test function: the counters are global, and tests in one binary run in parallel.
#[test]
fn deflate_state_costs_what_the_documentation_says() {
    for bits in [8, 15] {
        let (compressor, held) = held_by(|| Compressor::new(bits, 2));
        println!("Compressor at {bits} window bits: {held} bytes");
        assert!(held < 400 << 10, "{held}");
        drop(compressor);
    }

    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let (mut inflater, idle) = held_by(|| Inflater::new(1 << 20, false));
    assert_eq!(idle, 0, "an idle inflater holds no heap");
    let mut out = Vec::with_capacity(1024);
    let ((), receiving) = held_by(|| inflater.feed(&hello, &mut out).unwrap());
    println!("Inflater receiving a message: {receiving} bytes");
    assert!(receiving < 48 << 10, "{receiving}");
    let ((), after) = held_by(|| inflater.finish(&mut out).unwrap());
    assert_eq!(after, -receiving, "the state goes");

    let limit = 1 << 20;
    let bomb = compress_message(&vec![0; 10 << 20], 15, 9);
    let mut inflater = Inflater::new(limit, false);
    let mut out = Vec::new();
    let base = IN_USE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let result = bomb
        .chunks(4096)
        .try_for_each(|f| inflater.feed(f, &mut out));
    assert!(result.is_err());
    let peak = PEAK.load(Relaxed) - base;
    println!(
        "10 MiB of zeros ({} bytes compressed) against a 1 MiB limit: peak {peak} bytes",
        bomb.len()
    );
    assert!(peak <= limit + (64 << 10), "{peak}");
}
