//! The keyboard side: a thread that reads standard input a line at a time and hands each
//! line to the event loop.
//!
//! Reading a terminal or a pipe blocks, and `mio` cannot wait on standard input portably,
//! so one thread does only that: a blocking read, a send on a bounded channel, and a
//! [`Waker`] call so that the loop's `poll` returns and takes the line. The bounded channel
//! carries back-pressure: if the loop stops taking lines (its output queue is full), the
//! thread blocks on `send` and stops reading, so a large file piped in is not read into
//! memory faster than the network takes it.
//!
//! The thread ends at end of input, on a read error, or once the loop is gone. It may stay
//! blocked in a read after the loop is done; the process exits without waiting for it.

use std::io::{self, BufRead};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use mio::Waker;

/// How many lines may wait between the reading thread and the loop.
const QUEUE_LINES: usize = 256;

/// What the reading thread reports.
#[derive(Debug)]
pub enum Input {
    /// A line, without its line ending. Bytes that are not UTF-8 are replaced by U+FFFD,
    /// so a terminal in another encoding still gets heard instead of ending the input.
    Line(String),
    /// Standard input ended (Ctrl-D, or the end of a pipe).
    End,
    /// Reading failed; no more input will come.
    Failed(io::Error),
}

/// Starts the thread that reads the source `open` gives it (standard input, locked, in
/// the client: a lock cannot move between threads, so it is taken in the thread) and
/// returns the receiving end of its channel. Each report is followed by a call to `waker`.
pub fn spawn_reader<R, F>(open: F, waker: Arc<Waker>) -> io::Result<Receiver<Input>>
where
    R: BufRead,
    F: FnOnce() -> R + Send + 'static,
{
    let (sender, receiver) = sync_channel(QUEUE_LINES);
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(open(), &sender, &waker))?;
    Ok(receiver)
}

/// The thread's body: read, send, wake, until the input or the loop ends.
fn read_lines<R: BufRead>(mut source: R, sender: &SyncSender<Input>, waker: &Waker) {
    let mut line = Vec::new();
    loop {
        line.clear();
        let report = match source.read_until(b'\n', &mut line) {
            Ok(0) => Input::End,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                Input::Line(String::from_utf8_lossy(text).into_owned())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Input::Failed(e),
        };
        let last = !matches!(report, Input::Line(_));
        // A failed send or wake means the loop is gone: nobody is listening any more.
        if sender.send(report).is_err() || waker.wake().is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    #[test]
    fn lines_then_end_each_with_a_wake_up() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(7)).unwrap());
        let input: &[u8] = b"hello\r\nw\xffrld\n\nlast";
        // The poll hears a waker only while it exists: keep one here, as the session does.
        let lines = spawn_reader(move || input, Arc::clone(&waker)).unwrap();
        let mut got = Vec::new();
        while let Ok(report) = lines.recv_timeout(Duration::from_secs(10)) {
            got.push(format!("{report:?}"));
        }
        assert_eq!(
            got,
            [
                r#"Line("hello")"#,
                "Line(\"w\u{fffd}rld\")",
                r#"Line("")"#,
                r#"Line("last")"#,
                "End"
            ]
        );
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(7)));
    }
}
