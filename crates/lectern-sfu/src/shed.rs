//! Shedding stale media: how a media worker that fell behind its socket catches up cheaply
//! and keeps answering connectivity checks (issue 15, point 7).
//!
//! A worker short of CPU reads its socket late. What waits there is mostly RTP and RTCP; a
//! joining student's STUN checks and DTLS handshake wait behind it, and when the socket's
//! buffer is full the kernel drops them, so joins fail (see `udp.rs`, [`crate::SfuStats::
//! udp_recv_overflow`]). The expensive part of a backlog is the publishers' RTP: each packet
//! is delivered to every subscriber of its track, hundreds of writes and encryptions, while a
//! STUN check, a DTLS record or a subscriber's RTCP costs one peer's work.
//!
//! The kernel stamps each datagram when it arrives (`SO_TIMESTAMPNS`, see
//! [`crate::udp::RecvBatch::waited`]), so the worker knows how long each one waited. An RTP
//! packet ([`Kind::of`]: RFC 7983 and RFC 5761) that waited longer than [`STALE_AFTER`] is
//! *shed*: str0m still takes it in (decryption, its receive statistics and NACK register, so
//! no gap is NACKed and nothing is resent; the recorder still gets it), but it is not
//! delivered to subscribers nor relayed to other workers ([`crate::Sfu::
//! handle_stale_receive`]). A relayed packet older than [`STALE_AFTER`] (a linked worker
//! behind on its command channel) is shed the same way. Once a video layer lost packets so,
//! its subscribers are sent nothing more of it until its next keyframe, asked for (PLI, at
//! most once per keyframe interval) as soon as a packet of it arrives fresh again: the deltas
//! between could not be decoded, and not sending them is part of catching up. STUN, DTLS and
//! RTCP are always handled.
//!
//! Why [`STALE_AFTER`] is 250 ms: a live packet that waited that long in our socket alone is
//! past its playout time at the student (a receiver's audio jitter buffer holds tens to a
//! couple of hundred milliseconds; later packets are discarded as late), and video that late
//! only adds delay the receiver then has to drain. A worker that keeps up, even on a busy
//! machine, reads its datagrams within a few milliseconds (measured, see
//! docs/BENCHMARKS.md): nothing is shed unless it is seconds behind or going there.
//!
//! The kernel's timestamps are wall-clock time: a step of the system clock while datagrams
//! wait makes their age wrong once (forward: one socket's worth of RTP shed; backward: none).

use std::time::{Duration, Instant};

/// An RTP packet older than this when read is shed. See the module docs for why 250 ms.
pub const STALE_AFTER: Duration = Duration::from_millis(250);

/// What a datagram on a WebRTC port is, from its first two bytes (RFC 7983, RFC 5761).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Stun, Kind::Dtls, Kind::Rtp, Kind::Rtcp, Kind::Other];

    pub fn of(datagram: &[u8]) -> Kind {
        match datagram.first() {
            Some(0..=3) => Kind::Stun,
            Some(20..=63) => Kind::Dtls,
            // RTP or RTCP: RTCP's packet types 192-223 sit where RTP has its marker bit and
            // payload type; RTP payload types 64-95 are not used on a muxed port for that reason.
            Some(128..=191) => match datagram.get(1) {
                Some(192..=223) => Kind::Rtcp,
                Some(_) => Kind::Rtp,
                None => Kind::Other,
            },
            _ => Kind::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Stun => "stun",
            Kind::Dtls => "dtls",
            Kind::Rtp => "rtp",
            Kind::Rtcp => "rtcp",
            Kind::Other => "other",
        }
    }
}

/// The slot of [`Backlog`] for shed RTP.
const SHED: usize = Kind::ALL.len();

/// Whether a datagram of `kind` that waited `waited` in the socket is to be shed. Without a
/// timestamp (the kernel gave none) nothing is.
pub fn is_stale(kind: Kind, waited: Option<Duration>, stale_after: Duration) -> bool {
    kind == Kind::Rtp && waited.is_some_and(|w| w > stale_after)
}

/// What a worker read and how long it took, by kind of datagram, since the last report: what a
/// backlog is made of and what each kind costs. Logged at debug level every
/// [`Backlog::EVERY`] ([`Backlog::due`]).
/// Shed RTP is counted apart from the RTP sent on (the last slot).
#[derive(Debug, Default)]
pub struct Backlog {
    count: [u64; 6],
    busy: [Duration; 6],
    longest_wait: [Duration; 6],
    next_report: Option<Instant>,
}

impl Backlog {
    /// A datagram of `kind` that waited `waited` was handled (or shed) in `took`.
    pub fn note(&mut self, kind: Kind, waited: Option<Duration>, took: Duration, shed: bool) {
        let i = if shed { SHED } else { kind.index() };
        self.count[i] += 1;
        self.busy[i] += took;
        if let Some(w) = waited {
            self.longest_wait[i] = self.longest_wait[i].max(w);
        }
    }

    pub const EVERY: Duration = Duration::from_secs(10);

    /// The report, if one is due at `now` (see [`Backlog::report`]).
    pub fn due(&mut self, now: Instant) -> Option<String> {
        let next = *self.next_report.get_or_insert(now + Self::EVERY);
        if now < next {
            return None;
        }
        let report = self.report();
        self.next_report = Some(now + Self::EVERY);
        Some(report)
    }

    /// The figures since the last report, as text for a log line, and start again.
    pub fn report(&mut self) -> String {
        let mut out = String::new();
        let names = Kind::ALL.map(Kind::name);
        for (i, name) in names.iter().chain(&["rtp shed"]).enumerate() {
            if self.count[i] == 0 {
                continue;
            }
            let per = self.busy[i].as_nanos() / u128::from(self.count[i]) / 1000;
            out.push_str(&format!(
                "{}: {} in {} ms, {} us each, waited up to {} ms; ",
                name,
                self.count[i],
                self.busy[i].as_millis(),
                per,
                self.longest_wait[i].as_millis()
            ));
        }
        *self = Backlog {
            next_report: self.next_report,
            ..Backlog::default()
        };
        out
    }
}

/// Spaces the warnings about a growing count (the kernel's drops, stale media shed): at most
/// one per [`Spaced::EVERY`] while it grows, saying how much it grew since the last one.
#[derive(Debug, Default)]
pub struct Spaced {
    total: u64,
    warned: u64,
    next_warning: Option<Instant>,
}

impl Spaced {
    /// The least time between two warnings.
    pub const EVERY: Duration = Duration::from_secs(10);

    /// The count is `total` at `now`: how much it grew since the last warning, if it is time
    /// for another.
    pub fn note(&mut self, now: Instant, total: u64) -> Option<u64> {
        self.total = self.total.max(total);
        if self.total == self.warned || self.next_warning.is_some_and(|t| now < t) {
            return None;
        }
        let grew = self.total - self.warned;
        self.warned = self.total;
        self.next_warning = Some(now + Self::EVERY);
        Some(grew)
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_told_apart_by_their_first_bytes() {
        // A STUN binding request, a DTLS handshake record, RTP (VP8, PT 96, with and without
        // the marker bit), RTCP (a receiver report and a transport-cc feedback).
        assert_eq!(Kind::of(&[0x00, 0x01, 0x00, 0x00]), Kind::Stun);
        assert_eq!(Kind::of(&[22, 0xfe, 0xfd]), Kind::Dtls);
        assert_eq!(Kind::of(&[0x80, 96]), Kind::Rtp);
        assert_eq!(Kind::of(&[0x80, 96 | 0x80]), Kind::Rtp);
        assert_eq!(Kind::of(&[0x80, 201]), Kind::Rtcp);
        assert_eq!(Kind::of(&[0x8f, 205]), Kind::Rtcp);
        assert_eq!(Kind::of(&[0x80]), Kind::Other);
        assert_eq!(Kind::of(&[]), Kind::Other);
        assert_eq!(Kind::of(&[0xff, 0]), Kind::Other);
    }

    #[test]
    fn only_rtp_that_waited_too_long_is_stale() {
        let old = Some(STALE_AFTER * 2);
        assert!(is_stale(Kind::Rtp, old, STALE_AFTER));
        assert!(!is_stale(Kind::Rtp, Some(STALE_AFTER / 2), STALE_AFTER));
        assert!(!is_stale(Kind::Rtp, None, STALE_AFTER));
        for kind in [Kind::Stun, Kind::Dtls, Kind::Rtcp, Kind::Other] {
            assert!(!is_stale(kind, old, STALE_AFTER), "{kind:?}");
        }
    }

    #[test]
    fn the_backlog_report_counts_shed_rtp_apart() {
        let mut b = Backlog::default();
        let ms = Duration::from_millis;
        b.note(Kind::Rtp, Some(ms(300)), ms(2), true);
        b.note(Kind::Rtp, Some(ms(10)), ms(1), false);
        b.note(Kind::Stun, Some(ms(20)), ms(0), false);
        let report = b.report();
        assert!(report.starts_with("stun: 1 in 0 ms"), "{report}");
        assert!(report.contains("rtp: 1 in 1 ms, 1000 us each, waited up to 10 ms"));
        assert!(report.contains("rtp shed: 1 in 2 ms, 2000 us each, waited up to 300 ms"));
        assert_eq!(b.report(), "", "started again");
    }

    #[test]
    fn warnings_are_spaced() {
        let t = Instant::now();
        let mut s = Spaced::default();
        assert_eq!(s.note(t, 0), None);
        assert_eq!(s.note(t, 5), Some(5));
        assert_eq!(s.note(t + Duration::from_secs(1), 12), None);
        assert_eq!(s.total(), 12);
        assert_eq!(s.note(t + Spaced::EVERY, 12), Some(7));
        assert_eq!(s.note(t + Spaced::EVERY * 3, 12), None);
    }
}
