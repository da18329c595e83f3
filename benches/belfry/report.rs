//! Measuring and reporting: latency percentiles, CPU time of processes and of the whole
//! machine (to tell how noisy a run was), resident memory, the printed table and the JSON file.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies(pub Vec<u64>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sorts the samples; call before reading percentiles.
    pub fn sorted(mut self) -> Latencies {
        self.0.sort_unstable();
        self
    }

    /// The `p` quantile (0..=1) in milliseconds of sorted samples (nearest rank).
    pub fn ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.0.len() as f64) * p).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1] as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.0.last().map_or(f64::NAN, |v| *v as f64 / 1000.0)
    }

    pub fn mean_ms(&self) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 / 1000.0
    }

    /// p50/p95/p99/max (and a percentile curve for plots) as JSON, from sorted samples.
    pub fn summary(&self) -> Value {
        let curve: Vec<Value> = [
            0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0,
        ]
        .iter()
        .map(|&p| json!([p, if p == 0.0 { self.ms(0.0) } else { self.ms(p) }]))
        .collect();
        json!({
            "n": self.0.len(),
            "mean_ms": round(self.mean_ms()),
            "p50_ms": round(self.ms(0.50)),
            "p95_ms": round(self.ms(0.95)),
            "p99_ms": round(self.ms(0.99)),
            "max_ms": round(self.max_ms()),
            "curve": curve,
        })
    }
}

pub fn round(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        v
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// User plus system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, false)
}

/// CPU seconds from `/proc/<pid>/stat`: utime + stime, plus cutime + cstime (children that
/// exited and were waited for) when `children` is set.
fn stat_seconds(pid: u32, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    // utime, stime, cutime, cstime are fields 14 to 17 of the line, 12 to 15 after the name.
    let own = field(11) + field(12);
    let reaped = if children { field(13) + field(14) } else { 0.0 };
    (own + reaped) / TICKS
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Busy and total CPU ticks of the whole machine (all cores), from `/proc/stat`.
fn machine_ticks() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (f64::NAN, f64::NAN);
    };
    let Some(line) = stat.lines().next() else {
        return (f64::NAN, f64::NAN);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// CPU use over an interval: of this tool, of the server (when there is one), of Postgres'
/// processes (when in use), and of the whole machine. What the machine used beyond those was
/// other work on the shared cores: the noise of the run.
pub struct CpuWatch {
    started: Instant,
    tool: f64,
    server: Option<(u32, f64)>,
    postgres: f64,
    machine: (f64, f64),
}

/// CPU seconds used by every process whose command name starts with `postgres`, counting
/// backends that have exited (the postmaster reaps them, so they are in its children's time).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.starts_with("postgres"))
                .unwrap_or(false)
        })
        .map(|pid| stat_seconds(pid, true))
        .filter(|v| v.is_finite())
        .sum()
}

impl CpuWatch {
    pub fn start(server: Option<u32>) -> Self {
        Self {
            started: Instant::now(),
            tool: cpu_seconds(std::process::id()),
            server: server.map(|pid| (pid, cpu_seconds(pid))),
            postgres: postgres_cpu_seconds(),
            machine: machine_ticks(),
        }
    }

    /// Cores used on average over the interval (1.0 = one core busy all the time).
    pub fn stop(&self) -> Value {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let tool = (cpu_seconds(std::process::id()) - self.tool) / wall;
        let server = self.server.map(|(pid, s)| (cpu_seconds(pid) - s) / wall);
        let postgres = (postgres_cpu_seconds() - self.postgres) / wall;
        let (busy, total) = machine_ticks();
        let cores = 2.0_f64.max(
            std::thread::available_parallelism()
                .map(|n| n.get() as f64)
                .unwrap_or(2.0),
        );
        let machine = (busy - self.machine.0) / (total - self.machine.1).max(1.0) * cores;
        let ours = tool + server.unwrap_or(0.0) + postgres;
        json!({
            "wall_s": round(wall),
            "tool_cores": round(tool),
            "server_cores": server.map(round),
            "postgres_cores": round(postgres),
            "machine_cores": round(machine),
            "other_cores": round((machine - ours).max(0.0)),
        })
    }
}

/// A short line describing CPU use, for the printed table.
pub fn cpu_line(cpu: &Value) -> String {
    let f = |k: &str| {
        cpu[k]
            .as_f64()
            .map_or("-".to_owned(), |v| format!("{v:.2}"))
    };
    format!(
        "cpu (cores): tool {} server {} postgres {} machine {} other {}",
        f("tool_cores"),
        f("server_cores"),
        f("postgres_cores"),
        f("machine_cores"),
        f("other_cores")
    )
}

/// Prints rows as an aligned table.
pub fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.len());
            }
        }
    }
    println!("\n{title}");
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:>w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("  {}", parts.join("  "));
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Facts about the run that every JSON file carries.
pub fn environment(backend: &str) -> Value {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "backend": backend,
        "commit": commit,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "started_at": chrono::Utc::now().to_rfc3339(),
        "args": std::env::args().skip(1).filter(|a| a != "--bench").collect::<Vec<_>>(),
    })
}

/// Writes `value` to `<dir>/<scenario>-<backend>.json` and says where.
pub fn write_json(dir: &Path, scenario: &str, backend: &str, value: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{scenario}-{backend}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(value)?)?;
    println!("\nresults: {}", path.display());
    Ok(())
}

pub fn fmt_rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
