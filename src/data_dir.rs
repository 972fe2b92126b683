//! One process at a time works over a data dir: the desired releases, the inbox and the
//! catch-up's progress live there, and two release loops over them would each act on releases
//! the other also holds. `auger serve` and the CLI commands that run the release loop
//! in-process take the same exclusive lock, without waiting. The small files kept there are
//! replaced whole with [`write_atomically`].

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` so that a crash leaves the old or the new file, never a half:
/// written aside, synced, renamed over it, and the folder synced. The folder is made if missing.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "auger.lock";

/// Held for as long as the process works over the data dir; released when dropped (or when
/// the process ends, however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (a running `auger serve`, or a release command) holds the lock.
    #[error("the data dir {} is in use by another auger process (a running `auger serve`?)", .dir.display())]
    InUse { dir: PathBuf },
    #[error("cannot lock the data dir {}: {source}", .dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the data dir's lock, creating the folder and the lock file as needed; refuses at
/// once if another process holds it.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let io = |source| LockError::Io {
        dir: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    // The message names the folder absolutely: the config's relative path says little to
    // someone reading it elsewhere.
    let data_dir = &data_dir.canonicalize().map_err(io)?;
    // Opened close-on-exec (std's default): git subprocesses must not inherit the lock and
    // keep it after auger has gone.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(LOCK_FILE))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::InUse {
            dir: data_dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = lock(&data).unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts
        // exactly as another process would.
        match lock(&data) {
            Err(LockError::InUse { dir }) => assert_eq!(dir, data.canonicalize().unwrap()),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        assert!(lock(&data).is_ok());
    }
}
