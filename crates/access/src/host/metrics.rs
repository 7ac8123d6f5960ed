//! Host metrics: one sample of a machine's CPU counters, memory, load and disk use,
//! taken in one round trip (a shell script printing `@@nines:` sections) and parsed by
//! pure functions; plus [`cpu_usage`], which turns two samples' CPU counters into
//! busy/iowait/steal/idle fractions. The structs serialize to JSON for storage and the API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HostAccess;
use super::command::HostCommand;
use super::error::HostError;
use super::parse::{
    DF_FUNCTION, DiskUsage, MemInfo, parse_df, parse_meminfo, require_end, section, split_sections,
};

/// The probe; its arguments are the paths whose file systems are measured.
const METRICS_SCRIPT: &str = r#"echo '@@nines:stat'
grep '^cpu' /proc/stat
echo '@@nines:meminfo'
cat /proc/meminfo
echo '@@nines:loadavg'
cat /proc/loadavg
echo '@@nines:uptime'
cat /proc/uptime
for p in "$@"; do
  printf '@@nines:df %s\n' "$p"
  nines_df "$p"
done
echo '@@nines:end'
"#;

/// Cumulative CPU time since boot over all CPUs, in clock ticks (`USER_HZ`, usually 100/s),
/// from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// Normal processes in user mode (includes guest time).
    pub user: u64,
    /// Niced processes in user mode.
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle while waiting for I/O.
    pub iowait: u64,
    /// Servicing interrupts.
    pub irq: u64,
    /// Servicing softirqs.
    pub softirq: u64,
    /// Taken by the hypervisor for other guests.
    pub steal: u64,
}

impl CpuTimes {
    /// The sum of all fields.
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// Shares of CPU time between two samples, each in 0..=1, summing to 1 (all 0 when no
/// time passed or the counters went backwards, e.g. after a reboot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// user + nice + system + irq + softirq.
    pub busy: f64,
    /// Idle waiting for I/O.
    pub iowait: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
    /// Idle.
    pub idle: f64,
}

/// CPU shares between two samples of the same host.
pub fn cpu_usage(prev: &CpuTimes, cur: &CpuTimes) -> CpuUsage {
    if cur.total() <= prev.total() {
        return CpuUsage::default();
    }
    // Individual counters (iowait notably) can step backwards; never go negative.
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let busy = d(prev.user, cur.user)
        + d(prev.nice, cur.nice)
        + d(prev.system, cur.system)
        + d(prev.irq, cur.irq)
        + d(prev.softirq, cur.softirq);
    let iowait = d(prev.iowait, cur.iowait);
    let steal = d(prev.steal, cur.steal);
    let idle = d(prev.idle, cur.idle);
    let total = busy + iowait + steal + idle;
    if total <= 0.0 {
        return CpuUsage::default();
    }
    CpuUsage {
        busy: busy / total,
        iowait: iowait / total,
        steal: steal / total,
        idle: idle / total,
    }
}

/// `/proc/loadavg`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAvg {
    /// 1-minute load average.
    pub one: f64,
    /// 5-minute load average.
    pub five: f64,
    /// 15-minute load average.
    pub fifteen: f64,
    /// Runnable scheduling entities right now.
    pub runnable: u32,
    /// Scheduling entities (threads) that exist.
    pub threads: u32,
}

/// One sample of a host's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostMetrics {
    /// Cumulative CPU counters (compare two samples with [`cpu_usage`]).
    pub cpu: CpuTimes,
    /// Online CPUs (the `cpuN` lines of `/proc/stat`).
    pub cpu_count: u32,
    /// Memory and swap.
    pub memory: MemInfo,
    /// Load averages.
    pub load: LoadAvg,
    /// Seconds since boot (a smaller value than last time means the host rebooted).
    pub uptime_seconds: f64,
    /// File systems of the paths asked about, in the order asked (paths df could not
    /// measure are left out).
    pub disks: Vec<DiskUsage>,
}

/// Take one metrics sample in one round trip, measuring the file systems of `disk_paths`.
pub async fn host_metrics(
    h: &dyn HostAccess,
    disk_paths: &[String],
    timeout: Duration,
) -> Result<HostMetrics, HostError> {
    let script = format!("{DF_FUNCTION}{METRICS_SCRIPT}");
    // A newline would break the section format; such a path cannot be a datadir anyway.
    let paths = disk_paths.iter().filter(|p| !p.contains(['\n', '\r']));
    let cmd = HostCommand::shell(script).args(paths.cloned());
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_metrics_output(&out.stdout_text()).map_err(|detail| HostError::UnexpectedOutput {
        host: h.describe(),
        what: "the host metrics probe".to_owned(),
        detail,
    })
}

/// Parse the output of the metrics probe.
pub fn parse_metrics_output(output: &str) -> Result<HostMetrics, String> {
    let sections = split_sections(output);
    require_end(&sections)?;
    let need = |name: &str| section(&sections, name).ok_or(format!("no `{name}` section"));
    let (cpu, cpu_count) = parse_proc_stat_cpu(need("stat")?)?;
    let memory = parse_meminfo(need("meminfo")?)?;
    let load = parse_loadavg(need("loadavg")?)?;
    let uptime = need("uptime")?;
    let uptime_seconds = uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("bad /proc/uptime {:?}", uptime.trim()))?;
    let mut disks = Vec::new();
    for (name, body) in &sections {
        if let Some(path) = name.strip_prefix("df ")
            && !body.trim().is_empty()
        {
            disks.push(parse_df(path, body)?);
        }
    }
    Ok(HostMetrics {
        cpu,
        cpu_count,
        memory,
        load,
        uptime_seconds,
        disks,
    })
}

/// Parse the `cpu…` lines of `/proc/stat`: the aggregate `cpu` counters and the number
/// of `cpuN` lines. Kernels older than 2.6.11 lack `steal` (taken as 0).
pub fn parse_proc_stat_cpu(text: &str) -> Result<(CpuTimes, u32), String> {
    let mut total = None;
    let mut count = 0u32;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("cpu") => {
                let v: Vec<u64> = words
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("bad /proc/stat cpu line {line:?}: {e}"))?;
                if v.len() < 7 {
                    return Err(format!("short /proc/stat cpu line {line:?}"));
                }
                total = Some(CpuTimes {
                    user: v[0],
                    nice: v[1],
                    system: v[2],
                    idle: v[3],
                    iowait: v[4],
                    irq: v[5],
                    softirq: v[6],
                    steal: v.get(7).copied().unwrap_or(0),
                });
            }
            Some(w) if w.len() > 3 && w.starts_with("cpu") && w[3..].parse::<u32>().is_ok() => {
                count += 1;
            }
            _ => {}
        }
    }
    let total = total.ok_or("no aggregate cpu line in /proc/stat")?;
    Ok((total, count.max(1)))
}

/// Parse `/proc/loadavg`: `0.46 0.66 0.43 5/119 16558`.
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, String> {
    let bad = || format!("bad /proc/loadavg {:?}", text.trim());
    let w: Vec<&str> = text.split_whitespace().collect();
    if w.len() < 4 {
        return Err(bad());
    }
    let f = |s: &str| s.parse::<f64>().map_err(|_| bad());
    let (runnable, threads) = w[3].split_once('/').ok_or_else(bad)?;
    Ok(LoadAvg {
        one: f(w[0])?,
        five: f(w[1])?,
        fifteen: f(w[2])?,
        runnable: runnable.parse().map_err(|_| bad())?,
        threads: threads.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "@@nines:stat
cpu  46194 0 6202 79642 510 0 102 9 0 0
cpu0 23000 0 3100 39000 255 0 51 4 0 0
cpu1 23194 0 3102 40642 255 0 51 5 0 0
@@nines:meminfo
MemTotal:       24684092 kB
MemAvailable:   23718444 kB
SwapTotal:             0 kB
SwapFree:              0 kB
@@nines:loadavg
0.46 0.66 0.43 5/119 16558
@@nines:uptime
12345.67 23456.78
@@nines:df /var/lib/mysql
/dev/vda 270553174016 14643810304 82928939008 16% /
@@nines:df /gone
@@nines:df /mnt/my disk
/dev/vdb 100 40 60 40% /mnt/my disk
@@nines:end
";

    #[test]
    fn parses_a_sample() {
        let m = parse_metrics_output(SAMPLE).expect("parse");
        assert_eq!(
            m.cpu,
            CpuTimes {
                user: 46194,
                nice: 0,
                system: 6202,
                idle: 79642,
                iowait: 510,
                irq: 0,
                softirq: 102,
                steal: 9,
            }
        );
        assert_eq!(m.cpu_count, 2);
        assert_eq!(m.memory.total_bytes, 24684092 * 1024);
        assert_eq!(m.memory.available_bytes, 23718444 * 1024);
        assert_eq!(m.load.one, 0.46);
        assert_eq!(m.load.fifteen, 0.43);
        assert_eq!((m.load.runnable, m.load.threads), (5, 119));
        assert_eq!(m.uptime_seconds, 12345.67);
        let paths: Vec<&str> = m.disks.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/var/lib/mysql", "/mnt/my disk"]);
        assert_eq!(m.disks[1].mount_point, "/mnt/my disk");
    }

    #[test]
    fn rejects_broken_samples() {
        assert!(parse_metrics_output(&SAMPLE.replace("@@nines:end\n", "")).is_err());
        assert!(parse_metrics_output(&SAMPLE.replace("cpu  46194", "cpu  x")).is_err());
        assert!(parse_metrics_output(&SAMPLE.replace("5/119", "5")).is_err());
        assert!(parse_metrics_output(&SAMPLE.replace("12345.67", "soon")).is_err());
    }

    #[test]
    fn old_kernel_stat_without_steal() {
        let (t, n) = parse_proc_stat_cpu("cpu 1 2 3 4 5 6 7\n").expect("parse");
        assert_eq!((t.softirq, t.steal, n), (7, 0, 1));
        assert!(parse_proc_stat_cpu("cpu 1 2 3\n").is_err());
        assert!(parse_proc_stat_cpu("intr 1 2\n").is_err());
    }

    #[test]
    fn loadavg_parsing() {
        let l = parse_loadavg("1.00 2.50 3.25 1/200 99\n").expect("parse");
        assert_eq!((l.one, l.five, l.fifteen), (1.0, 2.5, 3.25));
        assert!(parse_loadavg("").is_err());
        assert!(parse_loadavg("a b c 1/2 3").is_err());
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn cpu_usage_splits_the_delta() {
        let prev = CpuTimes {
            user: 100,
            nice: 0,
            system: 50,
            idle: 1000,
            iowait: 10,
            irq: 0,
            softirq: 0,
            steal: 0,
        };
        let cur = CpuTimes {
            user: 130,  // +30
            nice: 10,   // +10
            system: 60, // +10
            idle: 1040, // +40
            iowait: 15, // +5
            irq: 2,     // +2
            softirq: 3, // +3
            steal: 0,
        };
        let u = cpu_usage(&prev, &cur);
        assert!(close(u.busy, 55.0 / 100.0), "{u:?}");
        assert!(close(u.iowait, 5.0 / 100.0), "{u:?}");
        assert!(close(u.idle, 40.0 / 100.0), "{u:?}");
        assert!(close(u.steal, 0.0), "{u:?}");
        assert!(close(u.busy + u.iowait + u.steal + u.idle, 1.0));
    }

    #[test]
    fn cpu_usage_is_zero_without_progress_or_after_reboot() {
        let t = CpuTimes {
            user: 10,
            idle: 10,
            ..CpuTimes::default()
        };
        assert_eq!(cpu_usage(&t, &t), CpuUsage::default());
        assert_eq!(cpu_usage(&t, &CpuTimes::default()), CpuUsage::default());
    }

    #[test]
    fn cpu_usage_survives_iowait_going_backwards() {
        let prev = CpuTimes {
            idle: 100,
            iowait: 50,
            steal: 10,
            ..CpuTimes::default()
        };
        let cur = CpuTimes {
            idle: 200,
            iowait: 40,
            steal: 110,
            ..CpuTimes::default()
        };
        let u = cpu_usage(&prev, &cur);
        assert!(
            close(u.idle, 0.5) && close(u.steal, 0.5) && close(u.iowait, 0.0),
            "{u:?}"
        );
    }

    #[test]
    fn metrics_roundtrip_json() {
        let m = parse_metrics_output(SAMPLE).expect("parse");
        let json = serde_json::to_string(&m).expect("json");
        let back: HostMetrics = serde_json::from_str(&json).expect("back");
        assert_eq!(back, m);
    }
}
