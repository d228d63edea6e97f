//! `JsonLinesSink`: one JSON object per line, appended to a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ClickSink, SinkError};
use crate::click::Click;

/// Appends each click as one line of JSON ([`Click::write_json`]) to a file.
///
/// - Each batch is serialised into one buffer and handed to the OS with a single `write_all`:
///   once `write` returns `Ok`, the lines are in the file (the page cache).
/// - `flush` makes them durable with `fsync` when [`fsync(true)`](JsonLinesSink::fsync) is set
///   (default off; the pipeline flushes at shutdown).
/// - If a write fails halfway, the file is cut back to its length before the batch, so a retry
///   never leaves a torn line.
/// - Optional size-based rotation ([`rotate`](JsonLinesSink::rotate)): `clicks.jsonl` becomes
///   `clicks.jsonl.1`, `.1` becomes `.2`, ... keeping `keep` old files. Rotation happens between
///   lines, never inside one.
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    file: File,
    size: u64,
    buf: Vec<u8>,
    fsync: bool,
    rotate: Option<(u64, usize)>,
}

impl JsonLinesSink {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(JsonLinesSink {
            path,
            file,
            size,
            buf: Vec::with_capacity(512 * 1024),
            fsync: false,
            rotate: None,
        })
    }

    /// `fsync` the file on every `flush`.
    pub fn fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    /// Rotate when the file would grow past `max_bytes`, keeping `keep` old files.
    pub fn rotate(mut self, max_bytes: u64, keep: usize) -> Self {
        self.rotate = Some((max_bytes.max(1), keep));
        self
    }

    /// The file clicks go to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_buf(&mut self, upto: usize) -> std::io::Result<()> {
        if upto == 0 {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf[..upto]) {
            // Cut back any partial line so a retry starts on a line boundary.
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += upto as u64;
        Ok(())
    }

    fn rotate_now(&mut self, keep: usize) -> std::io::Result<()> {
        self.file.sync_data()?;
        let name = |i: usize| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(name(keep));
            for i in (1..keep).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            std::fs::rename(&self.path, name(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl ClickSink for JsonLinesSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        self.buf.clear();
        for click in batch {
            let start = self.buf.len();
            click.write_json(&mut self.buf);
            self.buf.push(b'\n');
            if let Some((max, keep)) = self.rotate {
                if self.size + self.buf.len() as u64 > max && self.size + start as u64 > 0 {
                    self.write_buf(start)?;
                    self.buf.drain(..start);
                    self.rotate_now(keep)?;
                }
            }
        }
        self.write_buf(self.buf.len())?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.file.flush()?;
        if self.fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}
