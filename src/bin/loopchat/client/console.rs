//! The screen side: what the server says goes to standard output, what the client says
//! about itself goes to standard error.
//!
//! Standard output carries the chat and nothing else, one event per line group (an event
//! such as the history of a room spans several lines), flushed at once so that a program
//! reading through a pipe sees each event as it arrives. Connection trouble and the
//! closing of the connection are notices on standard error, so scripts can keep the two
//! apart.
//!
//! Text from the network is printed only after control characters are taken out (line
//! breaks and tabs excepted): the server already strips them from messages, but a
//! terminal should not have to trust the server to keep escape sequences away from it.
//! The further lines of a multi-line message come marked (`  | `) from
//! [`ServerEvent::render_line`], so that a message cannot pass one of its lines off as an
//! event of its own.

use std::io::{self, Write};

use loopchat::apps::chat::protocol::ServerEvent;

/// Where events and notices are written.
#[derive(Debug, Default)]
pub struct Console {
    /// Set once standard output could not be written (a closed pipe, say).
    stdout_failed: bool,
}

impl Console {
    /// Prints an event from the server on standard output. Returns `false` if standard
    /// output is gone, so that the caller can stop.
    pub fn event(&mut self, event: &ServerEvent) -> bool {
        self.print(&event.render_line())
    }

    /// Prints text on standard output, after removing control characters. Returns `false`
    /// if standard output is gone.
    pub fn print(&mut self, text: &str) -> bool {
        if self.stdout_failed {
            return false;
        }
        let mut stdout = io::stdout().lock();
        let written = writeln!(stdout, "{}", printable(text)).and_then(|()| stdout.flush());
        if written.is_err() {
            self.stdout_failed = true;
        }
        written.is_ok()
    }

    /// Prints a notice about the client itself on standard error.
    pub fn notice(&self, text: &str) {
        // If standard error is gone too there is nowhere left to complain.
        let _ = writeln!(io::stderr().lock(), "loopchat client: {}", printable(text));
    }
}

/// `text` without control characters other than line breaks and tabs. A `\r` goes too:
/// it would let a line overwrite the one before it.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_do_not_reach_the_terminal() {
        assert_eq!(
            printable("[#lobby] x: \u{1b}[2J\u{1b}]0;pwned\u{7}hi\r\u{9b}31m\nnext\tline\0"),
            "[#lobby] x: [2J]0;pwnedhi31m\nnext\tline"
        );
    }
}
