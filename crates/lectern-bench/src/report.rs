//! The figures of a chat run: a table for people and one JSON line for scripts.

use lectern_bots::Histogram;
use serde::Serialize;

/// Everything a chat run measured over its steady window.
#[derive(Debug, Clone, Serialize)]
pub struct ChatSummary {
    pub clients: usize,
    pub senders: usize,
    pub target_rate_per_s: f64,
    pub warmup_s: f64,
    pub window_s: f64,
    pub connect_s: f64,
    /// Chat messages sent in the window.
    pub messages_sent: u64,
    /// Deliveries of those messages (to every participant, the sender included when the server
    /// echoes to it).
    pub deliveries: u64,
    pub expected_deliveries: u64,
    pub missing_deliveries: u64,
    pub sender_receives_own: bool,
    pub deliveries_per_s: f64,
    pub latency_ms: Option<Latency>,
    /// Server CPU (user + system) from the window's start until its last delivery arrived.
    pub server_cpu_s: Option<f64>,
    /// The same, split into user and system (kernel) time.
    pub server_cpu_user_s: Option<f64>,
    pub server_cpu_system_s: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    pub server_rss_mib_end: Option<f64>,
    pub bench_cpu_s: f64,
    /// Bench CPU as a share of one core over the same span.
    pub bench_cpu_percent: f64,
    pub bench_cpu_us_per_delivery: Option<f64>,
    /// Clients the server closed (e.g. `slow_consumer`) or that disconnected during the run.
    pub clients_dropped: usize,
    pub drop_reasons: Vec<String>,
    /// Sends skipped because a client had not written its previous ones yet.
    pub sends_skipped: u64,
    pub acks: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub metrics: ServerMetrics,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// Percentiles of latencies in microseconds, reported in milliseconds. Sorts the input.
    pub fn from_micros(samples: &mut [u32]) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest-rank percentile.
            let rank = (q * samples.len() as f64).ceil() as usize;
            f64::from(samples[rank.clamp(1, samples.len()) - 1]) / 1_000.0
        };
        Some(Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        })
    }

    /// Percentiles of a histogram of microseconds (within its bucket error, under 1.6%), in
    /// milliseconds; `max` is the histogram's own.
    pub fn from_histogram(h: &Histogram) -> Option<Latency> {
        let at = |q: f64| h.quantile(q).map(|us| us as f64 / 1_000.0);
        Some(Latency {
            p50: at(0.50)?,
            p90: at(0.90)?,
            p99: at(0.99)?,
            p999: at(0.999)?,
            max: h.max() as f64 / 1_000.0,
        })
    }
}

/// Deltas of the server's own counters over the same span (when `/metrics` answered).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerMetrics {
    pub ws_connections_end: Option<f64>,
    pub messages_in: Option<f64>,
    pub messages_out: Option<f64>,
    pub slow_clients_dropped: Option<f64>,
}

impl ChatSummary {
    pub fn print_table(&self) {
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "n/a".to_owned(),
        };
        let latency = |f: fn(&Latency) -> f64| match &self.latency_ms {
            Some(l) => format!("{:.3}", f(l)),
            None => "n/a".to_owned(),
        };
        let rows: Vec<(&str, String)> = vec![
            (
                "clients / senders",
                format!("{} / {}", self.clients, self.senders),
            ),
            (
                "target rate",
                format!(
                    "{} msg/s ({:.3} msg/s per sender)",
                    self.target_rate_per_s,
                    self.target_rate_per_s / self.senders.max(1) as f64
                ),
            ),
            (
                "warmup / window",
                format!("{} s / {} s", self.warmup_s, self.window_s),
            ),
            ("connect + welcome all", format!("{:.2} s", self.connect_s)),
            ("messages sent", self.messages_sent.to_string()),
            ("deliveries received", self.deliveries.to_string()),
            (
                "expected deliveries",
                format!(
                    "{} (messages x {} receivers{})",
                    self.expected_deliveries,
                    if self.sender_receives_own {
                        self.clients
                    } else {
                        self.clients.saturating_sub(1)
                    },
                    if self.sender_receives_own {
                        ", sender included"
                    } else {
                        ", sender excluded"
                    }
                ),
            ),
            ("missing deliveries", self.missing_deliveries.to_string()),
            ("deliveries/s", format!("{:.0}", self.deliveries_per_s)),
            (
                "latency p50 / p90 / p99",
                format!(
                    "{} / {} / {} ms",
                    latency(|l| l.p50),
                    latency(|l| l.p90),
                    latency(|l| l.p99)
                ),
            ),
            (
                "latency p99.9 / max",
                format!("{} / {} ms", latency(|l| l.p999), latency(|l| l.max)),
            ),
            (
                "server CPU",
                format!(
                    "{} s (user {} s, system {} s)",
                    opt(self.server_cpu_s, 3),
                    opt(self.server_cpu_user_s, 3),
                    opt(self.server_cpu_system_s, 3)
                ),
            ),
            (
                "server CPU per delivery",
                format!("{} us", opt(self.server_cpu_us_per_delivery, 3)),
            ),
            (
                "server RSS at end",
                format!("{} MiB", opt(self.server_rss_mib_end, 1)),
            ),
            (
                "bench CPU",
                format!(
                    "{:.3} s ({:.0}% of a core, {} us per delivery)",
                    self.bench_cpu_s,
                    self.bench_cpu_percent,
                    opt(self.bench_cpu_us_per_delivery, 3)
                ),
            ),
            (
                "clients dropped",
                if self.drop_reasons.is_empty() {
                    self.clients_dropped.to_string()
                } else {
                    format!(
                        "{} ({})",
                        self.clients_dropped,
                        self.drop_reasons.join(", ")
                    )
                },
            ),
            ("sends skipped (bench lag)", self.sends_skipped.to_string()),
            ("acks / errors", format!("{} / {}", self.acks, self.errors)),
            (
                "metrics: in / out / slow dropped",
                format!(
                    "{} / {} / {}",
                    opt(self.metrics.messages_in, 0),
                    opt(self.metrics.messages_out, 0),
                    opt(self.metrics.slow_clients_dropped, 0)
                ),
            ),
            (
                "metrics: ws connections at end",
                opt(self.metrics.ws_connections_end, 0),
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!("chat fan-out");
        for (key, value) in rows {
            println!("  {key:<width$}  {value}");
        }
        if let Some(e) = &self.first_error {
            println!("  first error: {e}");
        }
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u32> = (1..=1000).rev().map(|v| v * 10).collect();
        let l = Latency::from_micros(&mut samples).expect("non-empty");
        assert_eq!(l.p50, 5.0);
        assert_eq!(l.p99, 9.9);
        assert_eq!(l.p999, 9.99);
        assert_eq!(l.max, 10.0);
        assert!(Latency::from_micros(&mut []).is_none());
    }

    #[test]
    fn histogram_percentiles_in_milliseconds() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.record(us * 10);
        }
        let l = Latency::from_histogram(&h).expect("non-empty");
        // Bucket midpoints: within 1.6% of the exact 5.0 and 9.9 ms.
        assert!((l.p50 - 5.0).abs() <= 0.08, "{l:?}");
        assert!((l.p99 - 9.9).abs() <= 0.16, "{l:?}");
        assert_eq!(l.max, 10.0);
        assert!(Latency::from_histogram(&Histogram::default()).is_none());
    }
}
