//! Process CPU time and memory from `/proc` (Linux).

use std::time::Duration;

/// Which process to read: a pid, or this process.
#[derive(Debug, Clone, Copy)]
pub enum Proc {
    Pid(u32),
    Myself,
}

impl Proc {
    fn dir(self) -> String {
        match self {
            Proc::Pid(pid) => format!("/proc/{pid}"),
            Proc::Myself => "/proc/self".to_owned(),
        }
    }

    /// User and system CPU time used so far (all threads).
    pub fn cpu_times(self, ticks_per_second: u64) -> Option<CpuTimes> {
        let stat = std::fs::read_to_string(format!("{}/stat", self.dir())).ok()?;
        let (utime, stime) = parse_stat_cpu_ticks(&stat)?;
        let tick = |t: u64| {
            Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks_per_second.max(1))
        };
        Some(CpuTimes {
            user: tick(utime),
            system: tick(stime),
        })
    }

    /// Resident set size in KiB (`VmRSS`).
    pub fn rss_kib(self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("{}/status", self.dir())).ok()?;
        parse_status_kib(&status, "VmRSS:")
    }
}

/// CPU time of a process, split as the kernel accounts it. On loopback, much of the receiving
/// side's TCP work runs in the sender's system time (softirq), so `system` is not only our own.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The CPU used between `earlier` and `self`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// (utime, stime), in clock ticks, from the text of `/proc/PID/stat`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) is in parentheses and may contain spaces: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on every Linux we know).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 900 0 0 0 123 45 0 0 20 0 \
                    3 0 1000 12345678 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some((123, 45)));
    }

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tlectern\nVmPeak:\t  99 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(20480));
    }

    #[test]
    fn reads_this_process() {
        let tck = clock_ticks_per_second();
        assert!(Proc::Myself.cpu_times(tck).is_some());
        assert!(Proc::Myself.rss_kib().unwrap_or(0) > 0);
    }
}
