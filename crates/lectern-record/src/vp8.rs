//! VP8 over RTP (RFC 7741): the payload descriptor in front of every packet, and the few bits
//! of the VP8 frame header the recorder needs (keyframe or not, picture size).
//!
//! Every function here reads untrusted bytes and answers `None` when they are too short or
//! malformed; none of them panics.

/// What the payload descriptor of one RTP packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// `S`: the packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// `PID`: the partition the packet's first byte belongs to.
    pub partition_index: u8,
    /// `PictureID`, when present (7 or 15 bits).
    pub picture_id: Option<u16>,
    /// Bytes of descriptor before the VP8 data.
    pub len: usize,
}

impl Descriptor {
    /// The packet starts a VP8 frame (partition 0 begins here).
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }
}

/// Parses the payload descriptor at the front of `payload` (RFC 7741 section 4.2).
/// `None` when the descriptor is truncated.
pub fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_index = first & 0x07;
    let mut len = 1;
    let mut picture_id = None;
    if extended {
        let ext = *payload.get(len)?;
        len += 1;
        let (has_picture_id, has_tl0, has_tid, has_keyidx) = (
            ext & 0x80 != 0,
            ext & 0x40 != 0,
            ext & 0x20 != 0,
            ext & 0x10 != 0,
        );
        if has_picture_id {
            let b = *payload.get(len)?;
            len += 1;
            if b & 0x80 != 0 {
                let low = *payload.get(len)?;
                len += 1;
                picture_id = Some((u16::from(b & 0x7f) << 8) | u16::from(low));
            } else {
                picture_id = Some(u16::from(b));
            }
        }
        if has_tl0 {
            payload.get(len)?;
            len += 1;
        }
        if has_tid || has_keyidx {
            payload.get(len)?;
            len += 1;
        }
    }
    Some(Descriptor {
        start_of_partition,
        partition_index,
        picture_id,
        len,
    })
}

/// Whether a VP8 frame whose first bytes are `frame` is a keyframe (the `P` bit of the frame
/// tag is 0). `None` for an empty frame.
pub fn is_keyframe(frame: &[u8]) -> Option<bool> {
    frame.first().map(|b| b & 0x01 == 0)
}

/// Width and height of a VP8 keyframe (RFC 6386 section 9.1: after the 3-byte frame tag, the
/// start code `9d 01 2a`, then 14-bit width and height with 2 scaling bits each). `None` for
/// an interframe or a malformed header.
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if !is_keyframe(frame)? || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let height = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_descriptor() {
        let d = parse_descriptor(&[0x10, 0xaa]).unwrap();
        assert!(d.starts_frame());
        assert_eq!((d.len, d.picture_id), (1, None));
        let d = parse_descriptor(&[0x00, 0xaa]).unwrap();
        assert!(!d.start_of_partition);
        let d = parse_descriptor(&[0x11]).unwrap();
        assert!(d.start_of_partition && !d.starts_frame());
    }

    #[test]
    fn extended_descriptor_with_every_field() {
        // X, S; I L T K; M + 15-bit picture id; TL0PICIDX; TID/Y/KEYIDX.
        let d = parse_descriptor(&[0x90, 0xf0, 0x81, 0x23, 0x07, 0x40, 0xbb]).unwrap();
        assert_eq!(d.len, 6);
        assert_eq!(d.picture_id, Some(0x0123));
        // 7-bit picture id only.
        let d = parse_descriptor(&[0x90, 0x80, 0x05, 0xbb]).unwrap();
        assert_eq!((d.len, d.picture_id), (3, Some(5)));
        // K alone still takes the TID/KEYIDX byte.
        assert_eq!(parse_descriptor(&[0x80, 0x10, 0x00]).unwrap().len, 3);
    }

    #[test]
    fn truncated_descriptors_are_refused() {
        for bad in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x80, 0x80, 0x80],
            &[0x80, 0x40],
            &[0x80, 0x20],
        ] {
            assert_eq!(parse_descriptor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keyframe_header() {
        // Frame tag with P = 0, start code, 320 x 240 (scaling bits set, ignored).
        let key = [0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x41, 0xf0, 0x40];
        assert_eq!(is_keyframe(&key), Some(true));
        assert_eq!(keyframe_size(&key), Some((320, 240)));
        let inter = [0x51, 0x2a, 0x00];
        assert_eq!(is_keyframe(&inter), Some(false));
        assert_eq!(keyframe_size(&inter), None);
        assert_eq!(keyframe_size(&key[..9]), None);
        assert_eq!(
            keyframe_size(&[0x50, 0, 0, 0x9d, 0x01, 0x2b, 1, 0, 1, 0]),
            None
        );
        assert_eq!(is_keyframe(&[]), None);
    }
}
