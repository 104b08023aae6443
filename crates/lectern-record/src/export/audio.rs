//! Every voice, mixed: each audio segment decoded (Opus, through `ropus`, a port of libopus;
//! stereo is folded to mono by the decoder), placed on the recording clock, summed and
//! soft-clipped ([`super::mix`]), and re-encoded as one mono Opus stream of 20 ms packets.
//!
//! Streaming: a segment is opened when the mix reaches its offset and dropped once played,
//! and each voice is decoded only a packet ahead of the mix, so memory stays flat however long
//! the class.
//!
//! Placement: a packet's place is its time in the file (whole milliseconds) plus the
//! segment's offset; consecutive packets are laid end to end while their times agree within
//! [`JITTER`] (the file's millisecond rounding). A packet further ahead means packets were
//! lost: up to [`CONCEAL_MAX`] of that is concealed by the decoder, the rest stays silent.
//! A jump backwards (the recorder re-anchored a drifting clock) overlaps and is summed.
//!
//! Encoder delay: Opus output lags its input by the encoder's lookahead. Instead of relying on
//! players to honour a pre-skip, the mix is fed that many samples early, so that decoded sample
//! `i` of the export is mix sample `i` (the first lookahead's worth, 6.5 ms at the very start,
//! is the encoder's warm-up).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use ropus::{Application, Bitrate, Channels, DecodeMode, Decoder, Encoder};
use tracing::warn;

use super::mix::{Voice, mix_frame};
use super::read::SegmentCursor;
use crate::RecordError;
use crate::manifest::Kind;
use crate::opus;

/// Samples per second, everywhere.
pub(crate) const RATE: u64 = 48_000;
/// One output packet: 20 ms.
pub(crate) const FRAME: usize = 960;
/// Packet times that differ this little from the end of the previous packet are contiguous.
const JITTER: u64 = 240;
/// The longest loss concealed by the decoder (longer losses are silence).
const CONCEAL_MAX: u64 = 3 * FRAME as u64;
/// The longest packet Opus has: 120 ms.
const MAX_PACKET: usize = 5_760;

/// An audio segment to mix.
#[derive(Debug, Clone)]
pub(crate) struct AudioInput {
    pub n: u32,
    pub path: PathBuf,
    pub offset_ms: u64,
}

/// What the mix did, for the summary.
#[derive(Debug, Clone, Default)]
pub(crate) struct MixStats {
    pub voices: u32,
    pub packets_in: u64,
    pub undecodable: u64,
    pub concealed_ms: u64,
    pub unreadable: Vec<u32>,
    pub damaged: Vec<u32>,
}

struct Source {
    n: u32,
    cursor: SegmentCursor,
    decoder: Decoder,
    voice: Voice,
    next_pos: Option<u64>,
}

/// The mixer over every audio segment: [`Mixdown::next_frame`] gives the mix of the next
/// 20 ms.
pub(crate) struct Mixdown {
    /// Not opened yet, latest first (popped from the back).
    waiting: Vec<AudioInput>,
    playing: Vec<Source>,
    pcm: Vec<f32>,
    pub stats: MixStats,
}

impl std::fmt::Debug for Mixdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixdown")
            .field("waiting", &self.waiting.len())
            .field("playing", &self.playing.len())
            .finish_non_exhaustive()
    }
}

fn codec_error(what: &str, e: impl std::fmt::Display) -> RecordError {
    RecordError::Codec(format!("{what}: {e}"))
}

impl Mixdown {
    pub(crate) fn new(mut inputs: Vec<AudioInput>) -> Mixdown {
        inputs.sort_by_key(|a| std::cmp::Reverse((a.offset_ms, a.n)));
        Mixdown {
            waiting: inputs,
            playing: Vec::new(),
            pcm: vec![0.0; MAX_PACKET],
            stats: MixStats::default(),
        }
    }

    /// Mixes `[pos, pos + FRAME)` (sample positions on the recording clock) into `out`.
    pub(crate) fn mix(&mut self, pos: u64, out: &mut [f32; FRAME]) -> Result<(), RecordError> {
        let need = pos + FRAME as u64;
        while let Some(input) = self
            .waiting
            .pop_if(|a| a.offset_ms.saturating_mul(RATE / 1000) < need)
        {
            match SegmentCursor::open(&input.path, Kind::Audio, input.offset_ms) {
                Ok(cursor) => {
                    self.stats.voices += 1;
                    self.playing.push(Source {
                        n: input.n,
                        cursor,
                        decoder: Decoder::new(RATE as u32, Channels::Mono)
                            .map_err(|e| codec_error("decoder", e))?,
                        voice: Voice::default(),
                        next_pos: None,
                    });
                }
                Err(e) => {
                    warn!(segment = input.n, reason = %e.0, "audio segment unreadable: left out");
                    self.stats.unreadable.push(input.n);
                }
            }
        }
        for source in &mut self.playing {
            fill(source, need, &mut self.pcm, &mut self.stats)?;
        }
        mix_frame(self.playing.iter_mut().map(|s| &mut s.voice), pos, out);
        let stats = &mut self.stats;
        self.playing.retain_mut(|s| {
            let done = s.voice.end() <= need && s.cursor.peek().is_none();
            if done && s.cursor.damaged() {
                stats.damaged.push(s.n);
            }
            !done
        });
        Ok(())
    }
}

/// Decodes `source` until its voice reaches `need` or it has no packet left before `need`.
fn fill(
    source: &mut Source,
    need: u64,
    pcm: &mut [f32],
    stats: &mut MixStats,
) -> Result<(), RecordError> {
    while source.voice.end() < need {
        let Some(packet) = source.cursor.peek() else {
            return Ok(());
        };
        let nominal = packet.at_us.saturating_mul(RATE) / 1_000_000;
        let place = match source.next_pos {
            Some(next) if nominal.abs_diff(next) <= JITTER => next,
            _ => nominal,
        };
        if place >= need {
            return Ok(());
        }
        // Packets went missing: let the decoder conceal the start of the hole.
        if let Some(next) = source.next_pos
            && place > next
        {
            let frames = (place - next).min(CONCEAL_MAX) / FRAME as u64;
            for i in 0..frames {
                if let Decoded::Samples(n) = decode(&mut source.decoder, &[], &mut pcm[..FRAME]) {
                    source.voice.put(next + i * FRAME as u64, &pcm[..n]);
                    stats.concealed_ms += 20;
                }
            }
        }
        stats.packets_in += 1;
        match decode(&mut source.decoder, packet.data, pcm) {
            Decoded::Samples(n) => {
                source.voice.put(place, &pcm[..n]);
                source.next_pos = Some(place + n as u64);
            }
            failed => {
                stats.undecodable += 1;
                // Skipped: the next packet keeps its own place.
                source.next_pos =
                    opus::packet_duration_us(packet.data).map(|us| place + us * RATE / 1_000_000);
                if failed == Decoded::Panicked {
                    // A decoder that panicked may be in any state: start afresh.
                    source.decoder = Decoder::new(RATE as u32, Channels::Mono)
                        .map_err(|e| codec_error("decoder", e))?;
                }
            }
        }
        source.cursor.advance();
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoded {
    Samples(usize),
    Invalid,
    Panicked,
}

/// Decodes one packet (empty: conceal a lost one), fenced against a panic in the decoder.
fn decode(decoder: &mut Decoder, packet: &[u8], pcm: &mut [f32]) -> Decoded {
    match catch_unwind(AssertUnwindSafe(|| {
        decoder.decode_float(packet, pcm, DecodeMode::Normal)
    })) {
        Ok(Ok(n)) if n <= pcm.len() => Decoded::Samples(n),
        Ok(_) => Decoded::Invalid,
        Err(_) => Decoded::Panicked,
    }
}

/// The export's Opus encoder: mono, 48 kHz, 20 ms packets, constant settings.
pub(crate) struct MixEncoder {
    encoder: Encoder,
    packet: Vec<u8>,
    lookahead: u64,
}

impl std::fmt::Debug for MixEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixEncoder")
            .field("lookahead", &self.lookahead)
            .finish_non_exhaustive()
    }
}

impl MixEncoder {
    pub(crate) fn new(bitrate: u32, complexity: u8) -> Result<MixEncoder, RecordError> {
        let bitrate = Bitrate::try_bits(bitrate).map_err(|e| codec_error("bitrate", e))?;
        let encoder = Encoder::builder(RATE as u32, Channels::Mono, Application::Audio)
            .bitrate(bitrate)
            .complexity(complexity.min(10))
            .dtx(false)
            .build()
            .map_err(|e| codec_error("encoder", e))?;
        let lookahead = u64::from(encoder.lookahead());
        Ok(MixEncoder {
            encoder,
            packet: vec![0; 1500],
            lookahead,
        })
    }

    /// How many samples early the mix must be fed (see the module docs).
    pub(crate) fn lookahead(&self) -> u64 {
        self.lookahead
    }

    pub(crate) fn encode(&mut self, pcm: &[f32; FRAME]) -> Result<&[u8], RecordError> {
        let len = self
            .encoder
            .encode_float(pcm, &mut self.packet)
            .map_err(|e| codec_error("encode", e))?;
        Ok(&self.packet[..len])
    }
}
