//! CPU time and memory of the system under test, read from /proc: utime + stime of
//! every process in its tree (threads are included in a process's own counters,
//! proc(5)), proportional set size summed, and the busy time of one core from
//! /proc/stat.
//!
//! Memory is PSS (`Pss:` of /proc/PID/smaps_rollup), not VmRSS: Kamailio's children
//! share one memory pool, and summing their RSS would count each shared page once
//! per child. PSS splits a shared page between its sharers, so the sum is the tree's
//! real footprint. VmRSS is the fallback on kernels without smaps_rollup.

use std::collections::HashMap;
use std::fs;

/// One reading of a process tree.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// PSS (or VmRSS where PSS is unavailable) of the tree, KiB.
    pub mem_kib: u64,
    pub processes: usize,
    /// CPU ticks per command name (`rtpengine`, `kamailio`, ...), sorted by name.
    pub by_name: Vec<(String, u64)>,
    /// Every thread's (user, kernel) ticks, by thread id.
    pub threads: Vec<ThreadTicks>,
}

/// One thread's counters.
#[derive(Debug, Clone)]
pub struct ThreadTicks {
    pub tid: u32,
    /// The thread's name without its trailing number (`media-0` and `media-1` are `media`).
    pub kind: String,
    pub user: u64,
    pub kernel: u64,
}

impl Sample {
    /// Ticks per command name spent between `earlier` and `self`.
    pub fn by_name_since(&self, earlier: &Sample) -> Vec<(String, u64)> {
        self.by_name
            .iter()
            .map(|(n, t)| {
                let before = earlier
                    .by_name
                    .iter()
                    .find(|(m, _)| m == n)
                    .map_or(0, |(_, b)| *b);
                (n.clone(), t.saturating_sub(before))
            })
            .collect()
    }

    /// (user, kernel) ticks per thread kind spent between `earlier` and `self`, sorted by
    /// kind. Threads are matched by id, so a thread born in between counts from zero; one
    /// that ended in between is missing (its time stays in the process's own total).
    pub fn by_thread_since(&self, earlier: &Sample) -> Vec<(String, u64, u64)> {
        let before: HashMap<u32, (u64, u64)> = earlier
            .threads
            .iter()
            .map(|t| (t.tid, (t.user, t.kernel)))
            .collect();
        let mut out: Vec<(String, u64, u64)> = Vec::new();
        for t in &self.threads {
            let (bu, bk) = before.get(&t.tid).copied().unwrap_or((0, 0));
            let (u, k) = (t.user.saturating_sub(bu), t.kernel.saturating_sub(bk));
            match out.iter_mut().find(|(n, _, _)| *n == t.kind) {
                Some((_, su, sk)) => {
                    *su += u;
                    *sk += k;
                }
                None => out.push((t.kind.clone(), u, k)),
            }
        }
        out.sort();
        out
    }
}

/// Clock ticks per second of the utime/stime counters.
pub fn ticks_per_sec() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// The roots and all their descendants that are alive now.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(st) = read_stat(pid) {
                parent.insert(pid, st.ppid);
            }
        }
    }
    let mut out: Vec<u32> = roots
        .iter()
        .copied()
        .filter(|p| parent.contains_key(p))
        .collect();
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        let mut kids: Vec<u32> = parent
            .iter()
            .filter(|(_, pp)| **pp == p)
            .map(|(c, _)| *c)
            .collect();
        kids.sort_unstable();
        for k in kids {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        i += 1;
    }
    out
}

/// CPU and memory of `pids` (processes that vanished count as zero).
pub fn sample(pids: &[u32]) -> Sample {
    let mut s = Sample::default();
    for &pid in pids {
        if let Some(st) = read_stat(pid) {
            let ticks = st.utime + st.stime;
            s.cpu_ticks += ticks;
            s.processes += 1;
            match s.by_name.iter_mut().find(|(n, _)| *n == st.comm) {
                Some((_, t)) => *t += ticks,
                None => s.by_name.push((st.comm, ticks)),
            }
        }
        s.mem_kib += read_pss_kib(pid).or_else(|| read_rss_kib(pid)).unwrap_or(0);
        s.threads
            .extend(read_threads(pid).into_iter().map(|st| ThreadTicks {
                tid: st.pid,
                kind: thread_kind(&st.comm).to_owned(),
                user: st.utime,
                kernel: st.stime,
            }));
    }
    s.by_name.sort();
    s
}

/// A thread's name without a trailing number and separator: threads of one pool are one kind.
fn thread_kind(comm: &str) -> &str {
    let base = comm.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() == comm.len() {
        return comm;
    }
    let base = base.trim_end_matches(['-', '_', ' ', '#']);
    if base.is_empty() { comm } else { base }
}

/// The stat lines of every thread of `pid` (a thread that ended meanwhile is left out).
fn read_threads(pid: u32) -> Vec<Stat> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// This process's niceness (field 19 of /proc/self/stat); 0 if unreadable.
pub fn own_nice() -> i32 {
    let text = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .unwrap_or("");
    // After the command: field 3 is the first, so field 19 is the 17th.
    rest.split_whitespace()
        .nth(16)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (busy, total) ticks of core `cpu` since boot, from its `cpuN` line in /proc/stat.
pub fn core_ticks(cpu: usize) -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let key = format!("cpu{cpu} ");
    let line = text.lines().find(|l| l.starts_with(&key))?;
    parse_core_line(line)
}

fn parse_core_line(line: &str) -> Option<(u64, u64)> {
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total.saturating_sub(idle), total))
}

struct Stat {
    /// The process id, or the thread id for /proc/PID/task/TID/stat.
    pid: u32,
    comm: String,
    ppid: u32,
    utime: u64,
    stime: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields after the command name, which may itself contain spaces and parentheses.
fn parse_stat(text: &str) -> Option<Stat> {
    let pid = text.split_whitespace().next()?.parse().ok()?;
    let close = text.rfind(')')?;
    let comm = text.get(text.find('(')? + 1..close)?.to_string();
    let rest = text.get(close + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] = state (field 3), so field N is f[N - 3].
    Some(Stat {
        pid,
        comm,
        ppid: f.get(1)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

fn read_pss_kib(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn read_rss_kib(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_command_with_spaces() {
        let line =
            "4242 (rtp engine) (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0";
        let st = parse_stat(line).unwrap();
        assert_eq!((st.ppid, st.utime, st.stime), (17, 1234, 567));
        assert_eq!(st.comm, "rtp engine) (x)");
        assert!(parse_stat("1 (x) S").is_none());
    }

    #[test]
    fn core_line_counts_iowait_as_idle() {
        // user nice system idle iowait irq softirq steal
        let (busy, total) = parse_core_line("cpu0 100 5 50 800 20 3 7 0 0 0").unwrap();
        assert_eq!(total, 985);
        assert_eq!(busy, 165);
    }

    #[test]
    fn own_niceness_is_read() {
        let out = std::process::Command::new("nice")
            .output()
            .expect("run nice");
        let expected: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("nice prints a number");
        assert_eq!(own_nice(), expected);
    }

    #[test]
    fn own_process_is_sampled() {
        let me = std::process::id();
        let s = sample(&tree(&[me]));
        assert!(s.processes >= 1);
        assert!(s.mem_kib > 0);
        assert_eq!(s.by_name.len(), 1);
        assert!(!s.threads.is_empty(), "the test thread itself is a thread");
        assert!(tree(&[me]).contains(&me));
    }

    #[test]
    fn thread_time_is_taken_per_thread_so_a_pool_that_changes_is_not_miscounted() {
        let t = |tid, kind: &str, user, kernel| ThreadTicks {
            tid,
            kind: kind.to_owned(),
            user,
            kernel,
        };
        let earlier = Sample {
            threads: vec![
                t(1, "media", 100, 500),
                t(2, "blocking", 40, 10),
                t(3, "disk", 5, 9),
            ],
            ..Sample::default()
        };
        // Thread 2 ended; thread 4 of the same kind was born and worked 7+3 ticks.
        let later = Sample {
            threads: vec![
                t(1, "media", 130, 560),
                t(4, "blocking", 7, 3),
                t(3, "disk", 5, 11),
            ],
            ..Sample::default()
        };
        assert_eq!(
            later.by_thread_since(&earlier),
            [
                ("blocking".to_owned(), 7, 3),
                ("disk".to_owned(), 0, 2),
                ("media".to_owned(), 30, 60)
            ]
        );
    }

    #[test]
    fn threads_of_one_pool_are_one_kind() {
        assert_eq!(thread_kind("media-0"), "media");
        assert_eq!(thread_kind("media-12"), "media");
        assert_eq!(thread_kind("callseal-disk-1"), "callseal-disk");
        assert_eq!(thread_kind("tokio-runtime-w"), "tokio-runtime-w");
        assert_eq!(thread_kind("rtpengine"), "rtpengine");
        assert_eq!(thread_kind("1234"), "1234");
        assert_eq!(thread_kind("worker 3"), "worker");
    }
}
