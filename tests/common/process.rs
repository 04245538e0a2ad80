//! The `loopchat` binary as a child process, for the tests where what is checked belongs
//! to a process (a signal, an exit status, an open-file limit, `/proc/PID`) or where the
//! program itself is what a user runs. It is started on port 0 and the test reads the
//! port from its first log line (`open http://ADDR/`); every wait is bounded, and the
//! child is killed when its test ends, however it ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long the binary may take to start and print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `loopchat serve` child process. Killed on drop, so a failing test leaves nothing
/// running; its stderr is read by a thread all along, so the server never blocks on a
/// full pipe, and kept for failure messages.
pub struct ServerProcess {
    child: Child,
    /// The address it listens on, from its `open http://ADDR/` log line.
    pub addr: SocketAddr,
    /// Every line it wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
    /// The thread that reads stderr into `log`; it ends when the process has exited.
    log_reader: Option<thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Runs `loopchat serve --addr 127.0.0.1:0` with `args`.
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_under(&[], args)
    }

    /// Like [`ServerProcess::start`], but run through `wrapper` (a command that takes the
    /// program to run as its last arguments, such as `prlimit --nofile=64:64 --`).
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> ServerProcess {
        ServerProcess::start_with(wrapper, args, &[])
    }

    /// Like [`ServerProcess::start_under`], with these environment variables set too.
    pub fn start_with(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        // The tests open hundreds of client sockets in this process, several tests at once.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let binary = env!("CARGO_BIN_EXE_loopchat");
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            // Info level: the address line, and the shutdown's account of itself.
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        let log_reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_address(&line) {
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            log_reader: Some(log_reader),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(_) => panic!(
                "loopchat serve printed no address; its log:\n{}",
                server.log_text()
            ),
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with the `kill` command (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    /// Waits for the process to exit, at most `within`, and for its last log lines;
    /// panics (and the drop kills it) if it does not exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                if let Some(reader) = self.log_reader.take() {
                    reader.join().expect("the log reader");
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}; its log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stderr lines so far, for failure messages.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The admin port's address, from the `admin port: http://ADDR/metrics` line of a
    /// server started with `--admin-addr`, waited for within the start timeout.
    #[allow(dead_code)] // not every test program has an admin port
    pub fn admin_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.log_text();
            if let Some(addr) = log.lines().find_map(|line| {
                let rest = &line[line.find("admin port: http://")? + "admin port: http://".len()..];
                rest.split('/').next()?.parse().ok()
            }) {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no admin port line in:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the binary's `... open http://127.0.0.1:PORT/ ...` log line.
pub fn listening_address(line: &str) -> Option<SocketAddr> {
    let at = line
        .find("open http://")
        .map(|at| at + "open http://".len());
    let at = at.or_else(|| {
        line.find("open https://")
            .map(|at| at + "open https://".len())
    })?;
    let rest = &line[at..];
    rest[..rest.find('/')?].parse().ok()
}
