//! On-disk framing and record encoding.
//!
//! A frame is `[len u32 LE][crc u32 LE][payload; len]`, where `crc` is CRC-32 (IEEE) over the
//! four length bytes followed by the payload. Covering the length means a flipped length is
//! caught even when the bytes it points at happen to checksum.
//!
//! Segment payloads are records:
//! - entry: `[1][seq u64 LE][id_len u8][id][event_len u8][event][body…]`
//! - done:  `[2][seq u64 LE]`
//!
//! The ids file (`ids.log`) uses the same frames with the raw delivery id as the payload.

use std::io::{self, Read};

/// Bytes before the payload.
pub const HEADER: usize = 8;
/// First bytes of every segment file; lets `open` reject a foreign or half-created file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"AUGINBX1";
/// Upper bound accepted when reading a frame; anything larger is treated as garbage rather
/// than allocated (a torn length field could otherwise ask for 4 GiB).
pub const MAX_FRAME_PAYLOAD: u32 = 64 << 20;

pub const KIND_ENTRY: u8 = 1;
const KIND_DONE: u8 = 2;

fn checksum(len: u32, parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Appends one frame whose payload is the concatenation of `parts` (so the body is copied
/// once, straight into the batch buffer). Returns the frame's total length.
pub fn encode(buf: &mut Vec<u8>, parts: &[&[u8]]) -> usize {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // Callers validate sizes well below u32::MAX before encoding.
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    buf.reserve(HEADER + len);
    buf.extend_from_slice(&len32.to_le_bytes());
    buf.extend_from_slice(&checksum(len32, parts).to_le_bytes());
    for p in parts {
        buf.extend_from_slice(p);
    }
    HEADER + len
}

pub fn encode_entry(buf: &mut Vec<u8>, seq: u64, id: &str, event: &str, body: &[u8]) -> usize {
    // Lengths are validated (<= 255) by `Inbox::append` before the request reaches the writer.
    let id_len = [u8::try_from(id.len()).unwrap_or(u8::MAX)];
    let ev_len = [u8::try_from(event.len()).unwrap_or(u8::MAX)];
    encode(
        buf,
        &[
            &[KIND_ENTRY],
            &seq.to_le_bytes(),
            &id_len,
            id.as_bytes(),
            &ev_len,
            event.as_bytes(),
            body,
        ],
    )
}

pub fn encode_done(buf: &mut Vec<u8>, seq: u64) -> usize {
    encode(buf, &[&[KIND_DONE], &seq.to_le_bytes()])
}

/// A decoded segment record borrowing from the payload buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Entry {
        seq: u64,
        id: &'a str,
        event: &'a str,
        /// Offset of the body within the payload.
        body_at: usize,
    },
    Done {
        seq: u64,
    },
}

pub fn decode(payload: &[u8]) -> Result<Record<'_>, &'static str> {
    let (&kind, rest) = payload.split_first().ok_or("empty record")?;
    let seq_bytes: [u8; 8] = rest
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or("short record")?;
    let seq = u64::from_le_bytes(seq_bytes);
    match kind {
        KIND_DONE if payload.len() == 9 => Ok(Record::Done { seq }),
        KIND_ENTRY => {
            let mut at = 9;
            let field = |at: &mut usize| -> Result<&str, &'static str> {
                let n = *payload.get(*at).ok_or("short record")? as usize;
                let s = payload.get(*at + 1..*at + 1 + n).ok_or("short record")?;
                *at += 1 + n;
                std::str::from_utf8(s).map_err(|_| "non-utf8 field")
            };
            let id = field(&mut at)?;
            let event = field(&mut at)?;
            Ok(Record::Entry {
                seq,
                id,
                event,
                body_at: at,
            })
        }
        _ => Err("unknown record kind"),
    }
}

/// Result of reading one frame from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadFrame {
    /// A complete, checksummed frame; the payload is in the caller's buffer.
    Frame,
    /// End of data at a frame boundary: end of file, or an all-zero header (the unwritten,
    /// zero-filled rest of a preallocated segment; a real frame never has length 0).
    Eof,
    /// Truncated or corrupt frame starting at the current position.
    Bad(&'static str),
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the next frame into `payload`. I/O errors are returned as errors; everything that
/// looks like a torn or damaged frame is `ReadFrame::Bad`, so callers can decide whether to
/// truncate (tail) or stop (sealed file).
pub fn read_frame<R: Read>(r: &mut R, payload: &mut Vec<u8>) -> io::Result<ReadFrame> {
    let mut header = [0u8; HEADER];
    match read_full(r, &mut header)? {
        0 => return Ok(ReadFrame::Eof),
        HEADER => {}
        _ => return Ok(ReadFrame::Bad("torn frame header")),
    }
    if header == [0u8; HEADER] {
        return Ok(ReadFrame::Eof);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME_PAYLOAD {
        return Ok(ReadFrame::Bad("frame length out of range"));
    }
    payload.clear();
    payload.resize(len as usize, 0);
    if read_full(r, payload)? != len as usize {
        return Ok(ReadFrame::Bad("torn frame payload"));
    }
    if checksum(len, &[payload]) != crc {
        return Ok(ReadFrame::Bad("checksum mismatch"));
    }
    Ok(ReadFrame::Frame)
}

/// Verifies a whole frame held in memory (used by the consumer's positional reads).
pub fn check_frame(frame: &[u8]) -> Result<&[u8], &'static str> {
    let header = frame.get(..HEADER).ok_or("short frame")?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let payload = &frame[HEADER..];
    if payload.len() != len as usize {
        return Err("frame length mismatch");
    }
    if checksum(len, &[payload]) != crc {
        return Err("checksum mismatch");
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_damage_detection() {
        let mut buf = Vec::new();
        let n = encode_entry(&mut buf, 42, "d-1", "push", b"{\"a\":1}");
        assert_eq!(n, buf.len());
        let n2 = encode_done(&mut buf, 42);
        assert_eq!(n + n2, buf.len());

        let mut r = &buf[..];
        let mut p = Vec::new();
        assert_eq!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Frame);
        match decode(&p).unwrap() {
            Record::Entry {
                seq,
                id,
                event,
                body_at,
            } => {
                assert_eq!((seq, id, event), (42, "d-1", "push"));
                assert_eq!(&p[body_at..], b"{\"a\":1}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Frame);
        assert_eq!(decode(&p).unwrap(), Record::Done { seq: 42 });
        assert_eq!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Eof);
        assert!(check_frame(&buf[..n]).is_ok());
        // A zero-filled (preallocated) tail reads as the end.
        let mut zeros = buf.clone();
        zeros.extend_from_slice(&[0; 64]);
        let mut r = &zeros[..];
        for _ in 0..2 {
            assert_eq!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Frame);
        }
        assert_eq!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Eof);

        // Any flipped bit in the first frame is detected.
        for i in 0..n {
            let mut bad = buf[..n].to_vec();
            bad[i] ^= 0x10;
            let mut r = &bad[..];
            assert!(
                matches!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Bad(_)),
                "flip at {i} undetected"
            );
        }
        // Every proper prefix is torn, not valid.
        for cut in 1..n {
            let mut r = &buf[..cut];
            assert!(matches!(read_frame(&mut r, &mut p).unwrap(), ReadFrame::Bad(_)));
        }
    }
}
