//! WebM/Matroska as browsers stream it: Chromium's MediaRecorder writes
//! the Segment and every Cluster with an *unknown* size (all ones) and no
//! Duration, which symphonia's Matroska demuxer does not follow (it reads
//! an unknown-size Cluster as empty and drops its blocks).
//!
//! [`with_known_sizes`] rewrites such a file with the sizes filled in (a
//! Cluster ends where the next top-level element starts); SeekHead and Cues
//! are dropped, their offsets would no longer hold. A file cut short (an
//! upload that stopped) gets the same treatment: its last Cluster ends
//! where the data ends, so the demuxer reads what is there and the decoder
//! reports it as truncated against the declared Duration. A pure function on the
//! bytes of an upload, already capped in size: every read is bounds-checked
//! and the output is at most a few bytes per element longer than the input.

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const SEEK_HEAD: u32 = 0x114D_9B74;
const CUES: u32 = 0x1C53_BB6B;
/// The top-level (Segment child) elements: one of these ends a Cluster of
/// unknown size.
const TOP_LEVEL: [u32; 8] = [
    SEEK_HEAD,
    0x1549_A966, // Info
    0x1654_AE6B, // Tracks
    CLUSTER,
    CUES,
    0x1043_A770, // Chapters
    0x1941_A469, // Attachments
    0x1254_C367, // Tags
];

/// An element header: id, where its data starts, its size (`None`: unknown).
struct Header {
    id: u32,
    data: usize,
    size: Option<u64>,
}

/// Reads the element header at `i`, or `None` if it is cut off or invalid.
fn header(b: &[u8], i: usize) -> Option<Header> {
    let first = *b.get(i)?;
    let il = first.leading_zeros() as usize + 1;
    if il > 4 {
        return None;
    }
    let id = b
        .get(i..i + il)?
        .iter()
        .fold(0u32, |a, x| (a << 8) | u32::from(*x));
    let s0 = *b.get(i + il)?;
    let sl = s0.leading_zeros() as usize + 1;
    if sl > 8 {
        return None;
    }
    let mut size = u64::from(s0) & (0xff >> sl);
    for x in b.get(i + il + 1..i + il + sl)? {
        size = (size << 8) | u64::from(*x);
    }
    let unknown = size == (1u64 << (7 * sl)) - 1;
    Some(Header {
        id,
        data: i + il + sl,
        size: (!unknown).then_some(size),
    })
}

/// The id bytes of `id` followed by `size` as an 8-byte EBML size.
fn put(out: &mut Vec<u8>, id: u32, size: usize) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|x| **x == 0).count();
    out.extend_from_slice(&bytes[skip..]);
    out.push(0x01);
    out.extend_from_slice(&(size as u64).to_be_bytes()[1..]);
}

/// Where a Cluster of unknown size whose data starts at `i` ends: at the
/// next top-level element, or at the last child complete before `end`.
fn cluster_end(b: &[u8], mut i: usize, end: usize) -> Option<usize> {
    while i < end {
        // Cut off (or garbage) here: the Cluster ends before it.
        let Some(h) = header(b, i) else {
            return Some(i);
        };
        if TOP_LEVEL.contains(&h.id) || h.id == EBML {
            return Some(i);
        }
        // A child of unknown size cannot be followed.
        let size = usize::try_from(h.size?).ok()?;
        match h.data.checked_add(size) {
            Some(next) if next <= end => i = next,
            // Cut off in this child: the Cluster ends before it.
            _ => return Some(i),
        }
    }
    Some(end)
}

/// The file with every unknown (or past-the-end) Segment/Cluster size
/// filled in, or `None` when it has none (or is not Matroska, or cannot be followed: then the
/// demuxer sees the original and reports what is wrong).
pub fn with_known_sizes(b: &[u8]) -> Option<Vec<u8>> {
    let ebml = header(b, 0)?;
    if ebml.id != EBML {
        return None;
    }
    let seg_at = ebml.data.checked_add(usize::try_from(ebml.size?).ok()?)?;
    let seg = header(b, seg_at)?;
    if seg.id != SEGMENT {
        return None;
    }
    let declared_end = seg
        .size
        .and_then(|s| usize::try_from(s).ok())
        .and_then(|s| seg.data.checked_add(s));
    let seg_end = declared_end.map_or(b.len(), |e| e.min(b.len()));
    let mut changed = declared_end.is_none_or(|e| e > b.len());
    let mut body = Vec::with_capacity(b.len() + 64);
    let mut i = seg.data;
    while i < seg_end {
        let Some(h) = header(b, i) else { break };
        let end = match h.size {
            Some(s) => match usize::try_from(s).ok().and_then(|s| h.data.checked_add(s)) {
                Some(e) if e <= seg_end => e,
                // Cut short: a Cluster keeps what is there, anything else
                // is dropped.
                _ if h.id == CLUSTER => {
                    changed = true;
                    cluster_end(b, h.data, seg_end)?
                }
                _ => {
                    changed = true;
                    break;
                }
            },
            None if h.id == CLUSTER => {
                changed = true;
                cluster_end(b, h.data, seg_end)?
            }
            None => return None,
        };
        match h.id {
            SEEK_HEAD | CUES => {}
            CLUSTER => {
                put(&mut body, CLUSTER, end - h.data);
                body.extend_from_slice(&b[h.data..end]);
            }
            _ => body.extend_from_slice(&b[i..end]),
        }
        i = end;
    }
    if !changed {
        return None;
    }
    let mut out = Vec::with_capacity(seg_at + 12 + body.len());
    out.extend_from_slice(&b[..seg_at]);
    put(&mut out, SEGMENT, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EBML header (DocType webm), then a Segment of `seg` size bytes.
    fn file(seg: &[u8], children: &[u8]) -> Vec<u8> {
        let mut f = vec![0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84];
        f.extend_from_slice(b"webm");
        f.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
        f.extend_from_slice(seg);
        f.extend_from_slice(children);
        f
    }

    /// Not Matroska, cut headers, and files with nothing unknown are left
    /// alone; an unknown-size element other than a Cluster is not followed.
    #[test]
    fn leaves_alone_what_it_cannot_or_need_not_fix() {
        assert!(with_known_sizes(b"").is_none());
        assert!(with_known_sizes(b"OggS\0\x02").is_none());
        let known = file(&[0x80 | 5], &[0x1F, 0x43, 0xB6, 0x75, 0x80]);
        assert!(with_known_sizes(&known).is_none());
        // Cut before the Segment's data: nothing to fix; after: the
        // Segment's size is made to match what is there.
        for cut in 0..known.len() {
            match with_known_sizes(&known[..cut]) {
                None => assert!(cut < 17, "{cut}"),
                Some(g) => {
                    let seg = header(&g, 12).unwrap();
                    assert_eq!(seg.size, Some((g.len() - seg.data) as u64), "{cut}");
                }
            }
        }
        // Tags of unknown size.
        let tags = file(&[0xFF], &[0x12, 0x54, 0xC3, 0x67, 0xFF, 0x80]);
        assert!(with_known_sizes(&tags).is_none());
        // A header with an invalid 0x00 size byte.
        assert!(with_known_sizes(&file(&[0x00], &[])).is_none());
    }

    /// Two Clusters of unknown size (8-byte and 1-byte forms) in a Segment
    /// of unknown size get their real sizes; Cues are dropped.
    #[test]
    fn fills_in_unknown_cluster_sizes() {
        let mut children = vec![
            0x1F, 0x43, 0xB6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        children.extend_from_slice(&[0xE7, 0x81, 0x00, 0xA3, 0x82, 0xAA, 0xBB]);
        children.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75, 0xFF]);
        children.extend_from_slice(&[0xE7, 0x81, 0x14]);
        children.extend_from_slice(&[0x1C, 0x53, 0xBB, 0x6B, 0x80]);
        let f = file(&[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &children);
        let g = with_known_sizes(&f).unwrap();
        let seg = header(&g, 12).unwrap();
        assert_eq!(
            (seg.id, seg.size),
            (SEGMENT, Some((g.len() - seg.data) as u64))
        );
        let c1 = header(&g, seg.data).unwrap();
        assert_eq!((c1.id, c1.size), (CLUSTER, Some(7)));
        let c2 = header(&g, c1.data + 7).unwrap();
        assert_eq!((c2.id, c2.size), (CLUSTER, Some(3)));
        assert_eq!(&g[c2.data..], &[0xE7, 0x81, 0x14]);
        // A Cluster whose last block is cut ends at the end of the file.
        let cut = &f[..f.len() - 12];
        let g = with_known_sizes(cut).unwrap();
        assert!(g.len() < cut.len() + 16);
    }
}
