//! The little of Opus the recorder reads: the TOC byte of a packet (RFC 6716 section 3.1) for
//! its duration and channel count, and the `OpusHead` codec private of a WebM track (RFC 7845
//! section 5.1). Untrusted bytes in, `None` when malformed; nothing here panics.

/// Duration of one Opus packet in microseconds, from its TOC byte (and frame count byte for
/// code 3). `None` for an empty or malformed packet.
pub fn packet_duration_us(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame_us: u64 = match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
        12..=15 => [10_000, 20_000][usize::from(config % 2)],
        _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3f),
    };
    // A packet holds at most 120 ms of audio.
    let total = frame_us * frames;
    (frames > 0 && total <= 120_000).then_some(total)
}

/// Channel count a packet was coded with (the TOC's stereo flag). `None` for an empty packet.
pub fn channels(packet: &[u8]) -> Option<u8> {
    packet
        .first()
        .map(|toc| if toc & 0x04 != 0 { 2 } else { 1 })
}

/// The `OpusHead` identification header that WebM carries as the codec private of an Opus
/// track: version 1, `channels`, no pre-skip (packets relayed from WebRTC start mid-stream),
/// 48 kHz input rate, no gain, mapping family 0 (mono or stereo).
pub fn opus_head(channels: u8) -> [u8; 19] {
    let mut head = [0u8; 19];
    head[..8].copy_from_slice(b"OpusHead");
    head[8] = 1;
    head[9] = channels;
    // pre-skip (u16 LE) = 0 at 10..12
    head[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    // output gain (i16 LE) = 0 at 16..18, channel mapping family 0 at 18
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_toc() {
        // config 1 (SILK 20 ms), code 0.
        assert_eq!(packet_duration_us(&[1 << 3]), Some(20_000));
        // config 31 (CELT 20 ms), code 1 (two frames).
        assert_eq!(packet_duration_us(&[(31 << 3) | 1]), Some(40_000));
        // config 16 (CELT 2.5 ms), code 3 with 4 frames.
        assert_eq!(packet_duration_us(&[(16 << 3) | 3, 4]), Some(10_000));
        // config 13 (hybrid 20 ms).
        assert_eq!(packet_duration_us(&[13 << 3]), Some(20_000));
        // Code 3 without its count byte, zero frames, or over 120 ms.
        assert_eq!(packet_duration_us(&[3]), None);
        assert_eq!(packet_duration_us(&[3, 0]), None);
        assert_eq!(packet_duration_us(&[(3 << 3) | 3, 3]), None);
        assert_eq!(packet_duration_us(&[]), None);
    }

    #[test]
    fn head_layout() {
        let head = opus_head(2);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!((head[8], head[9]), (1, 2));
        assert_eq!(
            u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
            48_000
        );
        assert_eq!(channels(&[0x04]), Some(2));
        assert_eq!(channels(&[0x00]), Some(1));
    }
}
