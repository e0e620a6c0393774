//! Counting and reporting: per operation, an HDR histogram of latencies
//! (microseconds, 3 significant digits) and counts by HTTP status.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::workload::Op;

pub struct OpStats {
    pub latency: Histogram<u64>,
    pub by_status: BTreeMap<u16, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            // 1 µs to 60 s: every latency we can meet.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            by_status: BTreeMap::new(),
        }
    }
}

impl OpStats {
    pub fn ok(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| (200..300).contains(*status))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn errors(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Default)]
pub struct Stats {
    pub ops: BTreeMap<Op, OpStats>,
}

impl Stats {
    pub fn record(&mut self, op: Op, status: u16, latency: Duration) {
        let stats = self.ops.entry(op).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        // Only answered requests say something about latency.
        if (200..300).contains(&status) {
            let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
            let _ = stats.latency.record(micros);
        }
    }

    fn total(&self) -> OpStats {
        let mut total = OpStats::default();
        for stats in self.ops.values() {
            let _ = total.latency.add(&stats.latency);
            for (status, n) in &stats.by_status {
                *total.by_status.entry(*status).or_default() += n;
            }
        }
        total
    }
}

pub struct Report {
    pub label: String,
    pub urls: Vec<String>,
    pub connections: usize,
    pub duration: Duration,
    pub rate: Option<f64>,
    pub mix: String,
    pub stats: Stats,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

pub fn line(name: &str, stats: &OpStats, secs: f64) -> String {
    let h = &stats.latency;
    let q = |q: f64| ms(h.value_at_quantile(q));
    format!(
        "{:<11} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}\n",
        name,
        stats.ok(),
        stats.ok() as f64 / secs,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        ms(h.max()),
        stats.errors()
    )
}

pub fn summary(stats: &OpStats, secs: f64) -> Value {
    let h = &stats.latency;
    json!({
        "ok": stats.ok(),
        "ok_per_s": stats.ok() as f64 / secs,
        "errors": stats.errors(),
        "by_status": stats.by_status.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "latency_ms": {
            "p50": ms(h.value_at_quantile(0.5)),
            "p90": ms(h.value_at_quantile(0.9)),
            "p99": ms(h.value_at_quantile(0.99)),
            "p999": ms(h.value_at_quantile(0.999)),
            "max": ms(h.max()),
            "mean": h.mean() / 1000.0,
        }
    })
}

impl Report {
    pub fn table(&self) -> String {
        let secs = self.duration.as_secs_f64();
        let mode = match self.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".into(),
        };
        let mut out = format!(
            "{}: {} connection(s) over {} url(s), {:.1}s recorded, {mode}, mix {}\n",
            self.label,
            self.connections,
            self.urls.len(),
            secs,
            self.mix
        );
        out.push_str(&format!(
            "{:<11} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}\n",
            "op", "ok", "ok/s", "p50 ms", "p90 ms", "p99 ms", "p99.9ms", "max ms", "errors"
        ));
        for (op, stats) in &self.stats.ops {
            out.push_str(&line(op.name(), stats, secs));
        }
        let total = self.stats.total();
        if self.stats.ops.len() > 1 {
            out.push_str(&line("total", &total, secs));
        }
        let errors: Vec<String> = total
            .by_status
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(s, n)| {
                if *s == 0 {
                    format!("no answer ×{n}")
                } else {
                    format!("{s} ×{n}")
                }
            })
            .collect();
        if !errors.is_empty() {
            out.push_str(&format!("errors by status: {}\n", errors.join(", ")));
        }
        out
    }

    pub fn json(&self) -> Value {
        let secs = self.duration.as_secs_f64();
        json!({
            "label": self.label,
            "urls": self.urls,
            "connections": self.connections,
            "duration_s": secs,
            "rate": self.rate,
            "mix": self.mix,
            "total": summary(&self.stats.total(), secs),
            "ops": self.stats.ops.iter().map(|(op, s)| (op.name().to_string(), summary(s, secs))).collect::<serde_json::Map<_, _>>(),
        })
    }
}
