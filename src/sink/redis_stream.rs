//! `RedisStreamSink` (feature `redis`): every click `XADD`ed to a Redis stream, one pipelined
//! round trip per batch.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use redis::{Client, Connection, RedisError, Value};

use super::reconnect::Reconnect;
use super::{ClickSink, SinkError};
use crate::click::Click;
use crate::source::redis::{DEFAULT_REDIS_URL, addr_of, connect, redact};

/// The one field each stream entry has: the click's JSON object.
const FIELD: &str = "json";

/// Appends every click to a Redis stream with `XADD <stream> [MAXLEN ~ n] * json <click JSON>`.
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{ClickRecorder, RedisStreamSink};
///
/// let sink = RedisStreamSink::new("redis://127.0.0.1:6379/", "clicks")?
///     .max_len(Some(10_000_000)); // XADD ... MAXLEN ~ 10000000
/// let (recorder, guard) = ClickRecorder::builder(sink).max_batch(1024).spawn()?;
/// // ... recorder.record(click) on every redirect ...
/// let stats = guard.shutdown(Duration::from_secs(5));
/// assert_eq!(stats.recorded, stats.delivered + stats.dropped + stats.failed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A consumer reads the stream with `XREAD`/`XREADGROUP` and parses the `json` field of each
/// entry: `redis-cli XRANGE clicks - + COUNT 1` shows `1764378123456-0 json {"ts":"2025-...`.
///
/// # Entry format: one `json` field
/// Each entry holds one field, `json`, whose value is exactly the line a
/// [`JsonLinesSink`](crate::JsonLinesSink) writes ([`Click::write_json`]), and Redis assigns the
/// entry id (`*`). One field rather than one per JSON field because:
/// - **it is lossless**: stream fields are flat strings, so `null` (an absent `referer`) and
///   `""` would look alike and the `tags` object would have to be flattened into invented
///   field names; the JSON keeps types, `null`s and nesting;
/// - **one format everywhere**: consumers parse the same object whichever sink wrote it;
/// - **it is cheaper**: 5 arguments per `XADD` instead of 41, for the client to encode and for
///   Redis to parse and store.
///
/// # Delivery semantics
/// - **At-least-once.** A batch is sent as one pipeline of `XADD`s (one write, one round trip)
///   and `write` returns `Ok` only when every reply is an entry id. An error reply (e.g. `OOM`,
///   `WRONGTYPE`) or a broken connection makes the batch fail with [`SinkError::Transient`], and
///   the drain writes the *whole* batch again: the entries that did get in before the failure
///   are then in the stream twice (with different entry ids). Consumers dedupe by `click_id`.
/// - **Order**: entries of one batch are in batch order; a redelivered batch follows whatever
///   the stream already holds.
/// - **Durability** is Redis's: "delivered" means in the server's memory; whether it survives a
///   Redis crash depends on its `appendonly`/`appendfsync` settings. [`flush`](ClickSink::flush)
///   does nothing.
/// - **Trimming**: with [`max_len`](Self::max_len) each `XADD` carries `MAXLEN ~ n`: Redis keeps
///   *at least* `n` entries (whole macro nodes are dropped, so a few more stay). Entries no
///   consumer has read yet are trimmed all the same: size `n` for the longest consumer outage.
///
/// # Connections, timeouts and failures
/// Constructing the sink only parses the URL; the first `write` connects. Every command has a
/// read/write timeout ([`io_timeout`](Self::io_timeout)) and connecting has
/// [`connect_timeout`](Self::connect_timeout), so a dead or silent server costs the drain thread
/// at most those, never a hang. After a broken connection the next `write` reconnects at once;
/// after a failed connect, writes fail fast (transient) for 50 ms doubling to 1 s before the
/// next attempt, so an unreachable server does not cost a connect timeout per batch. Give the
/// pipeline a [`RetryPolicy`](crate::RetryPolicy) as long as the outages you want to ride out.
/// Nothing panics on a server error. `Debug` and every error message name the server as
/// `host:port` and never show the URL's password.
///
/// # Memory
/// The encoded pipeline of a batch (each click's JSON plus ~50 B of RESP framing, about 0.5 MB
/// for 1 024 typical clicks) is built in a buffer that is reused across batches.
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `max_len` | `None` (no trimming) |
/// | `connect_timeout` | 2 s |
/// | `io_timeout` | 5 s (read and write, per batch's send and per reply) |
pub struct RedisStreamSink {
    url: String,
    addr: String,
    stream: String,
    max_len: Option<u64>,
    connect_timeout: Duration,
    io_timeout: Duration,
    client: Client,
    con: Option<Connection>,
    reconnect: Reconnect,
    /// `XADD <stream> [MAXLEN ~ n] * json ` in RESP, up to the JSON argument.
    prefix: Vec<u8>,
    /// The whole pipeline of a batch.
    buf: Vec<u8>,
    /// One click's JSON.
    json: Vec<u8>,
}

impl fmt::Debug for RedisStreamSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamSink")
            .field("url", &redact(&self.url))
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("connected", &self.con.is_some())
            .finish()
    }
}

/// Why a [`RedisStreamSink`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSinkConfigError {
    /// The URL does not parse.
    #[error("redis URL {url}")]
    Url {
        /// The URL, without its password.
        url: String,
        /// What the redis client said.
        #[source]
        source: RedisError,
    },
    /// The stream name is empty.
    #[error("the stream name is empty")]
    EmptyStream,
}

impl RedisStreamSink {
    /// A sink appending to `stream` on the Redis at `url`
    /// (`redis://[user:password@]host:port/db`, or `unix:///path`). Checks the URL; does not
    /// connect (the first `write` does).
    pub fn new(url: &str, stream: impl Into<String>) -> Result<Self, RedisSinkConfigError> {
        let stream = stream.into();
        if stream.is_empty() {
            return Err(RedisSinkConfigError::EmptyStream);
        }
        let client = Client::open(url).map_err(|source| RedisSinkConfigError::Url {
            url: redact(url).into_owned(),
            source,
        })?;
        let mut sink = RedisStreamSink {
            url: url.to_owned(),
            addr: addr_of(&client),
            stream,
            max_len: None,
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            client,
            con: None,
            reconnect: Reconnect::new(),
            prefix: Vec::new(),
            buf: Vec::new(),
            json: Vec::with_capacity(1024),
        };
        sink.encode_prefix();
        Ok(sink)
    }

    /// A sink appending to `stream` on `redis://127.0.0.1:6379/`.
    pub fn local(stream: impl Into<String>) -> Result<Self, RedisSinkConfigError> {
        Self::new(DEFAULT_REDIS_URL, stream)
    }

    /// Trim the stream to about `n` entries on every `XADD` (`MAXLEN ~ n`); `None` (the default)
    /// never trims. `Some(0)` is taken as `Some(1)`.
    #[must_use]
    pub fn max_len(mut self, n: Option<u64>) -> Self {
        self.max_len = n.map(|n| n.max(1));
        self.encode_prefix();
        self
    }

    /// Timeout of each connection attempt, handshake included (default 2 s; at least 1 ms).
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// Read and write timeout on the socket (default 5 s; at least 1 ms): sending a batch and
    /// waiting for each reply.
    #[must_use]
    pub fn io_timeout(mut self, d: Duration) -> Self {
        self.io_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// The stream clicks go to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Whether a connection is open now (none before the first write, or after a failure).
    pub fn is_connected(&self) -> bool {
        self.con.is_some()
    }

    fn encode_prefix(&mut self) {
        let mut args: Vec<Cow<'_, [u8]>> = vec![
            Cow::Borrowed(b"XADD"),
            Cow::Borrowed(self.stream.as_bytes()),
        ];
        if let Some(n) = self.max_len {
            args.push(Cow::Borrowed(b"MAXLEN"));
            args.push(Cow::Borrowed(b"~"));
            args.push(Cow::Owned(n.to_string().into_bytes()));
        }
        args.push(Cow::Borrowed(b"*"));
        args.push(Cow::Borrowed(FIELD.as_bytes()));
        let mut p = Vec::new();
        // The click's JSON is one more argument, appended per click.
        push_len(&mut p, b'*', args.len() + 1);
        for a in &args {
            push_len(&mut p, b'$', a.len());
            p.extend_from_slice(a);
            p.extend_from_slice(b"\r\n");
        }
        self.prefix = p;
    }

    fn error(&self, what: impl fmt::Display) -> SinkError {
        SinkError::Transient(format!(
            "redis stream {} on {}: {what}",
            self.stream, self.addr
        ))
    }

    /// Connects unless connected (or inside the reconnect backoff).
    fn connection(&mut self) -> Result<(), SinkError> {
        if self.con.is_none() {
            if let Some(w) = self.reconnect.wait() {
                return Err(self.error(format_args!(
                    "not connected; next connect attempt in {} ms",
                    w.as_millis()
                )));
            }
            match connect(&self.client, self.connect_timeout, self.io_timeout) {
                Ok(c) => {
                    self.reconnect.connected();
                    self.con = Some(c);
                }
                Err(e) => {
                    self.reconnect.failed();
                    return Err(self.error(format_args!("connecting: {e}")));
                }
            }
        }
        Ok(())
    }
}

/// `*3\r\n` / `$11\r\n`: a RESP array or bulk-string header.
fn push_len(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Reads the `n` replies of a pipeline: the number of error replies and the first one, or the
/// connection error that stopped the reading.
fn read_replies(con: &mut Connection, n: usize) -> Result<(usize, Option<String>), RedisError> {
    let mut errors = 0;
    let mut first = None;
    for _ in 0..n {
        let bad = match con.recv_response()? {
            Value::BulkString(_) | Value::SimpleString(_) => continue,
            Value::ServerError(e) => format!("{e:?}"),
            other => format!("unexpected reply {other:?}"),
        };
        errors += 1;
        first.get_or_insert(bad);
    }
    Ok((errors, first))
}

impl ClickSink for RedisStreamSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for click in batch {
            self.json.clear();
            click.write_json(&mut self.json);
            self.buf.extend_from_slice(&self.prefix);
            push_len(&mut self.buf, b'$', self.json.len());
            self.buf.extend_from_slice(&self.json);
            self.buf.extend_from_slice(b"\r\n");
        }
        let n = batch.len();
        self.connection()?;
        let con = self.con.as_mut().expect("connected above");
        let sent = con
            .send_packed_command(&self.buf)
            .and_then(|()| read_replies(con, n));
        match sent {
            Ok((0, _)) => Ok(()),
            Ok((errors, first)) => {
                // Not a broken connection, but start afresh (a failover may have made this
                // server a replica: `READONLY`).
                self.con = None;
                Err(self.error(format_args!(
                    "{errors} of {n} XADD replies were errors, first: {}",
                    first.unwrap_or_default()
                )))
            }
            Err(e) => {
                // The connection may be mid-reply: never reuse it.
                self.con = None;
                Err(self.error(format_args!("XADD pipeline of {n}: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_hide_the_password() {
        let s = RedisStreamSink::new("redis://user:s3cret@10.0.0.5:6379/2", "clicks").unwrap();
        let d = format!("{s:?}");
        assert!(
            !d.contains("s3cret") && d.contains("***@10.0.0.5:6379"),
            "{d}"
        );
        let e = s.error("x").to_string();
        assert!(!e.contains("s3cret") && e.contains("10.0.0.5:6379"), "{e}");
        let e = RedisStreamSink::new("redis://u:s3cret@[bad", "c").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(matches!(
            RedisStreamSink::local(""),
            Err(RedisSinkConfigError::EmptyStream)
        ));
    }

    #[test]
    fn commands_are_encoded_as_resp() {
        let s = RedisStreamSink::local("clicks").unwrap();
        assert_eq!(
            s.prefix,
            b"*5\r\n$4\r\nXADD\r\n$6\r\nclicks\r\n$1\r\n*\r\n$4\r\njson\r\n"
        );
        let s = s.max_len(Some(1000));
        assert_eq!(
            s.prefix,
            &b"*8\r\n$4\r\nXADD\r\n$6\r\nclicks\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1000\r\n$1\r\n*\r\n$4\r\njson\r\n"[..]
        );
    }
}
