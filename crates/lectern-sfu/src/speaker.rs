//! Active-speaker detection from the audio level RTP header extension (RFC 6464).
//!
//! Browsers put the level of every Opus packet they send in `ssrc-audio-level`: 0 is the
//! loudest, -127 silence (dBov). The SFU never decodes audio; per forwarded audio packet it adds
//! one to a counter when the level is speech ([`SPEECH_LEVEL`] or louder) and the packet's
//! loudness to a sum. Every [`SPEAKER_INTERVAL`] each room compares its publishers' windows:
//!
//! - a publisher *qualifies* with at least [`MIN_SPEECH_PACKETS`] speech packets in the window
//!   (at 50 packets/s that is a quarter of the window: a cough or a click does not qualify);
//! - the one with the most speech packets (ties: the louder) becomes the active speaker when
//!   there is no current speaker, the current one did not qualify, or the newcomer had clearly
//!   more speech ([`SWITCH_MARGIN_PERCENT`]), so two people talking over each other do not make
//!   the highlight flicker;
//! - silence keeps the last speaker (the highlight shows who spoke last, as in most conferencing
//!   tools); a speaker who leaves, stops the track or loses permission is cleared.
//!
//! Only packets the SFU forwards count: a hard-muted student shouting into a microphone is never
//! named.

use std::time::Duration;

/// How often each room's speaker is decided.
pub const SPEAKER_INTERVAL: Duration = Duration::from_millis(400);

/// Audio at this level (dBov) or louder counts as speech. Speech at a normal distance from a
/// laptop microphone measures about -20 to -40; room noise -60 and below.
pub const SPEECH_LEVEL: i8 = -50;

/// Speech packets needed in one window to qualify (of about 20 at 20 ms per packet).
pub const MIN_SPEECH_PACKETS: u32 = 5;

/// A qualifying newcomer replaces a current speaker who also qualifies only with this many
/// percent more speech packets.
pub const SWITCH_MARGIN_PERCENT: u32 = 50;

/// One audio track's speech in the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LevelWindow {
    pub speech_packets: u32,
    /// Sum over speech packets of `127 + level` (louder is bigger).
    pub loudness: u32,
}

impl LevelWindow {
    /// Count one forwarded packet's level (`None`: the browser did not send the extension).
    pub fn add(&mut self, level: Option<i8>) {
        let Some(level) = level else {
            return;
        };
        // The extension carries 0..=127 as a negative value; clamp anything else.
        let level = level.clamp(-127, 0);
        if level >= SPEECH_LEVEL {
            self.speech_packets += 1;
            self.loudness += u32::try_from(127 + i32::from(level)).unwrap_or(0);
        }
    }

    fn qualifies(&self) -> bool {
        self.speech_packets >= MIN_SPEECH_PACKETS
    }

    fn rank(&self) -> (u32, u32) {
        (self.speech_packets, self.loudness)
    }
}

/// Decide a room's speaker for one window. `current` is the current speaker's window if they
/// still publish audio here; `candidates` every publisher's window (including the current one).
/// Returns the key of the new speaker, or `None` to keep things as they are.
pub(crate) fn decide<K: PartialEq + Copy>(
    current: Option<K>,
    candidates: &[(K, LevelWindow)],
) -> Option<K> {
    let (best, window) = candidates
        .iter()
        .filter(|(_, w)| w.qualifies())
        .max_by_key(|(_, w)| w.rank())?;
    if current == Some(*best) {
        return None;
    }
    let current_window = current.and_then(|c| candidates.iter().find(|(k, _)| *k == c));
    match current_window {
        Some((_, cur)) if cur.qualifies() => {
            let needed = cur.speech_packets * (100 + SWITCH_MARGIN_PERCENT) / 100;
            (window.speech_packets > needed).then_some(*best)
        }
        _ => Some(*best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(packets: u32, level: i8) -> LevelWindow {
        let mut w = LevelWindow::default();
        for _ in 0..packets {
            w.add(Some(level));
        }
        w
    }

    #[test]
    fn quiet_packets_and_missing_levels_are_not_speech() {
        let mut w = LevelWindow::default();
        w.add(None);
        w.add(Some(-127));
        w.add(Some(SPEECH_LEVEL - 1));
        assert_eq!(w.speech_packets, 0);
        w.add(Some(SPEECH_LEVEL));
        w.add(Some(100)); // out of range: clamped to 0 dBov
        assert_eq!(w.speech_packets, 2);
        assert_eq!(w.loudness, (127 - 50) + 127);
    }

    #[test]
    fn the_one_who_speaks_most_is_chosen_and_a_short_sound_is_not() {
        let none: Option<u8> = None;
        assert_eq!(decide(none, &[(1, window(4, -10))]), None, "too short");
        assert_eq!(
            decide(none, &[(1, window(6, -30)), (2, window(12, -40))]),
            Some(2)
        );
        // Same amount of speech: the louder one.
        assert_eq!(
            decide(none, &[(1, window(10, -30)), (2, window(10, -20))]),
            Some(2)
        );
    }

    #[test]
    fn the_current_speaker_is_kept_unless_clearly_outspoken() {
        let cur = Some(1u8);
        // Silence everywhere: keep the last speaker.
        assert_eq!(
            decide(cur, &[(1, window(0, -127)), (2, window(0, -127))]),
            None
        );
        // Both talking, the other a little more: no flicker.
        assert_eq!(
            decide(cur, &[(1, window(10, -30)), (2, window(14, -30))]),
            None
        );
        // The other clearly more.
        assert_eq!(
            decide(cur, &[(1, window(6, -30)), (2, window(18, -30))]),
            Some(2)
        );
        // The current one stopped talking.
        assert_eq!(
            decide(cur, &[(1, window(2, -30)), (2, window(6, -30))]),
            Some(2)
        );
        // The current speaker is gone (not among the candidates).
        assert_eq!(decide(cur, &[(2, window(6, -30))]), Some(2));
    }
}
