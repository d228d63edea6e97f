//! `FileSource`: links from a file in any supported format, watched for changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::{LinkSource, Notifier};
use crate::error::LoadError;
use crate::format::{Format, with_path};
use crate::set::LinkSet;

/// Links from a file (nginx map, CSV or JSON; by extension unless set).
///
/// Change detection: a filesystem watch on the file's directory (`notify`: inotify on Linux)
/// and, as a fallback that also covers network filesystems and missed events, a poll of the
/// file's identity (modification time, size, inode, and where a symlink points) every
/// `poll_interval`. Either one wakes the [`Reloader`](super::Reloader).
///
/// Safe against the ways files get replaced:
/// - **atomic rename into place** (`mv new links.map`): a new inode, picked up whole;
/// - **in-place truncate-then-write**: before reading, the file must keep the same size and
///   modification time for `settle` (default 100 ms); a file caught half-written that still
///   fails to parse is read once more after another settle. What is left invalid fails
///   validation and the old table keeps serving; a file cut at a line boundary that still parses
///   is what the table's `max_removed_fraction` guard is for;
/// - **deletion**: the load fails (`LoadError::Io`), counted and reported; the old table serves;
/// - **symlink flips** (Kubernetes ConfigMap `..data` swap): the path is resolved on every load
///   and the watch covers the directory, including the `..data` link itself.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    format: Option<Format>,
    settle: Duration,
    poll: Duration,
    stop: Arc<AtomicBool>,
    watcher: Option<notify::RecommendedWatcher>,
}

type Stamp = (Option<SystemTime>, u64, u64, Option<PathBuf>);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Ok((
        m.modified().ok(),
        m.len(),
        ino,
        std::fs::canonicalize(path).ok(),
    ))
}

impl FileSource {
    /// A source reading `path` (format by extension, checked now).
    pub fn new(path: impl Into<PathBuf>) -> Result<FileSource, LoadError> {
        let path = path.into();
        Format::from_path(&path)?;
        Ok(FileSource {
            path,
            format: None,
            settle: Duration::from_millis(100),
            poll: Duration::from_millis(500),
            stop: Arc::new(AtomicBool::new(false)),
            watcher: None,
        })
    }

    /// Reads the file in this format whatever its extension.
    pub fn format(mut self, f: Format) -> Self {
        self.format = Some(f);
        self
    }

    /// How long the file must stay unchanged before it is read.
    pub fn settle(mut self, d: Duration) -> Self {
        self.settle = d;
        self
    }

    /// How often the fallback poll checks the file.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = d.max(Duration::from_millis(10));
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> LoadError {
        LoadError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn read_settled(&self) -> Result<(Vec<u8>, Stamp), LoadError> {
        let mut before = stamp(&self.path).map_err(|e| self.io(e))?;
        for _ in 0..50 {
            std::thread::sleep(self.settle);
            let after = stamp(&self.path).map_err(|e| self.io(e))?;
            if after == before {
                break;
            }
            before = after;
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        Ok((bytes, before))
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl LinkSource for FileSource {
    fn load(&mut self) -> Result<LinkSet, LoadError> {
        let format = match self.format {
            Some(f) => f,
            None => Format::from_path(&self.path)?,
        };
        let (bytes, st) = self.read_settled()?;
        match format.parse(&bytes) {
            Ok(set) => Ok(set),
            Err(first) => {
                // Caught mid-write? If the file moved on, read it once more.
                std::thread::sleep(self.settle);
                if stamp(&self.path).ok().as_ref() == Some(&st) {
                    return Err(with_path(first, &self.path));
                }
                let (bytes, _) = self.read_settled()?;
                format.parse(&bytes).map_err(|e| with_path(e, &self.path))
            }
        }
    }

    fn watch(&mut self, notifier: Notifier) -> Result<(), LoadError> {
        use notify::Watcher;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self.path.file_name().map(|n| n.to_owned());
        let n = notifier.clone();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            // Our own reads show up as access events: only changes count.
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            let relevant = ev.paths.iter().any(|p| {
                let f = p.file_name();
                f == name.as_deref()
                    || f.and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with(".."))
            });
            if relevant {
                n.notify();
            }
        });
        // A failed watch is not fatal: the poll below still sees every change.
        self.watcher = watcher
            .and_then(|mut w| {
                w.watch(&dir, notify::RecursiveMode::NonRecursive)
                    .map(|_| w)
            })
            .ok();
        let (path, poll, stop) = (self.path.clone(), self.poll, self.stop.clone());
        std::thread::Builder::new()
            .name("linkgate-filepoll".into())
            .spawn(move || {
                let mut last = stamp(&path).ok();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(poll);
                    let now = stamp(&path).ok();
                    if now != last {
                        last = now;
                        notifier.notify();
                    }
                }
            })
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}
