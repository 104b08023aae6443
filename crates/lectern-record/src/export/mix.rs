//! Mixing voices on the recording clock: each voice's decoded samples are placed at their
//! time ([`Voice`]), summed frame by frame ([`mix_frame`]) and soft-clipped ([`soft_clip`]).
//! Pure arithmetic on 48 kHz mono samples in [-1, 1]; the Opus work is in `audio`.

use std::collections::VecDeque;

/// Below this level a sample passes unchanged; above it the mix is bent smoothly towards 1.
pub(crate) const CLIP_KNEE: f32 = 0.8;

/// One voice's decoded samples not yet mixed, placed on the clock (sample positions at 48 kHz).
#[derive(Debug, Default)]
pub(crate) struct Voice {
    /// Position of `samples[0]`.
    start: u64,
    samples: VecDeque<f32>,
}

impl Voice {
    /// The position just after the last sample placed (or the start, when empty).
    pub(crate) fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }

    /// Places `pcm` at `pos`: after the end, the space between is silence; over samples
    /// already placed (a time jump backwards), the two are summed; before what was already
    /// mixed, it is dropped.
    pub(crate) fn put(&mut self, pos: u64, pcm: &[f32]) {
        if self.samples.is_empty() && pos > self.start {
            self.start = pos;
        }
        let skip = usize::try_from(self.start.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(pcm.len());
        let (pos, pcm) = (pos + skip as u64, &pcm[skip..]);
        if pcm.is_empty() {
            return;
        }
        let end = self.end();
        if pos > end {
            self.samples
                .extend(std::iter::repeat_n(0.0, (pos - end) as usize));
        }
        let overlap_at = (pos - self.start) as usize;
        let overlap = self.samples.len().saturating_sub(overlap_at).min(pcm.len());
        for (i, s) in pcm[..overlap].iter().enumerate() {
            self.samples[overlap_at + i] += s;
        }
        self.samples.extend(&pcm[overlap..]);
    }

    /// Adds this voice's samples for `[pos, pos + out.len())` into `out`, and forgets every
    /// sample before the end of that span.
    pub(crate) fn mix_into(&mut self, pos: u64, out: &mut [f32]) {
        let end = pos + out.len() as u64;
        // Samples before `pos` were never asked for (a voice placed late): drop them.
        let stale = usize::try_from(pos.saturating_sub(self.start))
            .unwrap_or(usize::MAX)
            .min(self.samples.len());
        self.samples.drain(..stale);
        self.start = self.start.max(pos);
        if self.start < end {
            let at = (self.start - pos) as usize;
            let n = self.samples.len().min(out.len() - at);
            for (o, s) in out[at..at + n].iter_mut().zip(self.samples.drain(..n)) {
                *o += s;
            }
            self.start += n as u64;
            if self.samples.is_empty() {
                self.start = self.start.max(end);
            }
        }
    }
}

/// Sums every voice's samples for `[pos, pos + out.len())` into `out` (cleared first), then
/// soft-clips the sum.
pub(crate) fn mix_frame<'a>(
    voices: impl Iterator<Item = &'a mut Voice>,
    pos: u64,
    out: &mut [f32],
) {
    out.fill(0.0);
    for voice in voices {
        voice.mix_into(pos, out);
    }
    for s in out.iter_mut() {
        *s = soft_clip(*s);
    }
}

/// Identity up to [`CLIP_KNEE`], then a tanh curve with the same slope at the knee that never
/// reaches 1: loud overlapping voices are compressed instead of wrapping or clipping hard.
pub(crate) fn soft_clip(x: f32) -> f32 {
    let a = x.abs();
    if a <= CLIP_KNEE || a.is_nan() {
        return if a.is_nan() { 0.0 } else { x };
    }
    let room = 1.0 - CLIP_KNEE;
    (CLIP_KNEE + room * ((a - CLIP_KNEE) / room).tanh()).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixed(voices: &mut [Voice], pos: u64, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; len];
        mix_frame(voices.iter_mut(), pos, &mut out);
        out
    }

    #[test]
    fn voices_sum_at_their_place_on_the_clock() {
        let mut a = Voice::default();
        let mut b = Voice::default();
        a.put(2, &[0.1, 0.1, 0.1]);
        b.put(3, &[0.2, 0.2]);
        let mut voices = [a, b];
        let out = mixed(&mut voices, 0, 4);
        let want = [0.0, 0.0, 0.1, 0.3];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
        // What was mixed is gone; the rest comes in the next frame.
        let out = mixed(&mut voices, 4, 4);
        assert!(
            (out[0] - 0.3).abs() < 1e-6 && out[1..] == [0.0; 3],
            "{out:?}"
        );
        assert_eq!(voices[0].end(), 8);
    }

    #[test]
    fn a_late_packet_leaves_silence_and_a_jump_back_overlaps() {
        let mut v = Voice::default();
        v.put(100, &[0.5; 4]);
        v.put(106, &[0.25; 2]);
        assert_eq!(v.end(), 108);
        // Backwards by two samples: summed over what was there.
        v.put(106, &[0.25; 3]);
        let mut out = [0.0; 10];
        v.mix_into(100, &mut out);
        assert_eq!(out, [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5, 0.25, 0.0]);
    }

    #[test]
    fn samples_before_the_mix_position_are_dropped() {
        let mut v = Voice::default();
        v.put(0, &[1.0; 10]);
        let mut out = [0.0; 4];
        v.mix_into(8, &mut out);
        assert_eq!(out, [1.0, 1.0, 0.0, 0.0]);
        // Placing something before what was mixed keeps only the part after it.
        v.put(10, &[0.5; 4]);
        v.put(9, &[0.25; 3]);
        let mut out = [0.0; 4];
        v.mix_into(12, &mut out);
        assert_eq!(out, [0.5, 0.5, 0.0, 0.0]);
    }

    #[test]
    fn soft_clipping_is_smooth_bounded_and_odd() {
        assert_eq!(soft_clip(0.5), 0.5);
        assert_eq!(soft_clip(-CLIP_KNEE), -CLIP_KNEE);
        assert_eq!(soft_clip(f32::NAN), 0.0);
        let mut last = 0.0;
        for i in 0..=4000 {
            let x = i as f32 / 1000.0;
            let y = soft_clip(x);
            assert!(y >= last && y < 1.0 + f32::EPSILON, "{x} -> {y}");
            assert_eq!(soft_clip(-x), -y);
            last = y;
        }
        // Continuous at the knee, and loud sums end close to full scale, never beyond.
        assert!((soft_clip(CLIP_KNEE + 1e-4) - CLIP_KNEE).abs() < 2e-4);
        assert!(soft_clip(1.6) > 0.99 && soft_clip(1e9) <= 1.0);
    }

    #[test]
    fn two_loud_voices_are_clipped_softly() {
        let mut a = Voice::default();
        let mut b = Voice::default();
        a.put(0, &[0.7; 4]);
        b.put(0, &[0.7; 4]);
        let out = mixed(&mut [a, b], 0, 4);
        assert!(out.iter().all(|s| *s > 0.9 && *s < 1.0), "{out:?}");
    }
}
