//! A lenient view of a WebM file cut off while being written, for the demuxer.
//!
//! libwebm writes each cluster with an unknown size (an 8-byte all-ones size field) and
//! patches it when the cluster ends; a file cut off mid-recording ends with such a cluster.
//! `matroska-demuxer` understands only the 1-byte unknown size, and reads the 8-byte one as a
//! size of 2^56. [`Lenient`] finds unknown-size clusters by walking the file's elements and
//! presents each one's size field as the cluster's real extent (up to the next element that
//! cannot be inside a cluster, or up to the last complete child), same bytes otherwise.
//!
//! It also hides the seek head (as a Void element of the same length): in a file cut off
//! during finalization it may point past the end, and the demuxer then refuses the whole
//! file; without it the demuxer finds the top-level elements by walking them.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const SEEK_HEAD: u32 = 0x114D_9B74;
const VOID: u8 = 0xEC;
/// Elements that may be children of a cluster: Timestamp, SilentTracks, Position, PrevSize,
/// SimpleBlock, BlockGroup, EncryptedBlock, Void, CRC-32.
const CLUSTER_CHILDREN: [u32; 9] = [0xE7, 0x5854, 0xA7, 0xAB, 0xA3, 0xA0, 0xAF, 0xEC, 0xBF];

/// An element header: id, size (`None`: unknown), where the size field is and its length,
/// where the data starts.
struct Header {
    id: u32,
    size: Option<u64>,
    size_at: u64,
    size_len: usize,
    data_at: u64,
}

fn read_header(r: &mut BufReader<File>, at: u64) -> io::Result<Header> {
    r.seek(SeekFrom::Start(at))?;
    let mut first = [0u8; 1];
    r.read_exact(&mut first)?;
    let id_len = first[0].leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad element id"));
    }
    let mut id = u32::from(first[0]);
    for _ in 1..id_len {
        r.read_exact(&mut first)?;
        id = (id << 8) | u32::from(first[0]);
    }
    let size_at = at + id_len as u64;
    r.read_exact(&mut first)?;
    let size_len = first[0].leading_zeros() as usize + 1;
    if size_len > 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad element size",
        ));
    }
    // The value bits of the first byte (none when the size takes 8 bytes).
    let mask = (0xFFu16 >> size_len) as u8;
    let mut value = u64::from(first[0] & mask);
    let mut all_ones = first[0] & mask == mask;
    for _ in 1..size_len {
        r.read_exact(&mut first)?;
        value = (value << 8) | u64::from(first[0]);
        all_ones &= first[0] == 0xFF;
    }
    Ok(Header {
        id,
        size: (!all_ones).then_some(value),
        size_at,
        size_len,
        data_at: size_at + size_len as u64,
    })
}

/// Encodes `value` as an EBML size field of `len` bytes, when it fits.
fn encode_size(value: u64, len: usize) -> Option<Vec<u8>> {
    if !(1..=8).contains(&len) {
        return None;
    }
    let bits = 7 * len as u32;
    if bits < 64 && value >= (1u64 << bits) - 1 {
        return None;
    }
    let marked = value | (1u64 << bits.min(63));
    Some(marked.to_be_bytes()[8 - len..].to_vec())
}

/// The end of an unknown-size cluster whose data starts at `data_at`.
fn cluster_end(r: &mut BufReader<File>, data_at: u64, file_len: u64) -> u64 {
    let mut at = data_at;
    while let Ok(child) = read_header(r, at) {
        let Some(size) = child.size else { break };
        let end = child.data_at.saturating_add(size);
        if !CLUSTER_CHILDREN.contains(&child.id) || end > file_len {
            break;
        }
        at = end;
    }
    at
}

/// Size-field patches (offset, bytes) for every unknown-size cluster of the file.
fn find_patches(r: &mut BufReader<File>, file_len: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let ebml = read_header(r, 0)?;
    let (EBML, Some(ebml_size)) = (ebml.id, ebml.size) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an EBML file",
        ));
    };
    let segment = read_header(r, ebml.data_at + ebml_size)?;
    if segment.id != SEGMENT {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no segment"));
    }
    let mut patches = Vec::new();
    let mut at = segment.data_at;
    while let Ok(element) = read_header(r, at) {
        match (element.id, element.size) {
            (SEEK_HEAD, Some(size)) => {
                // Void header: its id, then a size field 3 bytes longer than the seek head's.
                if let Some(size_field) = encode_size(size, element.size_len + 3) {
                    let mut bytes = vec![VOID];
                    bytes.extend(size_field);
                    patches.push((at, bytes));
                }
                at = element.data_at.saturating_add(size);
            }
            (_, Some(size)) => at = element.data_at.saturating_add(size),
            (CLUSTER, None) => {
                let end = cluster_end(r, element.data_at, file_len);
                if let Some(bytes) = encode_size(end - element.data_at, element.size_len) {
                    patches.push((element.size_at, bytes));
                }
                at = end;
            }
            (_, None) => break,
        }
        if at >= file_len {
            break;
        }
    }
    Ok(patches)
}

/// The file, read through with its unknown cluster sizes patched (see the module docs).
#[derive(Debug)]
pub(crate) struct Lenient {
    inner: BufReader<File>,
    pos: u64,
    len: u64,
    patches: Vec<(u64, Vec<u8>)>,
}

impl Lenient {
    pub(crate) fn open(file: File) -> io::Result<Lenient> {
        let len = file.metadata()?.len();
        let mut inner = BufReader::with_capacity(64 << 10, file);
        let patches = find_patches(&mut inner, len)?;
        inner.seek(SeekFrom::Start(0))?;
        Ok(Lenient {
            inner,
            pos: 0,
            len,
            patches,
        })
    }
}

impl Read for Lenient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (start, end) = (self.pos, self.pos + n as u64);
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= start && p < end {
                    buf[(p - start) as usize] = *b;
                }
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl Seek for Lenient {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        // Relative seeks keep the read buffer (the demuxer seeks for every frame).
        let delta = i64::try_from(i128::from(target) - i128::from(self.pos))
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        self.inner.seek_relative(delta)?;
        self.pos = target;
        Ok(target)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_fields() {
        assert_eq!(encode_size(5, 1), Some(vec![0x85]));
        assert_eq!(encode_size(127, 1), None, "all ones means unknown");
        assert_eq!(
            encode_size(0x5d35, 8),
            Some(vec![0x01, 0, 0, 0, 0, 0, 0x5d, 0x35])
        );
    }
}
