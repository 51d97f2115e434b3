//! Reading exports and writing outputs: CSV in, Parquet and CSV out, always atomically.
//!
//! Every output goes to a temporary file in the destination's directory and is renamed over the
//! destination only when complete ([`AtomicFile`]), so a killed job leaves the previous output
//! intact and never a half-written file.

pub mod aggregates;
pub mod clk_files;
pub mod csv_in;
pub mod encodings;
pub mod entities;
pub mod events;
pub mod parquet_in;
pub mod run;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file written under a temporary name and renamed into place by [`AtomicFile::commit`].
/// Dropped without `commit`, it disappears and the destination is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Opens a temporary file beside `dest` (same directory, so the final rename is atomic).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".crosswalk-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The destination path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&dest, e))?;
        self.tmp
            .persist(&dest)
            .map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// Environment variable naming a commit point at which a run pauses for two minutes, so that
/// the crash tests can kill it there: `batches`, `generation` or `current` in a registry run,
/// `run` in a one-off link just before its run directory is swapped in. Read only when
/// crosswalk is built with the test-only feature `test-hooks` (as `cargo test` builds it); a
/// binary built for use ignores it.
pub const PAUSE_ENV: &str = "CROSSWALK_PAUSE";

/// Test hook: pauses for two minutes when [`PAUSE_ENV`] names `point` (feature `test-hooks`
/// only; otherwise it does nothing).
pub fn pause(point: &str) {
    #[cfg(feature = "test-hooks")]
    if std::env::var(PAUSE_ENV).is_ok_and(|v| v == point) {
        eprintln!("crosswalk: paused at {point} ({PAUSE_ENV})");
        std::thread::sleep(std::time::Duration::from_secs(120));
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = point;
}

thread_local! {
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether the current thread is inside [`guard_reader`]: a panic there stands for a damaged
/// file and becomes an error.
pub fn in_guarded_reader() -> bool {
    GUARDED.with(|g| g.get() > 0)
}

/// Whether a panic hook should stay silent for this panic: it happened inside
/// [`guard_reader`] and in the Parquet or Arrow library (a damaged file, reported as an error).
/// A panic of crosswalk's own code is never silenced (the binary's hook and the fuzz targets'
/// use this, so the fuzzer still sees crosswalk's own bugs inside a guard).
pub fn is_damaged_file_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    in_guarded_reader()
        && info.location().is_some_and(|l| {
            let f = l.file();
            ["/parquet-", "/arrow-"].iter().any(|c| f.contains(c))
        })
}

/// Runs `read`, a reader of the file at `path`, turning a panic inside it into an error that
/// names the file (exit code 4). The Parquet library asserts on some damaged files (negative
/// column offsets, found by the `encodings_file` fuzz target) instead of returning an error;
/// every Parquet file crosswalk reads from outside goes through this guard, so no file can
/// crash it.
pub fn guard_reader<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    GUARDED.with(|g| g.set(g.get() + 1));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    GUARDED.with(|g| g.set(g.get() - 1));
    outcome.unwrap_or_else(|_| {
        Err(Error::encoding(
            path,
            "not a readable Parquet file: its structure is damaged (the Parquet reader gave up \
             on it)",
        ))
    })
}

/// Whether `s` is 32 lower-case hex digits: a record key, a batch id.
pub(crate) fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The BLAKE3 digest of a file's bytes, read in a stream (files may be large).
pub fn file_digest(path: &Path) -> Result<blake3::Hash> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = blake3::Hasher::new();
    h.update_reader(file).map_err(|e| Error::io(path, e))?;
    Ok(h.finalize())
}

/// Whether `name` is something a killed crosswalk run may leave in an output directory: a
/// temporary file or staging directory (`.crosswalk-XXXXXX.tmp`), a staging directory that was
/// never locked (`.new`) or an old directory set aside by the two-rename fallback (`.old`).
/// Such entries do not make a directory foreign ([`AtomicDir::create`]); only the `.tmp` ones
/// are ever removed automatically.
pub fn is_crosswalk_leftover(name: &str) -> bool {
    [".tmp", ".new", ".old"].iter().any(|ext| {
        name.strip_prefix(".crosswalk-")
            .and_then(|r| r.strip_suffix(ext))
            .is_some_and(|mid| mid.len() == 6 && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
    })
}

/// Whether `name` is one of crosswalk's temporary files or directories
/// (`.crosswalk-XXXXXX.tmp`, [`AtomicFile`], [`AtomicDir`]): what a killed run may leave.
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(".crosswalk-")
        .and_then(|r| r.strip_suffix(".tmp"))
        .is_some_and(|mid| mid.len() == 6 && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A directory of outputs written under a temporary name beside its destination and swapped in
/// whole by [`AtomicDir::commit`]: readers see the old directory or the new one, never a mix
/// of the two. Dropped without `commit`, the staging directory is removed and the destination
/// is untouched.
///
/// On Linux the swap is one `renameat2(RENAME_EXCHANGE)`; where that is not available (another
/// system, or a file system without it) the old directory is renamed aside and the new one
/// into place, two renames with a moment between them in which the destination is absent (the
/// old one is then still beside it, under a `.crosswalk-` name).
///
/// The staging directory is locked (`flock` on the directory itself) from the moment it gets
/// its `.crosswalk-XXXXXX.tmp` name until the value is dropped; a killed run's staging
/// directory, its lock released by the process's death, is removed by the next `AtomicDir`
/// created beside it, so no copy of a run's files lingers hidden beside the output.
pub struct AtomicDir<'a> {
    staging: PathBuf,
    dest: PathBuf,
    ours: &'a dyn Fn(&str) -> bool,
    committed: bool,
    _lock: std::fs::File,
}

impl std::fmt::Debug for AtomicDir<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicDir")
            .field("staging", &self.staging)
            .field("dest", &self.dest)
            .finish()
    }
}

impl<'a> AtomicDir<'a> {
    /// Creates a staging directory beside `dest`. `dest` must not exist, or be a directory all
    /// of whose entries `ours` accepts (the files the directory is replaced with, and what
    /// crosswalk writes there later): anything else would be lost by the swap, so the
    /// directory is refused (a configuration error that says why; entry names are not
    /// printed, a file name may be anything). `dest` is resolved first (`.` and `..` too), and
    /// checked again just before the swap.
    pub fn create(dest: &Path, ours: &'a dyn Fn(&str) -> bool) -> Result<AtomicDir<'a>> {
        let dest = resolve(dest)?;
        check_only_ours(&dest, ours)?;
        let parent = dest.parent().map(Path::to_path_buf).ok_or_else(|| {
            Error::config(
                &dest,
                "the output directory cannot be the file system's root",
            )
        })?;
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        remove_dead_staging(&parent)?;
        // Made under a `.new` name, locked, then renamed to its `.tmp` name: a `.tmp` staging
        // directory is locked for as long as its run lives.
        let new = tempfile::Builder::new()
            .prefix(".crosswalk-")
            .suffix(".new")
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let lock = std::fs::File::open(new.path()).map_err(|e| Error::io(new.path(), e))?;
        lock.try_lock()
            .map_err(|e| Error::io(new.path(), std::io::Error::other(e.to_string())))?;
        let staging = new.path().with_extension("tmp");
        std::fs::rename(new.path(), &staging).map_err(|e| Error::io(&staging, e))?;
        let _ = new.keep();
        Ok(AtomicDir {
            staging,
            dest,
            ours,
            committed: false,
            _lock: lock,
        })
    }

    /// The staging directory: write the new directory's files here.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The destination (resolved).
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Swaps the staging directory in for the destination and removes the old directory.
    /// Fails, leaving the destination as it is, if files crosswalk does not write appeared in
    /// it while the run was working.
    pub fn commit(mut self) -> Result<()> {
        check_only_ours(&self.dest, self.ours)?;
        sync_dir(&self.staging)?;
        let (staging, dest) = (self.staging.clone(), self.dest.clone());
        let replaced = std::fs::symlink_metadata(&dest).is_ok();
        if !replaced {
            std::fs::rename(&staging, &dest).map_err(|e| Error::io(&dest, e))?;
        } else if !exchange(&staging, &dest)? {
            let aside = staging.with_extension("old");
            std::fs::rename(&dest, &aside).map_err(|e| Error::io(&dest, e))?;
            if let Err(e) = std::fs::rename(&staging, &dest) {
                let _ = std::fs::rename(&aside, &dest); // the old directory back in place
                return Err(Error::io(&dest, e));
            }
            std::fs::rename(&aside, &staging).map_err(|e| Error::io(&aside, e))?;
        }
        self.committed = true;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        if replaced {
            // `staging` now holds the old directory (no longer locked: the lock went with the
            // new one). Only crosswalk's own entries are removed: a file written into it since
            // the check (by a shell standing in it, say) keeps the directory, renamed so that
            // nothing removes it later.
            remove_ours(&staging, self.ours)?;
        }
        Ok(())
    }
}

impl Drop for AtomicDir<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Removes `dir`'s entries that `ours` accepts, then `dir` itself if that leaves it empty; a
/// directory still holding anything else is renamed `<dir>.kept-by-crosswalk` beside it (a
/// name nothing of crosswalk's ever removes). Another run removing the same directory at the
/// same moment is not an error.
fn remove_ours(dir: &Path, ours: &dyn Fn(&str) -> bool) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // removed already
    };
    for e in entries.flatten() {
        if !ours(&e.file_name().to_string_lossy()) {
            continue;
        }
        let path = e.path();
        let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(err) = removed {
            if path.exists() {
                return Err(Error::io(&path, err));
            }
        }
    }
    if std::fs::remove_dir(dir).is_err() && dir.exists() {
        let kept = dir.with_extension("kept-by-crosswalk");
        std::fs::rename(dir, &kept).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// `dest` made absolute, `.` and `..` resolved (the staging directory goes into its parent, so
/// `--out .` must not mean "beside the current directory's contents").
fn resolve(dest: &Path) -> Result<PathBuf> {
    let refuse = || {
        Error::config(
            dest,
            "name the output directory itself (a path ending in . or .. cannot be replaced)",
        )
    };
    if dest.exists() {
        let abs = std::fs::canonicalize(dest).map_err(|e| Error::io(dest, e))?;
        return abs
            .file_name()
            .is_some()
            .then_some(abs.clone())
            .ok_or_else(refuse);
    }
    let name = dest.file_name().ok_or_else(refuse)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let parent = std::fs::canonicalize(&parent).map_err(|e| Error::io(&parent, e))?;
    Ok(parent.join(name))
}

/// Refuses `dest` if it is a file, or a directory with an entry `ours` does not accept.
fn check_only_ours(dest: &Path, ours: &dyn Fn(&str) -> bool) -> Result<()> {
    match std::fs::read_dir(dest) {
        Ok(entries) => {
            let mut foreign = 0usize;
            for e in entries {
                let e = e.map_err(|e| Error::io(dest, e))?;
                if !ours(&e.file_name().to_string_lossy()) {
                    foreign += 1;
                }
            }
            if foreign > 0 {
                return Err(Error::config(
                    dest,
                    format!(
                        "the output directory holds {foreign} entr{} crosswalk does not write \
                         there; a run replaces its directory as a whole, so crosswalk stops \
                         rather than delete them. Give a new or empty directory, or move those \
                         files out",
                        if foreign == 1 { "y" } else { "ies" }
                    ),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::config(
            dest,
            "is a file; the output must be a directory (new, empty, or an earlier run's)",
        )),
        Err(e) => Err(Error::io(dest, e)),
    }
}

/// Removes the staging directories (`.crosswalk-XXXXXX.tmp/`) in `parent` whose run died:
/// those nobody holds locked any more. A live run's staging directory is locked and left alone.
fn remove_dead_staging(parent: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if !is_temp_name(&e.file_name().to_string_lossy())
            || !e.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let Ok(dir) = std::fs::File::open(e.path()) else {
            continue;
        };
        if dir.try_lock().is_ok() {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                if e.path().exists() {
                    return Err(Error::io(e.path(), err));
                }
            }
        }
    }
    Ok(())
}

/// Swaps two directory entries atomically; `Ok(false)` where the system or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| Error::io(p, std::io::Error::other("path holds a NUL byte")))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call;
    // renameat2 reads them and touches no other memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(Error::io(b, err)),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> Result<bool> {
    Ok(false)
}

/// fsync of a directory (its entries: renames and new files). A no-op where directories cannot
/// be opened as files.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// An agency export: CSV, or Parquet when the file name ends in `.parquet` or `.pq`.
#[derive(Debug)]
pub enum ExportSource {
    /// A CSV export.
    Csv(csv_in::CsvSource),
    /// A Parquet export.
    Parquet(parquet_in::ParquetSource),
}

impl ExportSource {
    /// Opens `path`; `delimiter` and `encoding` apply to CSV only.
    pub fn open(
        path: &Path,
        delimiter: u8,
        encoding: crate::source::TextEncoding,
    ) -> Result<ExportSource> {
        let parquet = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
        Ok(if parquet {
            ExportSource::Parquet(parquet_in::ParquetSource::open(path)?)
        } else {
            ExportSource::Csv(csv_in::CsvSource::open(path, delimiter, encoding)?)
        })
    }

    /// Column names.
    pub fn headers(&self) -> &[String] {
        match self {
            ExportSource::Csv(s) => s.headers(),
            ExportSource::Parquet(s) => s.headers(),
        }
    }

    /// Columns that cannot be read as text (Parquet lists, structs, ...).
    pub fn unsupported(&self) -> &[usize] {
        match self {
            ExportSource::Csv(_) => &[],
            ExportSource::Parquet(s) => s.unsupported(),
        }
    }

    /// Fills `chunk` with up to `max` rows; 0 at the end.
    pub fn read_chunk(&mut self, chunk: &mut Vec<csv_in::RawRow>, max: usize) -> Result<usize> {
        match self {
            ExportSource::Csv(s) => s.read_chunk(chunk, max),
            ExportSource::Parquet(s) => s.read_chunk(chunk, max),
        }
    }
}

/// Writes one record batch as a Parquet file, atomically, with `metadata` as the file's
/// key-value metadata.
pub fn write_parquet(
    path: &Path,
    batch: &arrow_array::RecordBatch,
    metadata: &[(&str, String)],
) -> Result<()> {
    let mut w =
        parquet::arrow::ArrowWriter::try_new(AtomicFile::create(path)?, batch.schema(), None)
            .map_err(|e| Error::parquet(path, e))?;
    for (k, v) in metadata {
        w.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
            k.to_string(),
            v.clone(),
        ));
    }
    w.write(batch).map_err(|e| Error::parquet(path, e))?;
    w.into_inner()
        .map_err(|e| Error::parquet(path, e))?
        .commit()
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).map_err(|e| Error::io(dest, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        write_atomic(&dest, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"new but abandoned").unwrap();
        }
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn removing_an_old_directory_keeps_what_is_not_ours() {
        let parent = tempfile::tempdir().unwrap();
        let old = parent.path().join(".crosswalk-Ab12Cd.tmp");
        std::fs::create_dir_all(old.join("aggregates")).unwrap();
        std::fs::write(old.join("aggregates/t.parquet"), "x").unwrap();
        std::fs::write(old.join("a"), "x").unwrap();
        std::fs::write(old.join("notes.txt"), "written since the check").unwrap();
        let ours = |n: &str| n == "a" || n == "aggregates";
        remove_ours(&old, &ours).unwrap();
        assert!(!old.exists());
        let kept = parent.path().join(".crosswalk-Ab12Cd.kept-by-crosswalk");
        assert_eq!(
            files(&kept),
            [("notes.txt".into(), b"written since the check".to_vec())]
        );
        // Nothing but ours: the directory goes.
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("a"), "x").unwrap();
        remove_ours(&old, &ours).unwrap();
        assert!(!old.exists());
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_directory_is_replaced_whole_or_not_at_all() {
        let parent = tempfile::tempdir().unwrap();
        let dest = parent.path().join("run");
        let ours = |n: &str| n == "a" || n == "b";
        // New.
        let d = AtomicDir::create(&dest, &ours).unwrap();
        std::fs::write(d.path().join("a"), "1").unwrap();
        std::fs::write(d.path().join("b"), "1").unwrap();
        d.commit().unwrap();
        assert_eq!(
            files(&dest),
            [("a".into(), b"1".to_vec()), ("b".into(), b"1".to_vec())]
        );
        // Abandoned: the old directory stays, the staging one goes.
        let d = AtomicDir::create(&dest, &ours).unwrap();
        std::fs::write(d.path().join("a"), "2").unwrap();
        drop(d);
        assert_eq!(files(&dest).len(), 2);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
        // Replaced: nothing of the old one is left (b is gone).
        let d = AtomicDir::create(&dest, &ours).unwrap();
        std::fs::write(d.path().join("a"), "3").unwrap();
        d.commit().unwrap();
        assert_eq!(files(&dest), [("a".into(), b"3".to_vec())]);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
        // A dead run's staging directory (its lock free) is removed by the next one; a live
        // one's is not.
        let live = AtomicDir::create(&dest, &ours).unwrap();
        let mut dead = AtomicDir::create(&dest, &ours).unwrap();
        let dead_path = dead.path().to_path_buf();
        std::fs::write(dead_path.join("a"), "partial").unwrap();
        dead.committed = true; // as if the process died: nothing cleaned up
        drop(dead); // and its lock released
        assert!(dead_path.exists());
        let next = AtomicDir::create(&dest, &ours).unwrap();
        assert!(!dead_path.exists() && live.path().exists());
        drop((live, next));
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
        // A file that appears in the destination while a run works stops its commit.
        let d = AtomicDir::create(&dest, &ours).unwrap();
        std::fs::write(dest.join("late.txt"), "mine").unwrap();
        assert_eq!(d.commit().unwrap_err().exit_code(), 3);
        assert_eq!(std::fs::read(dest.join("late.txt")).unwrap(), b"mine");
        std::fs::remove_file(dest.join("late.txt")).unwrap();
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
        // `.` and `..` are resolved: the staging directory is never made inside the output.
        let inner = dest.join("sub");
        let err = AtomicDir::create(&inner.join(".."), &ours).unwrap_err();
        assert_eq!(err.exit_code(), 3, "{err}");
        // A path through `..` to a directory that does not exist yet is resolved, not refused.
        std::fs::create_dir_all(parent.path().join("sub")).unwrap();
        let via = parent.path().join("sub").join("..").join("fresh");
        let d = AtomicDir::create(&via, &ours).unwrap();
        assert_eq!(
            d.dest(),
            std::fs::canonicalize(parent.path()).unwrap().join("fresh")
        );
        drop(d);
        std::fs::remove_dir(parent.path().join("sub")).unwrap();
        // What a killed run leaves inside an output directory does not make it foreign.
        assert!(is_crosswalk_leftover(".crosswalk-Ab12Cd.new"));
        assert!(is_crosswalk_leftover(".crosswalk-Ab12Cd.old"));
        assert!(!is_crosswalk_leftover(".crosswalk-notes.txt"));
        // A directory with something else in it is refused.
        std::fs::write(dest.join("notes.txt"), "mine").unwrap();
        let err = AtomicDir::create(&dest, &ours).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(!err.to_string().contains("notes.txt"), "{err}");
        assert_eq!(files(&dest).len(), 2);
    }
}
