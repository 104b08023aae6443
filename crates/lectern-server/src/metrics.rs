//! Counters and gauges, rendered in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Process-wide metrics. Plain atomics: cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub rooms: AtomicI64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub errors_sent: AtomicU64,
    pub chat_messages: AtomicU64,
    pub slow_clients_dropped: AtomicU64,
    pub abuse_closed: AtomicU64,
    pub handshake_failed: AtomicU64,
    pub store_batches: AtomicU64,
    pub store_failures: AtomicU64,
    pub media_intents: AtomicU64,
    /// Several nodes: rooms this node hosts under a lease.
    pub rooms_hosted: AtomicI64,
    pub leases_claimed: AtomicU64,
    pub leases_lost: AtomicU64,
    /// Batches the store refused as a stale lease holder's (the room then stopped).
    pub writes_fenced: AtomicU64,
    pub redirects_sent: AtomicU64,
    /// 1 while this node drains (SIGUSR1), else 0.
    pub draining: AtomicI64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let gauges = [
            (
                "lectern_ws_connections",
                "Open WebSocket connections.",
                &self.connections,
            ),
            ("lectern_rooms", "Rooms with a running task.", &self.rooms),
            (
                "lectern_cluster_rooms_hosted",
                "Rooms this node hosts under a cluster lease (0 on a single node).",
                &self.rooms_hosted,
            ),
            (
                "lectern_cluster_draining",
                "1 while this node drains (after SIGUSR1): it takes no new rooms and exits once it hosts none.",
                &self.draining,
            ),
        ];
        for (name, help, g) in gauges {
            write_metric(&mut out, name, help, "gauge", g.load(Ordering::Relaxed));
        }
        let counters = [
            (
                "lectern_ws_connections_total",
                "WebSocket connections accepted.",
                &self.connections_total,
            ),
            (
                "lectern_messages_in_total",
                "Client frames received.",
                &self.messages_in,
            ),
            (
                "lectern_messages_out_total",
                "Server messages queued to clients.",
                &self.messages_out,
            ),
            (
                "lectern_errors_sent_total",
                "Typed error replies sent.",
                &self.errors_sent,
            ),
            (
                "lectern_chat_messages_total",
                "Chat messages stored and delivered.",
                &self.chat_messages,
            ),
            (
                "lectern_slow_clients_dropped_total",
                "Connections closed because they could not keep up.",
                &self.slow_clients_dropped,
            ),
            (
                "lectern_abuse_closed_total",
                "Connections closed for repeated invalid or refused requests.",
                &self.abuse_closed,
            ),
            (
                "lectern_handshake_failed_total",
                "Connections refused at hello.",
                &self.handshake_failed,
            ),
            (
                "lectern_store_batches_total",
                "Store transactions committed.",
                &self.store_batches,
            ),
            (
                "lectern_store_failures_total",
                "Store transactions that failed.",
                &self.store_failures,
            ),
            (
                "lectern_media_intents_total",
                "Media intents emitted by rooms.",
                &self.media_intents,
            ),
            (
                "lectern_cluster_leases_claimed_total",
                "Room leases this node claimed.",
                &self.leases_claimed,
            ),
            (
                "lectern_cluster_leases_lost_total",
                "Room leases this node lost before releasing them (its rooms then stopped).",
                &self.leases_lost,
            ),
            (
                "lectern_cluster_writes_fenced_total",
                "Room batches the store refused because another node took the room over since \
                 this node's claim (the room then stopped).",
                &self.writes_fenced,
            ),
            (
                "lectern_cluster_redirects_total",
                "Hellos answered with a redirect to another node.",
                &self.redirects_sent,
            ),
        ];
        for (name, help, c) in counters {
            write_metric(&mut out, name, help, "counter", c.load(Ordering::Relaxed));
        }
        out
    }
}

/// One metric in the Prometheus text format: its help, its type (`gauge` or `counter`) and its
/// value.
pub fn write_metric(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}
