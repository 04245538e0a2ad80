//! What Linux's `/proc` says about a process: CPU time and memory.
//!
//! The crate forbids `unsafe`, so there are no `getrusage` or `sysconf` calls: CPU time
//! comes from `/proc/PID/stat` (fields 14 and 15, `utime` and `stime`, in clock ticks),
//! and memory from `/proc/PID/status` (`VmRSS`, `VmHWM`, in KiB). Clock ticks are
//! `USER_HZ`, which the kernel fixes at 100 a second for user space on every common
//! architecture, so CPU figures have a resolution of 10 ms.
//!
//! The generator measures its own thread (`/proc/thread-self/stat`): when the library is
//! used in a test with the server in the same process, the server's thread is not counted
//! as the generator's. The server is measured as a whole process, all threads.

use std::fs;
use std::io;

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU time, in clock ticks, from the text of a `/proc/*/stat` file.
///
/// The second field, the command name in parentheses, may itself contain spaces and
/// parentheses, so the fields are counted from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; utime is field 14, stime field 15.
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field (such as `VmRSS` or `VmHWM`) of a `/proc/*/status` file, in KiB.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The CPU time, in seconds, that process `pid` has used so far (all its threads).
pub fn process_cpu_seconds(pid: u32) -> io::Result<f64> {
    cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// The CPU time, in seconds, that the calling thread has used so far; the whole process
/// where `/proc/thread-self` does not exist (Linux before 3.17).
pub fn own_thread_cpu_seconds() -> io::Result<f64> {
    cpu_seconds("/proc/thread-self/stat").or_else(|_| cpu_seconds("/proc/self/stat"))
}

fn cpu_seconds(path: &str) -> io::Result<f64> {
    let stat = fs::read_to_string(path)?;
    parse_stat_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / TICKS_PER_SECOND)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("cannot parse {path}")))
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// The largest resident set size so far (`VmHWM`, the "high water mark").
    pub peak_kib: u64,
}

/// The memory of process `pid`.
pub fn memory(pid: u32) -> io::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path)?;
    let field = |name| {
        parse_status_kib(&status, name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no {name} in {path}"))
        })
    };
    Ok(Memory {
        rss_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        // A real line from a process named "a) b (c", which has both parentheses and
        // spaces in its name; utime 1234 and stime 56.
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 0 0 20 0 1 0 \
                    12345 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1290));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("no name at all"), None);
    }

    #[test]
    fn status_fields_in_kib() {
        let status = "Name:\tloopchat\nVmPeak:\t  123456 kB\nVmHWM:\t    9876 kB\n\
                      VmRSS:\t    5432 kB\nThreads:\t1\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(5432));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(9876));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib(status, "Threads"), None); // not a kB field
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(process_cpu_seconds(pid).unwrap() >= 0.0);
        assert!(own_thread_cpu_seconds().unwrap() >= 0.0);
        let memory = memory(pid).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }
}
