//! What a bot student measures: per-track sequence continuity, payload checks and one-way
//! latency.

use std::collections::BTreeSet;

use crate::payload::{self, PayloadFault};

/// A latency histogram in microseconds: exact below 64 µs, then 64 buckets per power of two
/// (under 1.6% error). Mergeable, fixed size, no allocation per sample.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

const SUB: u64 = 64;
const BUCKETS: usize = 64 + 58 * 64;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; BUCKETS],
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - u64::from(v.leading_zeros());
        let m = v >> (e - 6);
        (SUB + (e - 6) * SUB + (m - SUB)) as usize
    }

    /// The middle of a bucket's range.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let e = (i - SUB) / SUB + 6;
        let m = (i - SUB) % SUB + SUB;
        let low = m << (e - 6);
        low + (1u64 << (e - 6)) / 2
    }

    pub fn record(&mut self, micros: u64) {
        let i = Self::index(micros).min(BUCKETS - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The samples recorded after `earlier` (an older copy of this histogram). `max` stays
    /// the overall maximum.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .zip(&earlier.buckets)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        Histogram {
            count: buckets.iter().sum(),
            buckets,
            max: self.max,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The non-empty buckets as `(index, count)`, to ship a histogram to another process.
    pub fn nonzero_buckets(&self) -> Vec<(usize, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i, *n))
            .collect()
    }

    /// A histogram rebuilt from [`Histogram::nonzero_buckets`] and [`Histogram::max`]; indexes
    /// out of range are ignored.
    pub fn from_buckets(buckets: &[(usize, u64)], max: u64) -> Histogram {
        let mut h = Histogram::default();
        for &(i, n) in buckets {
            if let Some(b) = h.buckets.get_mut(i) {
                *b += n;
                h.count += n;
            }
        }
        h.max = max;
        h
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0–1.0), or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::value(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Sequence numbers seen on one RTP stream: gaps are counted when they open and uncounted
/// when a retransmission (NACK) fills them.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    highest: Option<u64>,
    missing: BTreeSet<u64>,
    /// Packets that filled a gap after it opened (retransmitted or reordered).
    pub recovered: u64,
    pub duplicates: u64,
}

/// At most this many missing sequence numbers are remembered; a larger jump counts as loss
/// but only this many can still be recovered.
const MAX_MISSING: u64 = 4096;

impl SeqTracker {
    /// Record a 16-bit sequence number; returns its extended (unwrapped) value.
    pub fn record(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            None => u64::from(seq) + (1 << 16),
            Some(h) => {
                // The candidate nearest to the highest seen, across a wrap either way.
                let base = h & !0xffff;
                [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
                    .into_iter()
                    .map(|b| b | u64::from(seq))
                    .min_by_key(|c| c.abs_diff(h))
                    .unwrap_or(h)
            }
        };
        match self.highest {
            None => self.highest = Some(ext),
            Some(h) if ext > h => {
                let from = (h + 1).max(ext.saturating_sub(MAX_MISSING));
                self.missing.extend(from..ext);
                self.highest = Some(ext);
                while self.missing.len() as u64 > MAX_MISSING {
                    self.missing.pop_first();
                }
            }
            Some(_) => {
                if self.missing.remove(&ext) {
                    self.recovered += 1;
                } else {
                    self.duplicates += 1;
                }
            }
        }
        ext
    }

    /// Sequence numbers skipped and never filled.
    pub fn lost(&self) -> u64 {
        self.missing.len() as u64
    }
}

/// Everything one bot student saw on one received track.
#[derive(Debug, Clone, Default)]
pub struct TrackStats {
    /// `"audio"` or `"video"`.
    pub kind: String,
    /// The publisher's participant id (from the `sfu_offer` that announced this `mid`; empty
    /// while unknown).
    pub publisher: String,
    /// The m-line this track arrived on.
    pub mid: Option<String>,
    /// The SDP stream id as webrtc-rs reports it.
    pub stream_id: String,
    pub packets: u64,
    pub bytes: u64,
    /// Payloads that failed the byte-for-byte check.
    pub bad_payloads: u64,
    pub seq: SeqTracker,
    /// Video: whether the first packet received started a VP8 keyframe.
    pub first_is_keyframe: Option<bool>,
    /// Video: keyframes started (first packets of keyframes received).
    pub keyframes: u64,
    /// The last payload check failure, if any.
    pub last_fault: Option<PayloadFault>,
    pub latency_us: Histogram,
}

impl TrackStats {
    /// Account for one received RTP packet at `now_us` (µs since the Unix epoch).
    pub fn record(&mut self, seq: u16, payload: &[u8], now_us: u64) {
        let video = self.kind == "video";
        self.packets += 1;
        self.bytes += payload.len() as u64;
        self.seq.record(seq);
        if video {
            let key = payload::starts_vp8_keyframe(payload);
            self.first_is_keyframe.get_or_insert(key);
            self.keyframes += u64::from(key);
        }
        match payload::check(video, payload) {
            Ok(info) => self.latency_us.record(now_us.saturating_sub(info.sent_us)),
            Err(fault) => {
                self.bad_payloads += 1;
                self.last_fault = Some(fault);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap_or(0) as f64;
        let p99 = h.quantile(0.99).unwrap_or(0) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.02, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.02, "{p99}");
        assert_eq!(h.max(), 10_000);
        let mut m = Histogram::default();
        m.merge(&h);
        assert_eq!(m.count(), 10_000);
        let earlier = m.clone();
        m.record(7);
        let window = m.since(&earlier);
        assert_eq!((window.count(), window.quantile(0.5)), (1, Some(7)));
        assert_eq!(Histogram::default().quantile(0.5), None);
        for v in [0, 63, 64, 65, 1000, 123_456, u64::from(u32::MAX)] {
            let back = Histogram::value(Histogram::index(v)) as f64;
            assert!(
                (back - v as f64).abs() <= (v as f64) * 0.016 + 1.0,
                "{v} -> {back}"
            );
        }
    }

    #[test]
    fn histogram_survives_a_trip_through_buckets() {
        let mut h = Histogram::default();
        for v in [3, 3, 70, 5_000, 90_000] {
            h.record(v);
        }
        let back = Histogram::from_buckets(&h.nonzero_buckets(), h.max());
        assert_eq!(back.count(), 5);
        assert_eq!(back.max(), 90_000);
        for q in [0.1, 0.5, 0.9, 1.0] {
            assert_eq!(back.quantile(q), h.quantile(q));
        }
        // An index past the end is ignored rather than trusted.
        assert_eq!(Histogram::from_buckets(&[(usize::MAX, 9)], 0).count(), 0);
    }

    #[test]
    fn gaps_open_and_retransmissions_close_them_across_a_wrap() {
        let mut s = SeqTracker::default();
        for seq in [65_533u16, 65_534, 1, 2] {
            s.record(seq);
        }
        // 65535 and 0 are missing.
        assert_eq!(s.lost(), 2);
        s.record(0);
        assert_eq!((s.lost(), s.recovered), (1, 1));
        s.record(65_535);
        assert_eq!((s.lost(), s.recovered), (0, 2));
        s.record(2);
        assert_eq!(s.duplicates, 1);
    }
}
