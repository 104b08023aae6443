//! What one read of the socket brought, handed to the `Sfu`: stale media shed (see
//! `shed.rs`), timers run, counters published and the spaced warnings about falling behind.

use std::sync::PoisonError;
use std::time::Instant;

use tracing::{debug, warn};

use super::{STATS_EVERY, Worker};
use crate::shed::{self, Kind};
use crate::udp::RecvBatch;

impl Worker {
    /// Hand the `n` datagrams of the last read to the `Sfu` as one batch: each subscriber is
    /// sent what the read brought for it in one pass through its `Rtc`, at the end (see
    /// `Sfu::begin_batch`). RTP that waited in the socket past `shed::STALE_AFTER` is shed.
    pub(super) fn handle_read(&mut self, batch: &RecvBatch, n: usize) {
        self.sfu.begin_batch();
        for i in 0..n {
            let (source, data) = batch.datagram(i);
            if source == self.waker_addr || data.is_empty() {
                continue;
            }
            let kind = Kind::of(data);
            let waited = batch.waited(i);
            let stale = shed::is_stale(kind, waited, shed::STALE_AFTER);
            let start = Instant::now();
            if stale {
                self.sfu
                    .handle_stale_receive(start, source, self.local_addr, data);
            } else {
                self.sfu
                    .handle_receive(start, source, self.local_addr, data);
            }
            // Send as we go, a batch at a time, rather than hold the whole read's datagrams.
            self.queue_transmits();
            self.backlog.note(kind, waited, start.elapsed(), stale);
        }
        self.sfu.end_batch(Instant::now());
        self.queue_transmits();
        // Timers once per read, not per datagram.
        let now = Instant::now();
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
        if now < self.stats_due {
            return;
        }
        self.stats_due = now + STATS_EVERY;
        if let Some(dropped) = self.overflow.note(now, u64::from(batch.overflowed)) {
            warn!(
                dropped,
                "media socket full: the worker fell behind (short of CPU) and the kernel dropped datagrams, joins among them"
            );
        }
        let stats = self.io_stats();
        if let Some(shed) = self.shed.note(now, stats.rtp_shed) {
            warn!(
                shed,
                "stale media shed: the worker fell behind (short of CPU) and skipped media that waited too long to be of use"
            );
        }
        if let Some(read) = self.backlog.due(now) {
            debug!(%read, "media worker: datagrams read by kind, time spent, longest wait");
        }
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = stats;
    }
}
