//! The spool: an on-disk overflow for clicks a sink could not take within its retry window.

mod replay;
mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use replay::Spooler;

/// Where and how much a click pipeline spools while its sink is down (feature `spool`).
///
/// Give it to [`DrainBuilder::spool`](crate::DrainBuilder::spool). Without a spool a batch that
/// still fails after the [`RetryPolicy`](crate::RetryPolicy) is counted `failed`; with one it is
/// written to disk and delivered later.
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{ClickRecorder, JsonLinesSink, SpoolConfig};
/// let sink = JsonLinesSink::open("/var/log/linkgate/clicks.jsonl")?;
/// let (recorder, guard) = ClickRecorder::builder(sink)
///     .spool(SpoolConfig::new("/var/spool/linkgate").max_bytes(4 << 30))
///     .spawn()?; // fails if the directory cannot be created, read or locked
/// // ... serve ...
/// let stats = guard.shutdown(Duration::from_secs(10));
/// println!("{} clicks left on disk for the next start", stats.spooled);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # On disk
/// The directory holds numbered segments (`00000000000000000001.jsonl`, ...), each a file of
/// JSON lines, one click per line exactly as [`Click::write_json`](crate::Click::write_json)
/// writes it; a `cursor` file (how far the oldest segment has been replayed) and a `lock` file.
/// Segments are plain text: `jq` reads them, and [`Click::from_json`](crate::Click::from_json)
/// parses them back.
///
/// # Guarantees
/// - **When clicks are spooled**: a batch whose write still fails after the retry window with a
///   retryable error ([`SinkError::Io`](crate::SinkError::Io),
///   [`SinkError::Transient`](crate::SinkError::Transient)), or that is cut short by the
///   shutdown deadline, is appended to the spool. From then on the sink counts as *down*: new
///   batches go straight to the spool (behind the older ones) instead of waiting out a retry
///   window each, and every `probe_interval` one batch from the head of the spool is tried once.
///   [`SinkError::Permanent`](crate::SinkError::Permanent) and a panicking sink are not spooled:
///   those clicks are counted `failed`, as without a spool (replaying them would fail again).
/// - **Durable before counted**: each append is `fsync`ed (`fdatasync`; a new segment also
///   syncs the directory) before its clicks are counted `spooled`. A crash after that loses
///   nothing the spool counted.
/// - **Bounded**: the segments never add up to more than `max_bytes`. A batch that does not fit
///   is spooled as far as it fits; the rest is counted `failed`, as is a batch whose disk write
///   fails, with the reason in `last_error`.
/// - **Order**: the spool is replayed oldest segment first, line by line, in batches of
///   `max_batch`, **before** any newer click from the channel. While it replays, new clicks
///   wait in the channel (bounded: the usual `dropped` accounting applies); whenever the
///   channel is half full, a batch of them is moved to the tail of the spool instead, so a long
///   replay does not turn into drops while the disk has room.
/// - **At-least-once**: a segment is deleted once every click in it is delivered; the replay
///   position inside the oldest segment is saved after each delivered batch (not fsynced). A
///   crash during replay re-delivers at most that segment's undelivered part and, if the
///   position was not yet on disk, what was delivered of that segment: duplicates, never
///   losses. Consumers dedupe by `click_id`.
/// - **What a sink sees on replay**: clicks rebuilt by
///   [`Click::from_json`](crate::Click::from_json): their JSON form is byte for byte the one
///   spooled; what the JSON does not carry (the request path beside the query, non-UTF-8 bytes)
///   is normalised as documented there.
/// - **Restarts**: a pipeline opened on a directory with segments replays them first. Clicks
///   recorded by an earlier process are counted in `recovered` (delivered) or
///   `recovered_failed`, never in this process's `recorded`/`delivered`, so the invariant of
///   [`Stats`](crate::Stats) stays exact. A pipeline never appends to a segment an earlier
///   process wrote.
/// - **One owner**: the directory is locked (an advisory `flock`/`LockFileEx` on `lock`, `fs4`
///   crate) for as long as the pipeline runs; a second pipeline on it, in this process or
///   another, fails at `spawn` with [`SpoolError::Locked`]. The lock is released when the drain
///   thread ends (a shutdown that gave up on a stuck sink leaves the thread, and the lock, behind).
/// - **Corruption**: a line that does not parse (typically a torn last line after a power cut)
///   is skipped and counted in `spool_corrupt`, with the segment's file name and line number in
///   `last_error`; the replay goes on. Nothing in the spool can make the drain panic.
/// - **Shutdown**: a graceful shutdown keeps replaying while the sink takes clicks, until the
///   spool is empty or the shutdown deadline passes; clicks still queued at the deadline are
///   spooled rather than failed. What is left stays on disk (`spooled` in the final stats) for
///   the next start. With the sink healthy and time enough, the spool ends empty.
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `max_bytes` | 1 GiB (≈ 4 M clicks of ~250 B) |
/// | `segment_bytes` | 64 MiB |
/// | `probe_interval` | 1 s |
///
/// # Trade-offs
/// - **Throughput while down** is the disk's: one `fsync` per batch (see BENCHMARKS.md,
///   "Spool"). Larger batches (`max_batch`) amortise it.
/// - **Replay speed** is the sink's plus parsing: new clicks are delayed until the spool is
///   empty; size `capacity` or rely on the half-full hand-over above.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SpoolConfig {
    pub(crate) dir: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) probe_interval: Duration,
}

impl SpoolConfig {
    /// A spool in `dir` (created if missing) with the default limits.
    pub fn new(dir: impl Into<PathBuf>) -> SpoolConfig {
        SpoolConfig {
            dir: dir.into(),
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            probe_interval: Duration::from_secs(1),
        }
    }

    /// Most bytes all segments may hold together.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// Size at which a new segment is started (a segment holds at least one line, however long).
    pub fn segment_bytes(mut self, n: u64) -> Self {
        self.segment_bytes = n.max(1);
        self
    }

    /// How often a down sink is tried again with the oldest spooled batch.
    pub fn probe_interval(mut self, d: Duration) -> Self {
        self.probe_interval = d;
        self
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Why a spool could not be opened or written.
///
/// [`DrainBuilder::spawn`](crate::DrainBuilder::spawn) returns it inside a
/// [`std::io::Error`] (`get_ref()` / `into_inner()` and downcast to read it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// Another pipeline (in this process or another) holds the directory's lock.
    #[error("spool directory {} is locked by another pipeline", dir.display())]
    Locked {
        /// The spool directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("spool: cannot {op} {}", path.display())]
    Io {
        /// What was being done (`create`, `lock`, `read`, `append to`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl SpoolError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError {
        let path = path.to_path_buf();
        move |source| SpoolError::Io { op, path, source }
    }

    /// This error and its sources, `: `-separated (for `last_error`).
    pub(crate) fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut e: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(x) = e {
            s.push_str(": ");
            s.push_str(&x.to_string());
            e = x.source();
        }
        s
    }
}

impl From<SpoolError> for std::io::Error {
    fn from(e: SpoolError) -> Self {
        let kind = match &e {
            SpoolError::Locked { .. } => std::io::ErrorKind::WouldBlock,
            SpoolError::Io { source, .. } => source.kind(),
        };
        std::io::Error::new(kind, e)
    }
}
