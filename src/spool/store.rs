//! The spool's files: segments appended with fsync, read back from a saved position.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use super::{SpoolConfig, SpoolError};
use crate::click::Click;

const SUFFIX: &str = ".jsonl";

#[derive(Debug)]
struct Segment {
    seq: u64,
    size: u64,
}

/// How far the oldest segment has been replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Position {
    offset: u64,
    /// Lines consumed so far (the next line's number is `line + 1`).
    line: u64,
}

/// What one append managed.
#[derive(Debug)]
pub(crate) struct Appended {
    /// How many clicks of the batch (a prefix) are now on disk.
    pub(crate) written: usize,
    /// Why the rest was not (spool full, or the disk write failed).
    pub(crate) error: Option<String>,
}

/// Up to `max_batch` clicks read from the oldest segment, not yet committed.
#[derive(Debug)]
pub(crate) struct ReadBatch {
    pub(crate) clicks: Vec<Click>,
    /// Whether the segment was written by this process (its clicks are in this run's counters).
    pub(crate) own: bool,
    /// Lines that did not parse: `file:line: why`.
    pub(crate) corrupt: Vec<String>,
    seq: u64,
    end: Position,
    eof: bool,
}

/// A locked spool directory.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    _lock: File,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    total: u64,
    own_from: u64,
    next_seq: u64,
    /// The segment being appended to (always the newest, always this process's).
    writer: Option<(u64, File)>,
    reader: Option<(u64, File)>,
    pos: Position,
    buf: Vec<u8>,
}

fn seg_name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

impl Store {
    /// Creates/locks the directory and lists its segments (oldest first).
    pub(crate) fn open(cfg: &SpoolConfig) -> Result<Store, SpoolError> {
        let dir = cfg.dir.clone();
        std::fs::create_dir_all(&dir).map_err(SpoolError::io("create", &dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(SpoolError::io("open", &lock_path))?;
        match lock.try_lock_exclusive() {
            Ok(true) => {}
            Ok(false) => return Err(SpoolError::Locked { dir }),
            Err(e) => return Err(SpoolError::io("lock", &lock_path)(e)),
        }
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(SpoolError::io("list", &dir))? {
            let entry = entry.map_err(SpoolError::io("list", &dir))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let meta = entry.metadata().map_err(SpoolError::io("stat", &path))?;
            if !meta.is_file() {
                continue;
            }
            let size = meta.len();
            if size == 0 {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            segments.push(Segment { seq, size });
        }
        segments.sort_by_key(|s| s.seq);
        // Never reuse a number, not even one only the cursor remembers: a stale cursor must
        // not match a future segment.
        let cursor_seq = read_cursor(&dir).map_or(0, |c| c.0);
        let next_seq = segments.last().map_or(1, |s| s.seq + 1).max(cursor_seq + 1);
        let mut store = Store {
            total: segments.iter().map(|s| s.size).sum(),
            segments: segments.into(),
            dir,
            _lock: lock,
            max_bytes: cfg.max_bytes,
            segment_bytes: cfg.segment_bytes,
            own_from: next_seq,
            next_seq,
            writer: None,
            reader: None,
            pos: Position::default(),
            buf: Vec::with_capacity(512 * 1024),
        };
        store.pos = store.saved_position();
        Ok(store)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(seg_name(seq))
    }

    /// The position saved in `cursor`, if it is about the oldest segment and inside it.
    fn saved_position(&self) -> Position {
        let Some(head) = self.segments.front() else {
            return Position::default();
        };
        match read_cursor(&self.dir) {
            Some((seq, offset, line)) if seq == head.seq && offset <= head.size => {
                Position { offset, line }
            }
            _ => Position::default(),
        }
    }

    /// Nothing left to replay.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes of all segments on disk.
    pub(crate) fn bytes(&self) -> u64 {
        self.total
    }

    /// Appends `batch` (as much of it as fits), fsynced, one JSON line per click.
    pub(crate) fn append(&mut self, batch: &[Click]) -> Appended {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut written = 0;
        let mut pending = 0;
        let mut error = None;
        for click in batch {
            let start = buf.len();
            click.write_json(&mut buf);
            buf.push(b'\n');
            if self.total + buf.len() as u64 > self.max_bytes {
                buf.truncate(start);
                error = Some(format!(
                    "spool full ({} of {} bytes)",
                    self.total + start as u64,
                    self.max_bytes
                ));
                break;
            }
            let current = self.writer_size();
            if current + buf.len() as u64 > self.segment_bytes && current + start as u64 > 0 {
                if let Err(e) = self.write_synced(&buf[..start]) {
                    buf.clear();
                    error = Some(e.chain());
                    break;
                }
                written += pending;
                pending = 0;
                buf.drain(..start);
                self.writer = None;
            }
            pending += 1;
        }
        if pending > 0 {
            match self.write_synced(&buf) {
                Ok(()) => written += pending,
                Err(e) => error = Some(e.chain()),
            }
        }
        self.buf = buf;
        Appended { written, error }
    }

    fn writer_size(&self) -> u64 {
        match (&self.writer, self.segments.back()) {
            (Some((seq, _)), Some(s)) if s.seq == *seq => s.size,
            _ => 0,
        }
    }

    /// Writes whole lines to the newest own segment (starting one if needed) and fsyncs; on an
    /// error the segment is cut back so it never holds a partial line.
    fn write_synced(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let seq = self.next_seq;
            let path = self.path(seq);
            let f = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(SpoolError::io("create", &path))?;
            sync_dir(&self.dir).map_err(SpoolError::io("sync", &self.dir))?;
            self.next_seq += 1;
            self.segments.push_back(Segment { seq, size: 0 });
            self.writer = Some((seq, f));
        }
        let Some((seq, f)) = &mut self.writer else {
            unreachable!("writer set above")
        };
        let seg = self.segments.back_mut().filter(|s| s.seq == *seq);
        let Some(seg) = seg else {
            unreachable!("the writer's segment is the newest")
        };
        let path = self.dir.join(seg_name(*seq));
        let res = f.write_all(bytes).and_then(|()| f.sync_data());
        if let Err(e) = res {
            let _ = f.set_len(seg.size);
            return Err(SpoolError::io("append to", &path)(e));
        }
        seg.size += bytes.len() as u64;
        self.total += bytes.len() as u64;
        Ok(())
    }

    /// Reads up to `max` clicks from the oldest segment, from the saved position on; stops at
    /// the segment's end (a batch never spans two segments).
    pub(crate) fn read(&mut self, max: usize) -> Result<Option<ReadBatch>, SpoolError> {
        let Some(head) = self.segments.front() else {
            return Ok(None);
        };
        let (seq, size) = (head.seq, head.size);
        let path = self.path(seq);
        if self.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
            let f = File::open(&path).map_err(SpoolError::io("read", &path))?;
            self.reader = Some((seq, f));
        }
        let Some((_, f)) = &mut self.reader else {
            unreachable!("reader set above")
        };
        f.seek(SeekFrom::Start(self.pos.offset))
            .map_err(SpoolError::io("read", &path))?;
        let remaining = size.saturating_sub(self.pos.offset);
        let mut r = BufReader::with_capacity(256 * 1024, Read::take(&mut *f, remaining));
        let mut end = self.pos;
        let mut clicks = Vec::with_capacity(max.min(4096));
        let mut corrupt = Vec::new();
        let mut line = Vec::with_capacity(512);
        while clicks.len() < max {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .map_err(SpoolError::io("read", &path))?;
            if n == 0 {
                break;
            }
            end.offset += n as u64;
            end.line += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match Click::from_json(text) {
                Ok(c) => clicks.push(c),
                Err(e) => corrupt.push(format!(
                    "{}:{}: {}",
                    seg_name(seq),
                    end.line,
                    error_chain(&e)
                )),
            }
        }
        Ok(Some(ReadBatch {
            clicks,
            own: seq >= self.own_from,
            corrupt,
            seq,
            eof: end.offset >= size,
            end,
        }))
    }

    /// Marks a read batch as done: deletes its segment if the batch reached the end, else saves
    /// the new position.
    pub(crate) fn commit(&mut self, b: &ReadBatch) -> Result<(), SpoolError> {
        if self.segments.front().is_none_or(|s| s.seq != b.seq) {
            return Ok(());
        }
        if !b.eof {
            self.pos = b.end;
            let tmp = self.dir.join("cursor.tmp");
            let text = format!("{} {} {}\n", b.seq, b.end.offset, b.end.line);
            return std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, self.dir.join("cursor")))
                .map_err(SpoolError::io("save the position in", &self.dir));
        }
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        self.total -= seg.size;
        self.pos = Position::default();
        self.reader = None;
        if self.writer.as_ref().is_some_and(|(s, _)| *s == seg.seq) {
            self.writer = None;
        }
        let path = self.path(seg.seq);
        std::fs::remove_file(&path).map_err(SpoolError::io("delete", &path))
    }
}

/// `(segment, offset, line)` from the `cursor` file, if it holds that.
fn read_cursor(dir: &Path) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [seq, offset, line] => Some((seq, offset, line)),
        _ => None,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
