//! Network quality of a peer's connection, from str0m's statistics: the worst packet loss seen
//! either way (what the browser reports losing of what we send, in RTCP receiver reports and,
//! since those count a packet repaired by a resend as received, the share of video str0m had
//! to resend; what we lose of what it sends, also from transport-wide feedback) and the longest
//! round-trip time measured, over a window of [`QUALITY_INTERVAL`].
//!
//! | quality | when |
//! |---|---|
//! | poor | loss >= [`POOR_LOSS`] or RTT >= [`POOR_RTT`] |
//! | fair | loss >= [`FAIR_LOSS`] or RTT >= [`FAIR_RTT`] |
//! | good | anything better |
//! | unknown | no connection, or no measurement yet |
//!
//! A window without any measurement keeps the last quality (a peer that only listens to
//! silence still has its connection).

use std::time::Duration;

/// How often each peer's quality is decided (and changes reported).
pub const QUALITY_INTERVAL: Duration = Duration::from_secs(2);
/// How often str0m produces statistics for each peer: four times per quality window, and often
/// enough for a congested downlink to show within a second (`crate::downlink`).
pub(crate) const STATS_INTERVAL: Duration = Duration::from_millis(500);

/// Loss fraction (0 to 1) from which a connection is poor.
pub const POOR_LOSS: f32 = 0.10;
/// Round-trip time from which a connection is poor.
pub const POOR_RTT: Duration = Duration::from_millis(400);
/// Loss fraction from which a connection is fair.
pub const FAIR_LOSS: f32 = 0.03;
/// Round-trip time from which a connection is fair.
pub const FAIR_RTT: Duration = Duration::from_millis(200);

/// How good a peer's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkQuality {
    Good,
    Fair,
    Poor,
    /// No connection, or nothing measured yet.
    #[default]
    Unknown,
}

impl NetworkQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkQuality::Good => "good",
            NetworkQuality::Fair => "fair",
            NetworkQuality::Poor => "poor",
            NetworkQuality::Unknown => "unknown",
        }
    }
}

/// The worst of what was measured on one peer during the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct QualityWindow {
    loss: Option<f32>,
    rtt: Option<Duration>,
}

impl QualityWindow {
    pub fn note_loss(&mut self, loss: Option<f32>) {
        if let Some(loss) = loss.filter(|l| l.is_finite()) {
            let loss = loss.clamp(0.0, 1.0);
            self.loss = Some(self.loss.map_or(loss, |l| l.max(loss)));
        }
    }

    pub fn note_rtt(&mut self, rtt: Option<Duration>) {
        if let Some(rtt) = rtt {
            self.rtt = Some(self.rtt.map_or(rtt, |r| r.max(rtt)));
        }
    }

    /// The quality this window shows; `None` when nothing was measured.
    pub fn quality(&self) -> Option<NetworkQuality> {
        if self.loss.is_none() && self.rtt.is_none() {
            return None;
        }
        let loss = self.loss.unwrap_or(0.0);
        let rtt = self.rtt.unwrap_or(Duration::ZERO);
        Some(if loss >= POOR_LOSS || rtt >= POOR_RTT {
            NetworkQuality::Poor
        } else if loss >= FAIR_LOSS || rtt >= FAIR_RTT {
            NetworkQuality::Fair
        } else {
            NetworkQuality::Good
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(loss: Option<f32>, rtt_ms: Option<u64>) -> QualityWindow {
        let mut w = QualityWindow::default();
        w.note_loss(loss);
        w.note_rtt(rtt_ms.map(Duration::from_millis));
        w
    }

    #[test]
    fn thresholds() {
        use NetworkQuality::*;
        assert_eq!(window(None, None).quality(), None);
        assert_eq!(window(Some(0.0), None).quality(), Some(Good));
        assert_eq!(window(None, Some(50)).quality(), Some(Good));
        assert_eq!(window(Some(0.029), Some(199)).quality(), Some(Good));
        assert_eq!(window(Some(0.03), Some(10)).quality(), Some(Fair));
        assert_eq!(window(Some(0.0), Some(200)).quality(), Some(Fair));
        assert_eq!(window(Some(0.10), Some(10)).quality(), Some(Poor));
        assert_eq!(window(Some(0.0), Some(400)).quality(), Some(Poor));
        assert_eq!(window(Some(f32::NAN), None).quality(), None);
    }

    #[test]
    fn the_worst_measurement_of_the_window_counts() {
        let mut w = window(Some(0.2), Some(10));
        w.note_loss(Some(0.0));
        w.note_rtt(Some(Duration::from_millis(5)));
        assert_eq!(w.quality(), Some(NetworkQuality::Poor));
    }
}
