//! Each subscriber's downlink: does the video the SFU sends it fit its link? Decided from what
//! every browser already sends back (no transport-cc towards subscribers, see `crate::sdp`):
//!
//! - **loss**: the share of the video written to a subscriber that str0m had to resend because
//!   its browser NACKed it, and the fraction lost in its RTCP receiver reports (which count a
//!   repaired packet as received, so miss what NACKs repair);
//! - **delay**: the round-trip time from its receiver reports, against the lowest seen (a queue
//!   filling up in front of a slow link).
//!
//! A link that only queues without ever dropping has no loss: the delay rule catches it; a
//! link that drops (a policer, or a full queue) shows loss within a few hundred milliseconds.
//! On a link that is not full neither happens, however busy the machines at either end are
//! (they delay RTCP by tens of milliseconds, not [`CONGESTED_RTT_GROWTH`]).
//!
//! On congestion ([`Downlink::cut`]) each simulcast video sent to the subscriber gets a ceiling:
//! the next smaller layer than the one it gets (by picture height, not by bit rate: a browser
//! short of CPU sends a few large frames a second, and a rate measured over half a second swings
//! so much that a layer seems to fit one moment and not the next). The SFU stops sending the
//! layer that no longer fits at once, rather than at the next keyframe of the smaller one, so the
//! queue in front of the link drains while that keyframe is asked for and comes. Congestion
//! again after [`SETTLE`] takes one more layer off.
//!
//! ## Going back up: a probe, not a try
//!
//! After a hold ([`FIRST_HOLD`]) the SFU does not switch the subscriber to the larger layer to
//! see what happens (on a link still too slow that froze its video every time). It first
//! *probes* the link for [`PROBE`]: it keeps sending the small layer, and sends next to it as
//! many bytes again as the larger layer would add ([`Filler`]), so that for a few seconds the
//! link carries what it would carry on the larger layer. The filler is made of copies of the
//! packets the subscriber gets anyway, with the same sequence number and the same bytes: the
//! receiver drops a copy as a replay (SRTP's replay check in browsers, str0m's duplicate check)
//! before anything decodes it or counts it. A copy is the very same datagram as its original
//! (same SRTP index, header and payload, serialized in the same send pass: see `sfu/deliver.rs`),
//! so it tells an eavesdropper nothing; under AES-GCM different bytes under one index would. The copies go through the same queue as
//! the video, so the signals above measure them:
//!
//! - a link without room for the larger layer queues: the round trip of the next receiver
//!   reports grows (a probe fails from [`PROBE_RTT_GROWTH`], less than a cut needs: a probe
//!   runs against the low round trip of a drained link), then drops: the small layer's packets
//!   are NACKed and resent, and the reports count loss. A copy that got through where its
//!   original was dropped hides that loss, so on a dropping link the delay is the first sign;
//! - a link with room shows neither through at least [`PROBE_REPORTS`] fresh receiver reports
//!   and [`PROBE`]: the ceilings are lifted and the larger layer comes at its next keyframe.
//!
//! A failed probe stops its filler at once; the student keeps the small layer throughout (its
//! video is late by the queue the probe built, up to the link's queue length, and what the link
//! dropped is resent), and waits twice as long before the next probe (up to [`MAX_HOLD`]). A
//! probe costs far less than a try, so the holds are shorter than a try's were (20 s doubling to
//! 160 s): a link that recovered is back on the larger layer within [`MAX_HOLD`] and a probe.
//! If congestion still comes within [`TRIAL`] of a passed probe (the link's room shrank, or the
//! larger layer sends more than it did), the cut is as before and the next hold twice as long.
//!
//! Not probed: bandwidth estimation with transport-cc (str0m's TWCC send register costs ~88 KiB
//! per peer, see `crate::sdp`) and str0m's own padding, which it only sends when its bandwidth
//! estimator is on (`RtcConfig::enable_bwe`, for the whole peer and every packet: its pacer) and
//! sends as RTX, which browsers do not count in receiver reports nor NACK.

use std::time::{Duration, Instant};

/// Loss (resent share or receiver-report fraction, 0 to 1) from which a subscriber's link is
/// congested. Above the few percent a wireless link loses and NACKs repair; a queue that
/// overflows drops far more (str0m resends at most ~15% of what it sends, so this must stay
/// below that).
pub const CONGESTED_LOSS: f32 = 0.08;
/// Round-trip-time growth over the lowest seen from which a subscriber's link is congested.
pub const CONGESTED_RTT_GROWTH: Duration = Duration::from_millis(250);
/// Fewest video packets written to a subscriber between two statistics for their resends to
/// count (a handful says little).
pub(crate) const MIN_PACKETS: u64 = 15;
/// How long after a cut further congestion is not acted on: the queue built before it drains
/// (its loss and delay still show in the next statistics).
pub const SETTLE: Duration = Duration::from_secs(2);
/// How long after a failed probe further congestion is not acted on: the queue it built drains,
/// and the next receiver reports may still answer sender reports that waited in it.
pub const PROBE_SETTLE: Duration = Duration::from_secs(4);
/// How long the first ceilings hold before the link is probed for the larger layers.
pub const FIRST_HOLD: Duration = Duration::from_secs(10);
/// The longest ceilings hold between two probes.
pub const MAX_HOLD: Duration = Duration::from_secs(40);
/// Congestion this soon after ceilings were lifted means the link still is too slow: the next
/// hold is twice as long.
pub const TRIAL: Duration = Duration::from_secs(10);
/// How long a probe runs at least: the larger layer's rate through the link for this long, with
/// no congestion, lifts the ceilings.
pub const PROBE: Duration = Duration::from_secs(4);
/// Round-trip-time growth over the lowest seen from which a probe fails.
pub const PROBE_RTT_GROWTH: Duration = Duration::from_millis(100);
/// Fresh receiver reports a probe needs to pass (each one a round trip measured through it).
pub const PROBE_REPORTS: u32 = 2;
/// A probe with too few receiver reports after this long fails (nothing says the link has room).
const PROBE_LONGEST: Duration = Duration::from_secs(8);
/// The most copies of one packet a probe's filler sends.
const MAX_COPIES: u32 = 8;

/// One statistics sample of a video m-line sent to the subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// Packets written to the m-line since the last sample.
    pub written: u64,
    /// Packets str0m sent on it beyond those: resends asked for by NACKs.
    pub resent: u64,
    /// Fraction lost from the receiver reports since the last sample.
    pub report_loss: Option<f32>,
    /// Round-trip time from the last receiver report (maybe an old one: `report_loss` is
    /// `Some` when one came since the last sample).
    pub rtt: Option<Duration>,
}

/// Why a subscriber's link was found congested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Congestion {
    Loss(f32),
    Delay(Duration),
}

/// What a statistics sample means for a subscriber's link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Congested: cut (one layer down).
    Congested(Congestion),
    /// Congested during a probe: its filler stops, the ceilings stay, the hold doubles.
    ProbeFailed(Congestion),
    /// A probe went through: the ceilings are lifted.
    ProbePassed,
}

/// What the timer of a subscriber's probes says to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ProbeTick {
    /// Nothing.
    Idle,
    /// Start a probe: its filler on each capped video.
    Start,
    /// The probe got too few receiver reports: it failed, its filler stops.
    GaveUp,
}

/// A running probe.
#[derive(Debug, Clone, Copy)]
struct Probe {
    started: Instant,
    /// Fresh receiver reports since it started.
    reports: u32,
}

/// A subscriber's downlink state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Downlink {
    /// Until when congestion is not acted on: [`SETTLE`] after a cut, [`PROBE_SETTLE`] after a
    /// failed probe.
    settle_until: Option<Instant>,
    /// When the next probe starts; `Some` while the subscriber's videos have ceilings
    /// (`TrackOut::ceiling`).
    probe_at: Option<Instant>,
    /// The probe running, if any.
    probe: Option<Probe>,
    /// The hold of the current (or next) ceilings.
    hold: Duration,
    /// When the last ceilings were lifted (a trial of the larger layer runs for [`TRIAL`]).
    lifted_at: Option<Instant>,
    /// The lowest round-trip time seen.
    base_rtt: Option<Duration>,
}

impl Downlink {
    /// The subscriber's videos have ceilings.
    pub fn capped(&self) -> bool {
        self.probe_at.is_some()
    }

    /// A probe is running.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// What `sample` means: congestion (and not just a cut settling, see [`SETTLE`]), or the end
    /// of a probe.
    pub fn verdict(&mut self, now: Instant, sample: &Sample) -> Option<Verdict> {
        let congested = self.congested(now, sample);
        if !self.probing() {
            return congested.map(Verdict::Congested);
        }
        if let Some(why) = congested {
            self.probe_failed(now);
            return Some(Verdict::ProbeFailed(why));
        }
        let probe = self.probe.as_mut()?;
        if sample.report_loss.is_some() {
            probe.reports += 1;
        }
        if probe.reports >= PROBE_REPORTS && now.saturating_duration_since(probe.started) >= PROBE {
            self.probe = None;
            self.probe_at = None;
            self.lifted_at = Some(now);
            return Some(Verdict::ProbePassed);
        }
        None
    }

    /// Whether `sample` shows the link congested (and not just cut: see [`SETTLE`]); during a
    /// probe from a smaller round-trip growth ([`PROBE_RTT_GROWTH`]).
    pub fn congested(&mut self, now: Instant, sample: &Sample) -> Option<Congestion> {
        let growth = sample.rtt.map(|rtt| {
            let base = self.base_rtt.map_or(rtt, |b| b.min(rtt));
            self.base_rtt = Some(base);
            rtt - base
        });
        if self.settle_until.is_some_and(|t| now < t) {
            return None;
        }
        let resent = if sample.written >= MIN_PACKETS {
            sample.resent as f32 / sample.written as f32
        } else {
            0.0
        };
        let loss = resent.max(sample.report_loss.filter(|l| l.is_finite()).unwrap_or(0.0));
        if loss >= CONGESTED_LOSS {
            return Some(Congestion::Loss(loss));
        }
        let most = if self.probing() {
            PROBE_RTT_GROWTH
        } else {
            CONGESTED_RTT_GROWTH
        };
        // Only a round trip from a report that just came (str0m repeats the last one, which
        // would keep a link that stopped reporting congested for good).
        match growth {
            Some(g) if g >= most && sample.report_loss.is_some() => Some(Congestion::Delay(g)),
            _ => None,
        }
    }

    /// The link is congested: the subscriber's videos get (lower) ceilings, held for a while.
    pub fn cut(&mut self, now: Instant) {
        let in_trial = self
            .lifted_at
            .is_some_and(|t| now.saturating_duration_since(t) < TRIAL);
        self.hold = match (self.capped(), in_trial) {
            // Already capped (a further step down): the hold restarts, as long as it was.
            (true, _) => self.hold.max(FIRST_HOLD),
            (false, true) => (self.hold * 2).clamp(FIRST_HOLD, MAX_HOLD),
            (false, false) => FIRST_HOLD,
        };
        self.settle_until = Some(now + SETTLE);
        self.probe_at = Some(now + self.hold);
        self.probe = None;
        self.lifted_at = None;
    }

    /// The probe failed: the ceilings stay, for twice as long as before.
    fn probe_failed(&mut self, now: Instant) {
        self.probe = None;
        self.hold = (self.hold * 2).clamp(FIRST_HOLD, MAX_HOLD);
        // The queue the probe built drains: what it still shows is not acted on.
        self.settle_until = Some(now + PROBE_SETTLE);
        self.probe_at = Some(now + self.hold);
    }

    /// Starts a probe once the hold is over; gives up on one that got too few reports.
    pub fn tick(&mut self, now: Instant) -> ProbeTick {
        if let Some(probe) = self.probe {
            if now.saturating_duration_since(probe.started) >= PROBE_LONGEST {
                self.probe_failed(now);
                return ProbeTick::GaveUp;
            }
            return ProbeTick::Idle;
        }
        match self.probe_at {
            Some(at) if at <= now => {
                self.probe = Some(Probe {
                    started: now,
                    reports: 0,
                });
                ProbeTick::Start
            }
            _ => ProbeTick::Idle,
        }
    }

    /// Lifts the ceilings without a probe (no video of the subscriber has a larger layer to
    /// go to: there is nothing to probe for).
    pub fn lift(&mut self, now: Instant) {
        self.probe = None;
        self.probe_at = None;
        self.lifted_at = Some(now);
    }

    /// The hold of the current (or last) ceilings.
    #[cfg(test)]
    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// The hold of the current (or last) ceilings, in seconds (for logs).
    pub fn hold_secs(&self) -> u64 {
        self.hold.as_secs()
    }
}

/// A probe's filler on one video: after each packet of the layer the subscriber gets, enough
/// copies of it that the bytes sent are those of the larger layer (`ratio` of its bit rate to
/// the current one's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filler {
    extra: f32,
    debt: f32,
}

impl Filler {
    pub fn new(ratio: f32) -> Filler {
        Filler {
            extra: (ratio - 1.0).clamp(0.0, MAX_COPIES as f32),
            debt: 0.0,
        }
    }

    /// How many copies of a packet of `len` bytes to send after it.
    pub fn copies(&mut self, len: usize) -> u32 {
        let len = len.max(1) as f32;
        self.debt += len * self.extra;
        let n = (self.debt / len).floor().min(MAX_COPIES as f32);
        self.debt -= n * len;
        n as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(written: u64, resent: u64) -> Sample {
        Sample {
            written,
            resent,
            ..Sample::default()
        }
    }

    fn rtt(ms: u64) -> Sample {
        Sample {
            rtt: Some(Duration::from_millis(ms)),
            report_loss: Some(0.0),
            ..Sample::default()
        }
    }

    #[test]
    fn loss_and_delay_thresholds() {
        let t = Instant::now();
        let mut d = Downlink::default();
        assert_eq!(d.congested(t, &loss(100, 7)), None);
        assert_eq!(d.congested(t, &loss(100, 8)), Some(Congestion::Loss(0.08)));
        // Too few packets for their resends to count; a receiver report's loss counts.
        assert_eq!(d.congested(t, &loss(10, 5)), None);
        let report = Sample {
            report_loss: Some(0.2),
            ..Sample::default()
        };
        assert_eq!(d.congested(t, &report), Some(Congestion::Loss(0.2)));
        // Delay counts from the lowest round trip seen, whatever it is.
        assert_eq!(d.congested(t, &rtt(40)), None);
        assert_eq!(d.congested(t, &rtt(280)), None);
        assert_eq!(
            d.congested(t, &rtt(290)),
            Some(Congestion::Delay(Duration::from_millis(250)))
        );
        // The same round trip again without a new report: nothing new.
        let stale = Sample {
            report_loss: None,
            ..rtt(290)
        };
        assert_eq!(d.congested(t, &stale), None);
    }

    #[test]
    fn a_cut_settles_before_the_next() {
        let t = Instant::now();
        let mut d = Downlink::default();
        assert!(d.congested(t, &loss(100, 20)).is_some());
        d.cut(t);
        assert!(d.capped());
        // The queue built before the cut still shows for a moment: not acted on.
        assert_eq!(d.congested(t + SETTLE / 2, &loss(100, 20)), None);
        assert!(d.congested(t + SETTLE, &loss(100, 20)).is_some());
    }

    fn report(ms: u64) -> Sample {
        Sample {
            written: 100,
            ..rtt(ms)
        }
    }

    #[test]
    fn a_probe_after_a_hold_that_doubles_while_probes_fail() {
        let t = Instant::now();
        let mut d = Downlink::default();
        assert!(d.verdict(t, &report(40)).is_none());
        d.cut(t);
        assert_eq!(
            d.tick(t + FIRST_HOLD - Duration::from_millis(1)),
            ProbeTick::Idle
        );
        let mut now = t + FIRST_HOLD;
        let mut holds = Vec::new();
        for _ in 0..4 {
            assert_eq!(d.tick(now), ProbeTick::Start);
            assert!(d.probing() && d.capped());
            // A queue builds up: a smaller growth than a cut needs fails the probe.
            now += Duration::from_millis(500);
            assert_eq!(
                d.verdict(now, &report(40 + 100)),
                Some(Verdict::ProbeFailed(Congestion::Delay(PROBE_RTT_GROWTH)))
            );
            assert!(!d.probing() && d.capped());
            holds.push(d.hold().as_secs());
            assert_eq!(
                d.tick(now + d.hold() - Duration::from_millis(1)),
                ProbeTick::Idle
            );
            now += d.hold();
        }
        assert_eq!(holds, [20, 40, 40, 40]);
        // A probe through which the link stays uncongested lifts the ceilings, once it had
        // its reports and its time.
        assert_eq!(d.tick(now), ProbeTick::Start);
        assert_eq!(d.verdict(now + PROBE, &report(60)), None);
        assert_eq!(
            d.verdict(now + PROBE, &report(60)),
            Some(Verdict::ProbePassed)
        );
        assert!(!d.capped() && !d.probing());
        // Congested during the trial that follows: cut, and twice the hold.
        now += PROBE + TRIAL / 2;
        d.cut(now);
        assert_eq!(d.hold(), MAX_HOLD);
        // A probe without reports gives up.
        now += d.hold();
        assert_eq!(d.tick(now), ProbeTick::Start);
        assert_eq!(d.tick(now + PROBE_LONGEST), ProbeTick::GaveUp);
        assert!(d.capped() && !d.probing());
    }

    #[test]
    fn a_filler_sends_the_larger_layers_bytes() {
        let mut f = Filler::new(4.5);
        let copies: u32 = (0..100).map(|_| f.copies(1000)).sum();
        assert!((349..=350).contains(&copies), "{copies}");
        let mut none = Filler::new(0.5);
        assert_eq!(none.copies(1000), 0);
    }
}
