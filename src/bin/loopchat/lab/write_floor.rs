//! The floor under a broadcast: what the kernel charges the writer for one write of K
//! frames to a loopback TCP socket, when nothing else is done. A server that writes K
//! frames a write does this and more, so this is the limit that docs/REPORT.md draws
//! beside loopchat's CPU per delivery. It is measured, not derived: run to run, and
//! with how often the reader must be woken, it varies by some percent, so a server's
//! figure can come out a little under it.
//!
//! The measurement has the server's shape without the server: C connections over
//! 127.0.0.1; one thread (the "writer", standing for the server) writes the same buffer
//! of K ready-made WebSocket frames to each connection in turn, one `write(2)` each
//! (more only when the kernel takes part of it); another thread (the "reader", standing
//! for the clients) reads everything with one `mio::Poll`, as `loopchat bench` does.
//! With `--writer-cpu` and `--reader-cpu` the two threads are pinned, as a server and its
//! load generator are by the benchmark scripts. The writer's CPU time (user and system,
//! from `/proc/thread-self/stat`) divided by the frames written is the figure. Whatever
//! the kernel does for the write in the writer's system call (on loopback, much of the
//! receiving side's work too) is in it, as it is in a server's `writev`.
//!
//! The writer's sockets are blocking: when one's send buffer is full the writer sleeps
//! until the reader has drained it. Going to sleep and waking cost the writer some CPU,
//! counted in the figure; with a reader that keeps up it seldom happens.

use crate::bench::proc::parse_stat_cpu_ticks;
use loopchat::ws::frame::{Opcode, encode_frame};
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// What one measurement is asked to do.
#[derive(Debug, Clone)]
pub struct FloorSpec {
    /// The frames in each write, one measurement per value.
    pub frames_per_write: Vec<usize>,
    /// Payload bytes of each frame (a text frame; the header adds 2 to 10 bytes).
    pub size: usize,
    /// Loopback connections written to in turn.
    pub connections: usize,
    /// How long each measurement writes.
    pub duration: Duration,
    /// The CPU to pin the writer to, if any.
    pub writer_cpu: Option<usize>,
    /// The CPU to pin the reader to, if any.
    pub reader_cpu: Option<usize>,
}

/// The result of every measurement of one run.
#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    /// What this is, for a reader of the JSON.
    pub experiment: &'static str,
    /// Payload bytes of each frame.
    pub size: usize,
    /// Bytes of each frame on the wire, header included.
    pub frame_bytes: usize,
    /// Connections written to in turn.
    pub connections: usize,
    /// Seconds each measurement wrote for.
    pub duration_s: f64,
    /// The CPU the writer was pinned to, if it was.
    pub writer_cpu: Option<usize>,
    /// The CPU the reader was pinned to, if it was.
    pub reader_cpu: Option<usize>,
    /// One per value of frames per write, in the order asked.
    pub points: Vec<FloorPoint>,
}

/// One measurement: K frames per write.
#[derive(Debug, Clone, Serialize)]
pub struct FloorPoint {
    /// Frames in each write (K).
    pub frames_per_write: usize,
    /// Bytes in each write.
    pub write_bytes: usize,
    /// `write(2)` calls made (a partial write takes more than one).
    pub writes: u64,
    /// Frames written.
    pub frames: u64,
    /// The writer thread's CPU time, user and system, in seconds.
    pub writer_cpu_s: f64,
    /// Wall-clock seconds the writes took.
    pub wall_s: f64,
    /// Writer CPU per `write(2)` call, nanoseconds.
    pub cpu_ns_per_write: f64,
    /// Writer CPU per frame, nanoseconds: the floor of CPU per delivery at this K.
    pub cpu_ns_per_frame: f64,
    /// Bytes the reader received (equal to the bytes written, or the run failed).
    pub bytes_read: u64,
}

/// Runs one measurement per value of frames per write.
pub fn run(spec: &FloorSpec) -> io::Result<FloorReport> {
    let mut frame = Vec::new();
    encode_frame(&mut frame, Opcode::Text, true, &vec![b'x'; spec.size], None);
    let points = spec
        .frames_per_write
        .iter()
        .map(|&k| measure(&frame, k, spec))
        .collect::<io::Result<Vec<_>>>()?;
    Ok(FloorReport {
        experiment: "write-floor",
        size: spec.size,
        frame_bytes: frame.len(),
        connections: spec.connections,
        duration_s: spec.duration.as_secs_f64(),
        writer_cpu: spec.writer_cpu,
        reader_cpu: spec.reader_cpu,
        points,
    })
}

fn measure(frame: &[u8], k: usize, spec: &FloorSpec) -> io::Result<FloorPoint> {
    if k == 0 || k > MAX_FRAMES_PER_WRITE {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("frames per write must be 1 to {MAX_FRAMES_PER_WRITE}, not {k}"),
        ));
    }
    let batch: Vec<u8> = frame.repeat(k);
    let (writers, readers) = connect_pairs(spec.connections.max(1))?;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        let cpu = spec.reader_cpu;
        thread::Builder::new()
            .name("floor-reader".into())
            .spawn(move || {
                pin(cpu)?;
                read_all(readers, &done)
            })?
    };

    let result = pin(spec.writer_cpu).and_then(|()| write_for(&writers, &batch, spec.duration));
    // Closing the writing side lets the reader see every connection end after its bytes.
    for w in &writers {
        let _ = w.shutdown(Shutdown::Write);
    }
    done.store(true, Ordering::Relaxed);
    let bytes_read = reader
        .join()
        .map_err(|_| io::Error::other("the reader thread panicked"))??;
    let (writes, bytes_written, cpu, wall) = result?;
    if bytes_read != bytes_written {
        return Err(io::Error::other(format!(
            "wrote {bytes_written} bytes but the reader received {bytes_read}"
        )));
    }
    let frames = bytes_written / frame.len() as u64;
    Ok(FloorPoint {
        frames_per_write: k,
        write_bytes: batch.len(),
        writes,
        frames,
        writer_cpu_s: cpu,
        wall_s: wall,
        cpu_ns_per_write: cpu * 1e9 / writes.max(1) as f64,
        cpu_ns_per_frame: cpu * 1e9 / frames.max(1) as f64,
        bytes_read,
    })
}

/// Writes `batch` to each connection in turn until `duration` has passed; every batch
/// started is finished. Returns the calls, the bytes, the writer's CPU seconds and the
/// wall-clock seconds.
fn write_for(
    writers: &[TcpStream],
    batch: &[u8],
    duration: Duration,
) -> io::Result<(u64, u64, f64, f64)> {
    let cpu_before = thread_cpu_seconds()?;
    let start = Instant::now();
    let (mut writes, mut bytes) = (0u64, 0u64);
    // At least one round, however the thread was scheduled.
    loop {
        for mut w in writers {
            let mut rest = batch;
            while !rest.is_empty() {
                match w.write(rest) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        writes += 1;
                        bytes += n as u64;
                        rest = &rest[n..];
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if start.elapsed() >= duration {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds()? - cpu_before;
    Ok((writes, bytes, cpu, wall))
}

/// The most frames a write may be asked to carry (64-byte frames: 4.2 MB a write).
pub const MAX_FRAMES_PER_WRITE: usize = 65_536;

/// The calling thread's CPU time, in seconds: `/proc/thread-self/stat` only, never the
/// whole process's (which would count the reader too).
fn thread_cpu_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    parse_stat_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / crate::bench::proc::TICKS_PER_SECOND)
        .ok_or_else(|| io::Error::other("cannot parse /proc/thread-self/stat"))
}

/// Pins the calling thread to `cpu`, if one is given.
fn pin(cpu: Option<usize>) -> io::Result<()> {
    let Some(cpu) = cpu else { return Ok(()) };
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cannot pin a thread to CPU {cpu}"
        )))
    }
}

/// `n` loopback connections: the accepted ends (blocking, for the writer) and the
/// connecting ends (non-blocking, for the reader's poll).
fn connect_pairs(n: usize) -> io::Result<(Vec<TcpStream>, Vec<MioStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (mut writers, mut readers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        server.set_nodelay(true)?;
        client.set_nonblocking(true)?;
        writers.push(server);
        readers.push(MioStream::from_std(client));
    }
    Ok((writers, readers))
}

/// Reads every connection until each has ended (or `done` is set and a poll turns up
/// nothing for a second), returning the bytes read.
fn read_all(mut readers: Vec<MioStream>, done: &AtomicBool) -> io::Result<u64> {
    let mut poll = Poll::new()?;
    for (i, r) in readers.iter_mut().enumerate() {
        poll.registry().register(r, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut open = readers.len();
    let mut ended = vec![false; readers.len()];
    let mut total = 0u64;
    let mut quiet_since: Option<Instant> = None;
    while open > 0 {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        if events.is_empty() && done.load(Ordering::Relaxed) {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(1) {
                break;
            }
            continue;
        }
        quiet_since = None;
        for event in &events {
            let i = event.token().0;
            if ended[i] {
                continue;
            }
            loop {
                match readers[i].read(&mut buf) {
                    Ok(0) => {
                        ended[i] = true;
                        open -= 1;
                        break;
                    }
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_written_is_read_and_counted() {
        let report = run(&FloorSpec {
            frames_per_write: vec![1, 64],
            size: 64,
            connections: 4,
            duration: Duration::from_millis(300),
            writer_cpu: None,
            reader_cpu: None,
        })
        .unwrap();
        assert_eq!(report.frame_bytes, 66);
        let [one, many] = &report.points[..] else {
            panic!("{report:?}")
        };
        for p in [one, many] {
            assert!(p.writes > 0 && p.frames >= p.writes, "{p:?}");
            assert_eq!(p.bytes_read, p.frames * 66, "{p:?}");
            assert_eq!(p.write_bytes, p.frames_per_write * 66);
        }
        // Blocking sockets take a whole batch in one call, so the calls count batches.
        assert_eq!(one.writes, one.frames, "{one:?}");
        assert_eq!(many.writes * 64, many.frames, "{many:?}");
    }

    #[test]
    fn frames_per_write_out_of_range_are_refused() {
        for k in [0, MAX_FRAMES_PER_WRITE + 1] {
            let error = run(&FloorSpec {
                frames_per_write: vec![k],
                size: 64,
                connections: 1,
                duration: Duration::from_millis(10),
                writer_cpu: None,
                reader_cpu: None,
            })
            .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        }
    }
}
