//! Generated media payloads that receivers can check.
//!
//! Every packet ends with a [`TRAILER_LEN`]-byte trailer: magic `LBOT`, frame number, packet
//! index within the frame and packet count, the send time (µs since the Unix epoch, read from
//! the sender's wall clock: bots on one machine share it) and a keyframe flag. The bytes
//! between the codec prefix and the trailer follow a pattern derived from frame and index, so
//! a receiver checks every byte.
//!
//! Video payloads start like VP8 (RFC 7741) so the SFU's keyframe gating works: a one-byte
//! payload descriptor with the S bit on a frame's first packet, then on that packet the VP8
//! frame tag (inverse keyframe bit clear on keyframes) and, on keyframes, the start code and a
//! 320x240 size. Audio payloads start with an Opus TOC byte (CELT, 20 ms, mono).

/// Bytes of the trailer at the end of every payload.
pub const TRAILER_LEN: usize = 4 + 4 + 2 + 2 + 8 + 1;
const MAGIC: &[u8; 4] = b"LBOT";
/// VP8 payload descriptor: S bit (start of partition), partition 0, no extensions.
const VP8_START: u8 = 0x10;
/// Opus TOC: config 31 (CELT FB 20 ms), mono, one frame.
const OPUS_TOC: u8 = 0xF8;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    pub frame: u32,
    pub index: u16,
    pub count: u16,
    pub sent_us: u64,
    pub keyframe: bool,
}

/// Why a payload failed its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFault {
    TooShort,
    BadMagic,
    /// The codec prefix does not match the trailer (descriptor, frame tag or TOC).
    BadPrefix,
    /// A filler byte differs from the pattern.
    Corrupt,
}

/// The codec prefix of a video packet: descriptor, and on a frame's first packet the frame tag.
fn vp8_prefix(info: &PacketInfo) -> Vec<u8> {
    if info.index != 0 {
        return vec![0x00];
    }
    // Frame tag (3 bytes, little-endian): bit 0 is the *inverse* keyframe flag, bits 1-3 the
    // version, bit 4 show_frame; the first partition size is left 0.
    let tag0 = if info.keyframe { 0x10 } else { 0x11 };
    let mut p = vec![VP8_START, tag0, 0x00, 0x00];
    if info.keyframe {
        // Start code and 320x240 (14-bit sizes, no scaling).
        p.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
    }
    p
}

fn fill(frame: u32, index: u16, i: usize) -> u8 {
    (frame as u8)
        .wrapping_mul(31)
        .wrapping_add(index as u8)
        .wrapping_add(i as u8)
}

/// Build one payload of `size` bytes (at least prefix + trailer).
pub fn build(video: bool, info: &PacketInfo, size: usize) -> Vec<u8> {
    let prefix = if video {
        vp8_prefix(info)
    } else {
        vec![OPUS_TOC]
    };
    let size = size.max(prefix.len() + TRAILER_LEN);
    let mut p = Vec::with_capacity(size);
    p.extend_from_slice(&prefix);
    let body = size - prefix.len() - TRAILER_LEN;
    p.extend((0..body).map(|i| fill(info.frame, info.index, i)));
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&info.frame.to_be_bytes());
    p.extend_from_slice(&info.index.to_be_bytes());
    p.extend_from_slice(&info.count.to_be_bytes());
    p.extend_from_slice(&info.sent_us.to_be_bytes());
    p.push(u8::from(info.keyframe));
    p
}

/// Check a received payload byte for byte and return what it carries.
pub fn check(video: bool, payload: &[u8]) -> Result<PacketInfo, PayloadFault> {
    if payload.len() < TRAILER_LEN + 1 {
        return Err(PayloadFault::TooShort);
    }
    let (head, trailer) = payload.split_at(payload.len() - TRAILER_LEN);
    if &trailer[..4] != MAGIC {
        return Err(PayloadFault::BadMagic);
    }
    let be =
        |r: std::ops::Range<usize>| trailer[r].iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
    let info = PacketInfo {
        frame: be(4..8) as u32,
        index: be(8..10) as u16,
        count: be(10..12) as u16,
        sent_us: be(12..20),
        keyframe: trailer[20] == 1,
    };
    let prefix = if video {
        vp8_prefix(&info)
    } else {
        vec![OPUS_TOC]
    };
    if !head.starts_with(&prefix) || trailer[20] > 1 || info.index >= info.count {
        return Err(PayloadFault::BadPrefix);
    }
    let body = &head[prefix.len()..];
    if body
        .iter()
        .enumerate()
        .any(|(i, &b)| b != fill(info.frame, info.index, i))
    {
        return Err(PayloadFault::Corrupt);
    }
    Ok(info)
}

/// Whether a video payload starts a VP8 keyframe, read the way an SFU reads it (descriptor S
/// bit, partition 0, then the frame tag's inverse keyframe bit), independently of the trailer.
pub fn starts_vp8_keyframe(payload: &[u8]) -> bool {
    let Some(&d) = payload.first() else {
        return false;
    };
    if d & 0x10 == 0 || d & 0x07 != 0 {
        return false;
    }
    // Skip the optional extension bytes (X bit) to reach the VP8 payload header.
    let mut offset = 1;
    if d & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        offset += 1;
        if x & 0x80 != 0 {
            offset += if payload.get(offset).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        offset += usize::from(x & 0x40 != 0) + usize::from(x & 0x30 != 0);
    }
    payload.get(offset).is_some_and(|h| h & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(index: u16, keyframe: bool) -> PacketInfo {
        PacketInfo {
            frame: 77,
            index,
            count: 3,
            sent_us: 1_700_000_000_000_000,
            keyframe,
        }
    }

    #[test]
    fn payloads_round_trip_and_look_like_their_codec() {
        for (video, index, keyframe) in [
            (true, 0, true),
            (true, 1, true),
            (true, 0, false),
            (false, 0, false),
        ] {
            let i = info(index, keyframe);
            let p = build(video, &i, 1000);
            assert_eq!(p.len(), 1000);
            assert_eq!(check(video, &p), Ok(i));
            assert_eq!(
                video && starts_vp8_keyframe(&p),
                video && index == 0 && keyframe,
                "{video} {index} {keyframe}"
            );
        }
    }

    #[test]
    fn any_changed_byte_is_caught() {
        let p = build(true, &info(0, true), 600);
        for at in 0..p.len() {
            let mut q = p.clone();
            q[at] ^= 0x40;
            assert!(
                check(true, &q).is_err() || check(true, &q) != Ok(info(0, true)),
                "{at}"
            );
        }
        assert_eq!(check(true, &p[..10]), Err(PayloadFault::TooShort));
        assert_eq!(check(false, &p), Err(PayloadFault::BadPrefix));
    }
}
