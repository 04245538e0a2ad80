//! `tests/browser/ws_echo_server.mjs`, Node's `ws` as an independent server for the
//! client-role tests: started with its arguments, its port read from its `listening
//! PORT` line, what it reports afterwards (one line per event) waited for by prefix, and
//! killed on drop.

use super::{expect_line, lines_of};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;

/// The Node `ws` server, killed on drop.
pub struct NodeWs {
    child: Child,
    /// Its standard input: the server exits when it closes.
    _stdin: ChildStdin,
    /// The port it listens on.
    pub port: u16,
    stdout: Receiver<String>,
}

impl NodeWs {
    /// Runs the script with `args`; panics, naming what to install, if Node or the `ws`
    /// package is missing.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> NodeWs {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let ws = root.join("tests/browser/node_modules/ws/package.json");
        assert!(
            ws.is_file(),
            "{} not found: install the Node tests' packages with `npm ci --prefix tests/browser` \
             (Node.js 20 or newer)",
            ws.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("tests/browser/ws_echo_server.mjs"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` ({e}): install Node.js 20 or newer"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let line = expect_line(&stdout, "listening PORT", |l| l.starts_with("listening "));
        let port = line["listening ".len()..].parse().expect("a port");
        NodeWs {
            child,
            _stdin: stdin,
            port,
            stdout,
        }
    }

    /// The rest of the next line it reports that starts with `prefix` and a space.
    pub fn next(&self, prefix: &str) -> String {
        let start = format!("{prefix} ");
        let line = expect_line(&self.stdout, &format!("{prefix} ..."), |l| {
            l.starts_with(&start)
        });
        line[start.len()..].to_owned()
    }
}

impl Drop for NodeWs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
