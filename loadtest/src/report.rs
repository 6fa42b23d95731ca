//! Reports (human table + JSON), error counters, latency summaries and RSS probes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

/// An insertion-ordered set of named values (serialised as a JSON object).
#[derive(Debug, Default, Clone)]
pub struct Section(Vec<(String, Value)>);

impl Section {
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.0.push((key.to_string(), value));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Section {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Counts by key: errors (`connect.*`, `error.<code>`, `close.<code>`, ...) and
/// other tallies such as `server_frames.<type>`.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct ErrorCounts(BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, key: impl Into<String>, n: u64) {
        if n > 0 {
            *self.0.entry(key.into()).or_insert(0) += n;
        }
    }

    pub fn inc(&mut self, key: impl Into<String>) {
        self.add(key, 1);
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (k, v) in &other.0 {
            self.add(k.clone(), *v);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Copy every key into a report section (e.g. `counts`).
    pub fn copy_into(&self, section: &mut Section) {
        for (k, v) in &self.0 {
            section.set(k, *v);
        }
    }
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyMs {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencyMs {
    /// Summarise a histogram recorded in microseconds.
    pub fn from_us(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean().round() / 1000.0,
        })
    }
}

/// A new latency histogram: 1 µs .. 10 min, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// A latency histogram (µs) shared by many tasks. One histogram is ~160 KB, so
/// tasks buffer a few values in a [`LatencyBuf`] and flush them here.
#[derive(Default)]
pub struct SharedHist(Mutex<Option<Histogram<u64>>>);

impl SharedHist {
    pub fn record_all(&self, values: &mut Vec<u64>) {
        if values.is_empty() {
            return;
        }
        let mut g = self.0.lock().expect("histogram lock");
        let h = g.get_or_insert_with(new_histogram);
        for us in values.drain(..) {
            h.saturating_record(us.max(1));
        }
    }

    pub fn summary(&self) -> Option<LatencyMs> {
        let g = self.0.lock().expect("histogram lock");
        g.as_ref().and_then(LatencyMs::from_us)
    }
}

/// Per-task buffer in front of a [`SharedHist`]; flushes every 64 values and on drop.
pub struct LatencyBuf<'a> {
    hist: &'a SharedHist,
    buf: Vec<u64>,
}

impl<'a> LatencyBuf<'a> {
    const FLUSH: usize = 64;

    pub fn new(hist: &'a SharedHist) -> Self {
        Self {
            hist,
            buf: Vec::new(),
        }
    }

    pub fn record(&mut self, d: Duration) {
        self.buf.push(d.as_micros().min(u64::MAX as u128) as u64);
        if self.buf.len() >= Self::FLUSH {
            self.hist.record_all(&mut self.buf);
        }
    }
}

impl Drop for LatencyBuf<'_> {
    fn drop(&mut self) {
        self.hist.record_all(&mut self.buf);
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub params: Section,
    pub counts: Section,
    pub rates: Section,
    pub latency_ms: Option<LatencyMs>,
    /// Further latency summaries by name (e.g. `ack` and `close` in `churn`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_latency_ms: BTreeMap<String, LatencyMs>,
    pub errors: ErrorCounts,
    /// Server VmRSS in bytes (`before`, `open`/`end`, `peak`, `after`, `per_connection`); null
    /// without --server-pid.
    pub server_rss_bytes: Option<Section>,
    /// This load generator's own VmRSS at the end of the run.
    pub loadtest_rss_bytes: Option<u64>,
    pub notes: Vec<String>,
    /// Whether the run achieved nothing at all (no session established): exit code 1.
    #[serde(skip)]
    pub nothing_established: bool,
}

impl Report {
    pub fn new(scenario: &str, run_id: &str) -> Self {
        Self {
            scenario: scenario.to_string(),
            run_id: run_id.to_string(),
            started_at: now_rfc3339(),
            finished_at: String::new(),
            params: Section::default(),
            counts: Section::default(),
            rates: Section::default(),
            latency_ms: None,
            extra_latency_ms: BTreeMap::new(),
            errors: ErrorCounts::default(),
            server_rss_bytes: None,
            loadtest_rss_bytes: None,
            notes: Vec::new(),
            nothing_established: false,
        }
    }

    pub fn finish(&mut self) {
        self.finished_at = now_rfc3339();
        self.loadtest_rss_bytes = read_rss_self();
    }

    pub fn failed(&self) -> bool {
        self.nothing_established
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
    }

    pub fn print_table(&self) {
        let mut out = String::new();
        let line = "=".repeat(64);
        out.push_str(&format!(
            "{line}\nloadtest {}  run {}  ({} .. {})\n{line}\n",
            self.scenario, self.run_id, self.started_at, self.finished_at
        ));
        section(&mut out, "params", &self.params, fmt_value);
        section(&mut out, "counts", &self.counts, fmt_value);
        section(&mut out, "rates", &self.rates, fmt_value);
        let latencies = self
            .latency_ms
            .iter()
            .map(|l| (None, l))
            .chain(self.extra_latency_ms.iter().map(|(k, l)| (Some(k), l)));
        for (name, l) in latencies {
            let name = name.map(|n| format!("{n} ")).unwrap_or_default();
            out.push_str(&format!("{name}latency (ms, {} samples)\n", l.count));
            out.push_str(&format!(
                "  p50 {:.3}  p90 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}\n",
                l.p50, l.p90, l.p95, l.p99, l.p999, l.max, l.mean
            ));
        }
        out.push_str(&format!("errors (total {})\n", self.errors.total()));
        if self.errors.0.is_empty() {
            out.push_str("  (none)\n");
        } else {
            for (k, v) in &self.errors.0 {
                out.push_str(&format!("  {k:<40} {v}\n"));
            }
        }
        if let Some(rss) = &self.server_rss_bytes {
            section(&mut out, "server RSS", rss, |v| match v.as_f64() {
                Some(b) => fmt_bytes(b),
                None => fmt_value(v),
            });
        }
        if let Some(b) = self.loadtest_rss_bytes {
            out.push_str(&format!(
                "loadtest RSS\n  {:<40} {}\n",
                "end",
                fmt_bytes(b as f64)
            ));
        }
        if !self.notes.is_empty() {
            out.push_str("notes\n");
            for n in &self.notes {
                out.push_str(&format!("  - {n}\n"));
            }
        }
        out.push_str(&line);
        println!("{out}");
    }
}

fn section(out: &mut String, title: &str, s: &Section, fmt: impl Fn(&Value) -> String) {
    if s.is_empty() {
        return;
    }
    out.push_str(title);
    out.push('\n');
    for (k, v) in &s.0 {
        out.push_str(&format!("  {k:<40} {}\n", fmt(v)));
    }
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.to_string()
            } else if let Some(i) = n.as_i64() {
                i.to_string()
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.abs() >= 100.0 {
                    format!("{f:.1}")
                } else {
                    format!("{f:.3}")
                }
            }
        }
        other => other.to_string(),
    }
}

pub fn fmt_bytes(b: f64) -> String {
    let abs = b.abs();
    if abs >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB ({b:.0} B)", b / (1024.0 * 1024.0 * 1024.0))
    } else if abs >= 1024.0 * 1024.0 {
        format!("{:.1} MiB ({b:.0} B)", b / (1024.0 * 1024.0))
    } else if abs >= 1024.0 {
        format!("{:.1} KiB ({b:.0} B)", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Round to 3 decimals for reports.
pub fn r3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------
// RSS
// ---------------------------------------------------------------------------

fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// VmRSS of process `pid` in bytes, from /proc/PID/status.
pub fn read_rss(pid: u32) -> Option<u64> {
    parse_vmrss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// CPU time (user + system) a process has used, in seconds, from `/proc/PID/stat` (fields 14
/// and 15, in clock ticks of 1/100 s: Linux's USER_HZ).
pub fn read_cpu_secs(pid: u32) -> Option<f64> {
    parse_cpu_secs(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_cpu_secs(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

pub fn read_rss_self() -> Option<u64> {
    parse_vmrss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Samples a process's RSS periodically and keeps the peak.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let peak = Arc::new(AtomicU64::new(read_rss(pid).unwrap_or(0)));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Some(v) = read_rss(pid) {
                    p.fetch_max(v, Ordering::Relaxed);
                }
            }
        });
        Self { peak, task }
    }

    pub fn stop(self) -> u64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_utime_plus_stime_in_ticks() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 4 0 99 1000 50";
        assert_eq!(parse_cpu_secs(stat), Some(3.75));
    }

    #[test]
    fn vmrss_parses() {
        let s = "Name:\tclarity\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads: 3\n";
        assert_eq!(parse_vmrss(s), Some(2048 * 1024));
        assert_eq!(parse_vmrss("Name: x\n"), None);
    }

    #[test]
    fn section_is_ordered_and_overwrites() {
        let mut s = Section::default();
        s.set("b", 1).set("a", 2).set("b", 3);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"b":3,"a":2}"#);
    }

    #[test]
    fn latency_summary() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let l = LatencyMs::from_us(&h).unwrap();
        assert_eq!(l.count, 1000);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert!(LatencyMs::from_us(&new_histogram()).is_none());
    }
}
