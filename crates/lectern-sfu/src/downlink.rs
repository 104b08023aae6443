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
//! layer that no longer fits at once, rather than at the next keyframe of the smaller one, and
//! forgets what it sent of it (the browser's NACKs for what the link dropped of it go
//! unanswered: resent, it would only fill the queue again). The smaller layer's keyframe is
//! asked for once the queue in front of the link had time to drain ([`DRAIN_MIN`]): sent into
//! it, the keyframe waits behind it or is dropped, and the picture freezes again just after the
//! switch. Congestion again [`SETTLE`] after the smaller layer started takes one more layer off
//! (before, the statistics still show the queue it waited for). The ceilings are lifted only
//! after a hold ([`FIRST_HOLD`]): a subscriber whose link is still too slow is congested again soon after,
//! within [`TRIAL`], and then waits twice as long before the next try (up to [`MAX_HOLD`]); one
//! that stays on the larger layer through a trial starts from [`FIRST_HOLD`] again. So a student
//! on a poor link tries the large layer a few times, minutes apart, rather than oscillating.

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
/// Fewest resends between two statistics for them to count: one or two of the small layer
/// (~15 packets in half a second) are 7–13% of it. A Chromium student on an open link, on a
/// busy machine, showed that many again and again (some, perhaps all, packets not yet sent
/// at the statistics before, see [`resends`]), so it was cut every [`SETTLE`] and never
/// tried the large layer.
pub(crate) const MIN_RESENT: u64 = 3;
/// How long after a cut further congestion is not acted on: the queue built before it drains
/// (its loss and delay still show in the next statistics).
pub const SETTLE: Duration = Duration::from_secs(2);
/// After a cut, the smaller layer does not start before the queue in front of the link had
/// time to drain: as long as the round trip had grown over the lowest seen (what the queue
/// held), at least [`DRAIN_MIN`] (a link found congested by its loss before a report showed
/// the delay has a full queue) and at most [`DRAIN_MAX`].
pub const DRAIN_MIN: Duration = Duration::from_millis(400);
/// The longest wait for the queue to drain after a cut.
pub const DRAIN_MAX: Duration = Duration::from_secs(1);
/// How long the first ceilings hold before the larger layers are tried again.
pub const FIRST_HOLD: Duration = Duration::from_secs(20);
/// The longest ceilings hold.
pub const MAX_HOLD: Duration = Duration::from_secs(160);
/// Congestion this soon after ceilings were lifted means the link still is too slow: the next
/// hold is twice as long.
pub const TRIAL: Duration = Duration::from_secs(10);

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

/// Of the packets str0m sent on an m-line between two statistics (`sent`), how many were
/// resends, given the packets written to it meanwhile (`written`) and those written before
/// that it had not sent yet (`unsent`); and how many written it has not sent now. str0m sends
/// what is written when polled, and its statistics may come before that: on a busy machine
/// (bigger batches) up to a keyframe's worth of packets (5–8 seen in Chromium runs) was written
/// but not sent at one statistics and counted as resends at the next, so a student on an open
/// link was found congested. Resends while packets wait are counted only beyond them (a loss
/// then shows a little later, at the next statistics).
pub(crate) fn resends(sent: u64, written: u64, unsent: u64) -> (u64, u64) {
    let due = written + unsent;
    (sent.saturating_sub(due), due.saturating_sub(sent))
}

/// Why a subscriber's link was found congested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Congestion {
    Loss(f32),
    Delay(Duration),
}

/// A subscriber's downlink state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Downlink {
    /// When the last cut was made, or (later) when the smaller layer it chose started: the
    /// statistics of the next [`SETTLE`] still show the queue built before.
    cut_at: Option<Instant>,
    /// Until when the smaller layers wait for the queue to drain after the last cut.
    drain_until: Option<Instant>,
    /// The round trip's growth over the lowest seen in the last receiver report.
    growth: Duration,
    /// When the ceilings are lifted; `Some` while the subscriber's videos have ceilings
    /// (`TrackOut::ceiling`).
    lift_at: Option<Instant>,
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
        self.lift_at.is_some()
    }

    /// Whether `sample` shows the link congested (and not just cut: see [`SETTLE`]).
    pub fn congested(&mut self, now: Instant, sample: &Sample) -> Option<Congestion> {
        let growth = sample.rtt.map(|rtt| {
            let base = self.base_rtt.map_or(rtt, |b| b.min(rtt));
            self.base_rtt = Some(base);
            rtt - base
        });
        if let (Some(g), Some(_)) = (growth, sample.report_loss) {
            self.growth = g;
        }
        if self
            .cut_at
            .is_some_and(|t| now.saturating_duration_since(t) < SETTLE)
        {
            return None;
        }
        let resent = if sample.written >= MIN_PACKETS && sample.resent >= MIN_RESENT {
            sample.resent as f32 / sample.written as f32
        } else {
            0.0
        };
        let loss = resent.max(sample.report_loss.filter(|l| l.is_finite()).unwrap_or(0.0));
        if loss >= CONGESTED_LOSS {
            return Some(Congestion::Loss(loss));
        }
        // Only a round trip from a report that just came (str0m repeats the last one, which
        // would keep a link that stopped reporting congested for good).
        match growth {
            Some(g) if g >= CONGESTED_RTT_GROWTH && sample.report_loss.is_some() => {
                Some(Congestion::Delay(g))
            }
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
        self.cut_at = Some(now);
        self.drain_until = Some(now + self.growth.clamp(DRAIN_MIN, DRAIN_MAX));
        self.lift_at = Some(now + self.hold);
        self.lifted_at = None;
    }

    /// The queue in front of the link may still be draining after the last cut: no smaller
    /// layer starts yet (nor is its keyframe asked for).
    pub fn draining(&self, now: Instant) -> bool {
        self.drain_until.is_some_and(|t| now < t)
    }

    /// When the queue is taken to have drained after the last cut.
    pub fn drained_at(&self) -> Option<Instant> {
        self.drain_until
    }

    /// A smaller layer chosen by a cut started: what the link shows from now on is that
    /// layer's, after [`SETTLE`] (the statistics until then still show the queue it waited
    /// for, round trips measured of sender reports that waited in it).
    pub fn resumed(&mut self, now: Instant) {
        if self.capped() {
            self.cut_at = Some(now);
        }
    }

    /// Lifts the ceilings once their hold is over; true if they are to be lifted now.
    pub fn lift_if_due(&mut self, now: Instant) -> bool {
        match self.lift_at {
            Some(at) if at <= now => {
                self.lift_at = None;
                self.lifted_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// The hold of the current (or last) ceilings.
    #[cfg(test)]
    pub fn hold(&self) -> Duration {
        self.hold
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
    fn packets_written_but_not_sent_yet_are_no_resends_when_they_go() {
        // 79 written, 71 sent: 8 wait; next, 80 written and 88 sent: those 8, no resend.
        assert_eq!(resends(71, 79, 0), (0, 8));
        assert_eq!(resends(88, 80, 8), (0, 0));
        // Beyond what waited, resends.
        assert_eq!(resends(95, 80, 8), (7, 0));
        assert_eq!(resends(90, 80, 0), (10, 0));
    }

    #[test]
    fn loss_and_delay_thresholds() {
        let t = Instant::now();
        let mut d = Downlink::default();
        assert_eq!(d.congested(t, &loss(100, 7)), None);
        assert_eq!(d.congested(t, &loss(100, 8)), Some(Congestion::Loss(0.08)));
        // Too few packets for their resends to count, or too few resends (one or two of the
        // small layer's ~15 packets in half a second); a receiver report's loss counts.
        assert_eq!(d.congested(t, &loss(16, 2)), None);
        assert_eq!(d.congested(t, &loss(30, 3)), Some(Congestion::Loss(0.1)));
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

    #[test]
    fn after_a_cut_the_queue_drains_and_settles_from_the_smaller_layer() {
        let t = Instant::now();
        let mut d = Downlink::default();
        // The queue had grown by 700 ms: the smaller layer waits that long.
        assert_eq!(d.congested(t, &rtt(40)), None);
        assert!(d.congested(t, &rtt(740)).is_some());
        d.cut(t);
        let ms = Duration::from_millis;
        assert!(d.draining(t + ms(699)));
        assert!(!d.draining(t + ms(700)));
        // Found by loss before a report showed the delay: at least `DRAIN_MIN`; never more
        // than `DRAIN_MAX`.
        let mut d = Downlink::default();
        d.cut(t);
        assert_eq!(d.drained_at(), Some(t + DRAIN_MIN));
        d.congested(t, &rtt(40));
        d.congested(t, &rtt(3040));
        d.cut(t);
        assert_eq!(d.drained_at(), Some(t + DRAIN_MAX));
        // The smaller layer starts after the drain: the statistics of the queue it waited for
        // (a report of a sender report that waited in it) are not a second congestion.
        let started = t + DRAIN_MAX;
        d.resumed(started);
        assert_eq!(d.congested(t + SETTLE, &loss(100, 20)), None);
        assert!(d.congested(started + SETTLE, &loss(100, 20)).is_some());
    }

    #[test]
    fn ceilings_lift_after_a_hold_that_doubles_while_trials_fail() {
        let t = Instant::now();
        let mut d = Downlink::default();
        d.cut(t);
        assert!(!d.lift_if_due(t + FIRST_HOLD - Duration::from_millis(1)));
        assert!(d.lift_if_due(t + FIRST_HOLD));
        assert!(!d.capped());
        // Congested again during the trial: twice the hold, up to the longest.
        let mut now = t + FIRST_HOLD;
        let mut holds = Vec::new();
        for _ in 0..5 {
            now += TRIAL / 2;
            d.cut(now);
            holds.push(d.hold().as_secs());
            now += d.hold();
            assert!(d.lift_if_due(now));
        }
        assert_eq!(holds, [40, 80, 160, 160, 160]);
        // A trial that lasts: the next cut holds for the first hold again.
        now += TRIAL;
        d.cut(now);
        assert_eq!(d.hold(), FIRST_HOLD);
    }
}
