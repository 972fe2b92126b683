//! A batch's new objects written as one pack and its index (git's pack format v2, index v2),
//! instead of one loose file per object. On a real disk, creating tens of thousands of small
//! files is what a large batch costs; one pack is two files. No deltas: the objects of a batch
//! are small and distinct, and `git gc` may repack them later.
//!
//! Crash safety: the pack is written under a temporary name, synced, renamed; then the index
//! the same way. Readers (git and gix) only see a pack once its `.idx` exists, so a crash leaves
//! either nothing visible or a complete pack; refs are moved only after this returns.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::objs::Kind;
use gix::zlib::stream::deflate::{Compress, FlushCompress};
use gix::zlib::{Compression, Status};

/// Above this many packs in `objects/pack`, batches go back to loose objects: gix's object
/// store has a bounded number of pack slots per process, and `git gc` is overdue anyway.
pub(crate) const MAX_PACKS: usize = 256;

/// Number of `*.idx` files in `objects/pack` (0 if the folder is missing).
pub(crate) fn pack_count(objects_dir: &Path) -> usize {
    std::fs::read_dir(objects_dir.join("pack"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .count()
        })
        .unwrap_or(0)
}

/// Write `objects` (id, kind, raw data; each id once) as `objects/pack/pack-<checksum>.{pack,idx}`
/// and return the pack's path. The ids are trusted: they come from gix's in-memory object
/// writer, which hashed the same data and keys its store by them.
pub(crate) fn write_pack(
    objects_dir: &Path,
    mut objects: Vec<(ObjectId, Kind, Vec<u8>)>,
) -> io::Result<PathBuf> {
    objects.sort_by_key(|o| o.0);
    let count =
        u32::try_from(objects.len()).map_err(|_| io::Error::other("too many objects for one pack"))?;
    let hash_kind = objects.first().map_or(gix::hash::Kind::Sha1, |o| o.0.kind());

    let mut pack = Vec::with_capacity(12 + objects.iter().map(|o| o.2.len() / 2 + 16).sum::<usize>());
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let mut offsets = Vec::with_capacity(objects.len());
    let mut crcs = Vec::with_capacity(objects.len());
    let mut deflate = Compress::new(Compression::BEST_SPEED);
    for (_, kind, data) in &objects {
        let start = pack.len();
        entry_header(&mut pack, *kind, data.len());
        compress(&mut deflate, data, &mut pack)?;
        offsets.push(start as u64);
        crcs.push(crc32fast::hash(&pack[start..]));
    }
    let pack_sum = checksum(hash_kind, &pack)?;
    pack.extend_from_slice(pack_sum.as_bytes());

    let mut idx = Vec::with_capacity(8 + 1024 + objects.len() * 32 + 64);
    idx.extend_from_slice(&[0xff, b't', b'O', b'c']);
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in &objects {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut running = 0u32;
    for n in fanout {
        running += n;
        idx.extend_from_slice(&running.to_be_bytes());
    }
    for (id, _, _) in &objects {
        idx.extend_from_slice(id.as_bytes());
    }
    for crc in &crcs {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    // Offsets past 2^31 go to a table of 8-byte offsets, referenced with the high bit set.
    let mut large = Vec::new();
    for &offset in &offsets {
        match u32::try_from(offset).ok().filter(|o| o & 0x8000_0000 == 0) {
            Some(small) => idx.extend_from_slice(&small.to_be_bytes()),
            None => {
                let slot = u32::try_from(large.len()).map_err(|_| io::Error::other("pack too large"))?;
                idx.extend_from_slice(&(slot | 0x8000_0000).to_be_bytes());
                large.push(offset);
            }
        }
    }
    for offset in large {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack_sum.as_bytes());
    let idx_sum = checksum(hash_kind, &idx)?;
    idx.extend_from_slice(idx_sum.as_bytes());

    let dir = objects_dir.join("pack");
    std::fs::create_dir_all(&dir)?;
    let name = format!("pack-{}", pack_sum.to_hex());
    let pack_path = dir.join(format!("{name}.pack"));
    publish(&dir, &pack_path, &pack)?;
    publish(&dir, &dir.join(format!("{name}.idx")), &idx)?;
    Ok(pack_path)
}

/// Type and size of one entry: 3 bits of type, then the size in 4 + 7·n bits, low bits first.
fn entry_header(out: &mut Vec<u8>, kind: Kind, size: usize) {
    let code: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut size = size as u64;
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

/// One complete zlib stream of `input`, appended to `out`.
fn compress(deflate: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    deflate.reset();
    let mut rest = input;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
        let status = deflate
            .compress(rest, &mut chunk, FlushCompress::Finish)
            .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
        let produced = (deflate.total_out() - before_out) as usize;
        let consumed = (deflate.total_in() - before_in) as usize;
        out.extend_from_slice(&chunk[..produced]);
        rest = &rest[consumed..];
        match status {
            Status::StreamEnd => return Ok(()),
            _ if produced == 0 && consumed == 0 => return Err(io::Error::other("deflate made no progress")),
            _ => {}
        }
    }
}

fn checksum(kind: gix::hash::Kind, bytes: &[u8]) -> io::Result<ObjectId> {
    let mut hasher = gix::hash::hasher(kind);
    hasher.update(bytes);
    hasher
        .try_finalize()
        .map_err(|e| io::Error::other(format!("checksum: {e}")))
}

/// Write `bytes` to a temporary file in `dir`, sync it, and rename it to `path`.
fn publish(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("tmp_pack_{}_{}", std::process::id(), fastrand::u64(..)));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_headers_follow_the_pack_format() {
        let mut out = Vec::new();
        entry_header(&mut out, Kind::Blob, 5);
        assert_eq!(out, [0x35]);
        out.clear();
        // 300 = 0b1_0010_1100: low nibble 0xc, then 0b1_0010 = 18.
        entry_header(&mut out, Kind::Commit, 300);
        assert_eq!(out, [0x80 | 0x10 | 0x0c, 18]);
        out.clear();
        entry_header(&mut out, Kind::Tree, 16);
        assert_eq!(out, [0x80 | 0x20, 1]);
    }

    #[test]
    fn git_reads_and_verifies_a_written_pack() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        git(&["init", "-q", "--bare", "."]);
        let mut objects = Vec::new();
        for i in 0..300 {
            let data = format!("line {i}\n").repeat(i % 7 + 1).into_bytes();
            let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Blob, &data).unwrap();
            objects.push((id, Kind::Blob, data));
        }
        // One large object, so some sizes need several header bytes and chunks.
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let big_id = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Blob, &big).unwrap();
        objects.push((big_id, Kind::Blob, big.clone()));
        let expected = objects.clone();
        let pack = write_pack(&dir.path().join("objects"), objects).unwrap();
        let idx = pack.with_extension("idx");
        git(&["verify-pack", idx.to_str().unwrap()]);
        for (id, _, data) in expected.iter().step_by(37) {
            let shown = std::process::Command::new("git")
                .args(["cat-file", "blob", &id.to_hex().to_string()])
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert_eq!(&shown.stdout, data);
        }
        assert_eq!(pack_count(&dir.path().join("objects")), 1);
        // No temporary files left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("pack-")), "{names:?}");
    }
}
