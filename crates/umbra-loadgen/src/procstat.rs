//! Another process's CPU time and memory from /proc, and this process's CPU time.

/// CPU time of every thread of `pid` (/proc/PID/stat), in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// utime: in the process's own code.
    pub user_us: u64,
    /// stime: in the kernel on its behalf (system calls: for a media server mostly the UDP send
    /// and receive paths, which on loopback include delivering each datagram to its receiver).
    pub system_us: u64,
}

impl Cpu {
    pub fn total_us(self) -> u64 {
        self.user_us + self.system_us
    }
}

pub fn cpu(pid: u32) -> Option<Cpu> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Cpu { user_us: utime * 1_000_000 / hz, system_us: stime * 1_000_000 / hz })
}

/// The scheduler's run time of every live thread of `pid` (/proc/PID/task/*/schedstat), in µs:
/// exact, where the tick-sampled utime/stime can misattribute short wake-ups.
pub fn sched_us(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat"))
            && let Some(ns) = s.split_whitespace().next().and_then(|x| x.parse::<u64>().ok())
        {
            total += ns / 1000;
        }
    }
    Some(total)
}

/// Resident set size of `pid` in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// This process's user + system CPU time in µs.
pub fn self_cpu_us() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time (µs, from the scheduler) of each thread of this process, by thread name (threads of
/// one name summed).
pub fn self_threads_us() -> std::collections::BTreeMap<String, u64> {
    threads_us("self")
}

/// [`self_threads_us`] for another process: where a server's CPU goes (media workers, the
/// async runtime, the rest), so that fixed per-second costs show apart from per-packet ones.
pub fn pid_threads_us(pid: u32) -> std::collections::BTreeMap<String, u64> {
    threads_us(&pid.to_string())
}

fn threads_us(proc_dir: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{proc_dir}/task")) else { return out };
    for t in dir.flatten() {
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim().to_string();
        let ns = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        *out.entry(name).or_insert(0) += ns / 1000;
    }
    out
}

/// The 1-minute load average.
pub fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(super::cpu(pid).is_some_and(|c| c.total_us() >= c.user_us));
        assert!(super::sched_us(pid).unwrap() > 0);
        assert!(super::rss_kib(pid).unwrap() > 100);
        assert!(super::self_cpu_us() > 0);
        // This test's thread did the loop above; the kernel keeps 15 bytes of its name.
        let by_pid = super::pid_threads_us(pid);
        let name: String = std::thread::current().name().unwrap_or_default().chars().take(15).collect();
        assert!(by_pid.get(&name).is_some_and(|us| *us > 0), "{name:?} not in {by_pid:?}");
    }
}
