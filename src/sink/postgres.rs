//! `PostgresSink` (feature `postgres`): each batch `COPY`ed (binary) into a clicks table.

use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::{Client, Config, Statement};

use super::reconnect::Reconnect;
use super::{ClickSink, SinkError};
use crate::click::{Click, tags_json};
use crate::source::PostgresConfigError;
use crate::source::postgres::{
    TableName, connect, parse_config, pg_message, server_of, transient, with_timeouts,
};

/// The click columns, in the order the sink writes them (`unique` is a reserved word: quoted).
const COLUMNS: &str = "ts, click_id, key, location, status, ip, user_agent, referer, country, \
     query, tags, matched, bot, bot_reason, \"unique\", suspicious, suspicious_reason, rule, variant";
const N_COLUMNS: i16 = 19;
/// The per-connection staging table of the redelivery path.
const STAGE: &str = "linkgate_clicks_stage";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC).
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// Writes clicks into a PostgreSQL table with `COPY ... FROM STDIN (FORMAT binary)`, one
/// transaction per batch, idempotently: a redelivered batch adds no duplicate row.
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{ClickRecorder, PostgresSink};
///
/// let sink = PostgresSink::new("host=db.internal user=linkgate dbname=app")?
///     .table("analytics.clicks")?; // created on first connect unless `.create_table(false)`
/// let (recorder, guard) = ClickRecorder::builder(sink).max_batch(1024).spawn()?;
/// // ... recorder.record(click) on every redirect ...
/// let stats = guard.shutdown(Duration::from_secs(5));
/// assert_eq!(stats.recorded, stats.delivered + stats.dropped + stats.failed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Table
/// [`SCHEMA`](Self::SCHEMA) (the crate's `src/sink/clicks.sql`) has one column per field of the
/// click's JSON ([`Click::write_json`]), same names, `click_id` the primary key. With
/// [`create_table`](Self::create_table) on (the default) the sink runs it for the configured
/// table when it connects. Text that is not valid UTF-8 (header values may carry obs-text) is
/// stored with U+FFFD, as in the JSON.
///
/// ```sql
#[doc = include_str!("clicks.sql")]
/// ```
///
/// # Delivery semantics
/// - **Exactly one row per click, even though delivery is at-least-once.** A batch is one
///   transaction holding one binary `COPY`: all of it is committed or none. `write` returns
///   `Ok` only after the `COMMIT` succeeded. When the connection dies around the commit the
///   sink cannot know whether it happened, so the drain writes the batch again; that `COPY`
///   then hits the primary key (`unique_violation`), and the sink falls back to the
///   **redelivery path** for that batch: in one transaction, `COPY` into a temporary staging
///   table, then `INSERT ... SELECT ... ON CONFLICT (click_id) DO NOTHING`. Only the missing
///   rows are added. Consumers of the table need no dedupe.
/// - **Why not always stage?** The staging path writes every row twice and runs two
///   statements instead of one; redelivery is rare (only after a failure), so the common case
///   pays one `COPY` and the rare case pays the rest.
/// - **Why binary `COPY`?** The server skips parsing text for every typed column (the
///   `timestamptz` above all: 8 bytes instead of a date string to parse) and the client skips
///   escaping; see BENCHMARKS.md for the measured difference.
/// - **Durability** is the commit's: with the server's default `synchronous_commit = on` a
///   delivered batch is on disk ([`synchronous_commit(false)`](Self::synchronous_commit)
///   trades that for speed). [`flush`](ClickSink::flush) has nothing left to do.
/// - **Errors**: a dead connection, a timeout, a serialization failure, too little disk... are
///   [`SinkError::Transient`] (the drain retries); data the server refuses for good (class
///   22/23 other than the key) is [`SinkError::Permanent`] (counted failed at once). Messages
///   name the table and the server (`host/dbname`, never the password).
///
/// # Connections and timeouts
/// Constructing the sink only parses the connection string; the first `write` connects (with
/// `application_name` `linkgate-sink`, or `<yours>-sink` if the connection string sets one, so
/// `pg_stat_activity` shows it). After the connection dies (server restart,
/// `pg_terminate_backend`, network) the next write reconnects at once; after a failed connect,
/// writes fail fast (transient) for 50 ms doubling to 1 s before the next attempt. Connecting
/// times out after 5 s (unless the connection string sets `connect_timeout`), statements
/// after 30 s ([`statement_timeout`](Self::statement_timeout)), and TCP keepalives plus a 30 s
/// TCP user timeout catch a silent network: the drain thread never hangs. Give the pipeline a
/// [`RetryPolicy`](crate::RetryPolicy) as long as the outages you want to ride out.
///
/// # Memory
/// The binary `COPY` data of a batch (≈ 400 B per typical click) is built in a buffer reused
/// across batches.
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `table` | `clicks` |
/// | `create_table` | `true` |
/// | `synchronous_commit` | `true` (delivered = committed and flushed to disk) |
/// | `statement_timeout` | 30 s |
/// | `connect_timeout` | 5 s (or the connection string's) |
pub struct PostgresSink {
    config: Config,
    table: TableName,
    create_table: bool,
    synchronous_commit: bool,
    statement_timeout: Duration,
    client: Option<Conn>,
    reconnect: Reconnect,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

/// A live connection and what was prepared on it.
struct Conn {
    client: Client,
    copy: Statement,
    staged: Option<Staged>,
}

/// The redelivery path's statements (prepared on first use).
struct Staged {
    copy: Statement,
    insert: Statement,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("server", &server_of(&self.config))
            .field("table", &self.table.to_string())
            .field("create_table", &self.create_table)
            .field("synchronous_commit", &self.synchronous_commit)
            .field("statement_timeout", &self.statement_timeout)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

/// What one attempt ran into.
enum Failure {
    /// The batch collides with rows already in the table: take the redelivery path.
    Duplicate,
    /// Worth another try, on a fresh connection.
    Retry(String),
    /// The server refuses this data for good.
    Refused(String),
}

impl PostgresSink {
    /// The schema for the default table `clicks` (`src/sink/clicks.sql`); see the type's
    /// documentation.
    pub const SCHEMA: &'static str = include_str!("clicks.sql");

    /// A sink writing to table `clicks` through `connection` (a libpq-style `key=value` string or
    /// a `postgresql://` URL, parsed now; nothing connects until the first write).
    pub fn new(connection: &str) -> Result<PostgresSink, PostgresConfigError> {
        Ok(PostgresSink::from_config(parse_config(connection)?))
    }

    /// A sink using an already built [`postgres::Config`](::postgres::Config).
    pub fn from_config(config: Config) -> PostgresSink {
        PostgresSink {
            config: with_timeouts(config),
            table: TableName::parse("clicks").expect("a valid name"),
            create_table: true,
            synchronous_commit: true,
            statement_timeout: Duration::from_secs(30),
            client: None,
            reconnect: Reconnect::new(),
            buf: Vec::new(),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Writes to this table instead of `clicks`: `name` or `schema.name`, each part
    /// `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes), lower-cased like an unquoted identifier and
    /// quoted in every statement.
    pub fn table(mut self, name: &str) -> Result<PostgresSink, PostgresConfigError> {
        self.table = TableName::parse(name)?;
        Ok(self)
    }

    /// Run [`schema_sql`](Self::schema_sql) on every (re)connect (default `true`). Turn off when
    /// the sink's role may not create tables and the table is managed elsewhere.
    #[must_use]
    pub fn create_table(mut self, on: bool) -> Self {
        self.create_table = on;
        self
    }

    /// Whether a batch counts as delivered only once its commit is on disk (default `true`:
    /// the server's `synchronous_commit`). `false` sets `synchronous_commit = off` for the
    /// sink's session: the commit returns before the WAL is flushed, which saves one disk flush
    /// per batch (the main cost of a batch on a disk with slow flushes; see BENCHMARKS.md).
    /// **Trade-off**: if the *server* crashes, the last batches acknowledged in the previous
    /// ~0.6 s (3 × `wal_writer_delay`) are lost although counted delivered; the table stays
    /// consistent (no torn batch, no duplicate). A dropped connection or an application crash
    /// loses nothing either way.
    #[must_use]
    pub fn synchronous_commit(mut self, on: bool) -> Self {
        self.synchronous_commit = on;
        self
    }

    /// Server-side `statement_timeout` of every statement (default 30 s; at least 1 ms).
    #[must_use]
    pub fn statement_timeout(mut self, d: Duration) -> Self {
        self.statement_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// Timeout of each connection attempt (default 5 s, or the connection string's
    /// `connect_timeout`).
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout(d.max(Duration::from_millis(1)));
        self
    }

    /// The table as used: `name` or `schema.name`, lower-cased.
    pub fn table_name(&self) -> String {
        self.table.to_string()
    }

    /// [`SCHEMA`](Self::SCHEMA) for the configured table.
    pub fn schema_sql(&self) -> String {
        Self::SCHEMA.replace("/*table*/clicks", &self.table.quoted())
    }

    /// Whether a connection is open now (none before the first write, or after a failure).
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    fn message(&self, doing: &str, what: impl fmt::Display) -> String {
        format!(
            "postgres table {} on {}: {doing}: {what}",
            self.table,
            server_of(&self.config)
        )
    }

    fn open(&self) -> Result<Conn, ::postgres::Error> {
        let mut client = connect(&self.config, "sink", self.statement_timeout)?;
        if !self.synchronous_commit {
            client.batch_execute("SET synchronous_commit = off")?;
        }
        if self.create_table {
            let mut tx = client.transaction()?;
            tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('linkgate_clicks_schema'))")?;
            tx.batch_execute(&self.schema_sql())?;
            tx.commit()?;
        }
        let copy = client.prepare(&format!(
            "COPY {} ({COLUMNS}) FROM STDIN (FORMAT binary)",
            self.table.quoted()
        ))?;
        Ok(Conn {
            client,
            copy,
            staged: None,
        })
    }

    /// Connects unless connected (or inside the reconnect backoff).
    fn connection(&mut self) -> Result<(), SinkError> {
        if self.client.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.client = None;
        }
        if self.client.is_some() {
            return Ok(());
        }
        if let Some(w) = self.reconnect.wait() {
            return Err(SinkError::Transient(self.message(
                "not connected",
                format_args!("next connect attempt in {} ms", w.as_millis()),
            )));
        }
        match self.open() {
            Ok(c) => {
                self.reconnect.connected();
                self.client = Some(c);
                Ok(())
            }
            Err(e) => {
                self.reconnect.failed();
                Err(SinkError::Transient(
                    self.message("connecting", pg_message(&e)),
                ))
            }
        }
    }

    /// Encodes a batch as binary `COPY` data into `self.buf`.
    fn encode(&mut self, batch: &[Click]) {
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        for c in batch {
            encode_row(c, buf, &mut self.scratch);
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
    }

    /// The fast path: `BEGIN`, one `COPY` straight into the table, `COMMIT`.
    ///
    /// An explicit transaction rather than an autocommit `COPY`: the driver's `finish` returns
    /// at the `COPY`'s `CommandComplete`, before the implicit commit's outcome is known, while
    /// `commit` returns only once the `COMMIT` itself succeeded.
    fn copy_direct(&mut self) -> Result<(), Failure> {
        let Conn { client, copy, .. } = self.client.as_mut().expect("connected");
        let mut tx = client.transaction().map_err(|e| classify(&e, "BEGIN"))?;
        let mut w = tx.copy_in(copy).map_err(|e| classify(&e, "COPY"))?;
        if let Err(e) = w.write_all(&self.buf) {
            return Err(Failure::Retry(format!("COPY: sending: {e}")));
        }
        w.finish().map_err(|e| classify(&e, "COPY"))?;
        tx.commit().map_err(|e| classify(&e, "COMMIT"))
    }

    /// The redelivery path: staging table + `INSERT ... ON CONFLICT DO NOTHING`, one
    /// transaction.
    fn copy_staged(&mut self) -> Result<(), Failure> {
        let table = self.table.quoted();
        let conn = self.client.as_mut().expect("connected");
        if conn.staged.is_none() {
            let run = |c: &mut Client| -> Result<Staged, ::postgres::Error> {
                c.batch_execute(&format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE {table} INCLUDING DEFAULTS) \
                     ON COMMIT DELETE ROWS"
                ))?;
                Ok(Staged {
                    copy: c.prepare(&format!(
                        "COPY {STAGE} ({COLUMNS}) FROM STDIN (FORMAT binary)"
                    ))?,
                    insert: c.prepare(&format!(
                        "INSERT INTO {table} ({COLUMNS}) SELECT {COLUMNS} FROM {STAGE} \
                         ON CONFLICT (click_id) DO NOTHING"
                    ))?,
                })
            };
            conn.staged = Some(run(&mut conn.client).map_err(|e| classify(&e, "staging"))?);
        }
        let staged = conn.staged.as_ref().expect("prepared above");
        let mut tx = conn
            .client
            .transaction()
            .map_err(|e| classify(&e, "BEGIN"))?;
        let mut w = tx
            .copy_in(&staged.copy)
            .map_err(|e| classify(&e, "COPY to staging"))?;
        if let Err(e) = w.write_all(&self.buf) {
            return Err(Failure::Retry(format!("COPY to staging: sending: {e}")));
        }
        w.finish().map_err(|e| classify(&e, "COPY to staging"))?;
        tx.execute(&staged.insert, &[])
            .map_err(|e| classify(&e, "INSERT ... ON CONFLICT"))?;
        tx.commit().map_err(|e| classify(&e, "COMMIT"))
    }
}

/// Sorts a server or connection error into what the sink does next.
fn classify(e: &::postgres::Error, doing: &str) -> Failure {
    let msg = format!("{doing}: {}", pg_message(e));
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => Failure::Duplicate,
        _ if transient(e) => Failure::Retry(msg),
        Some(c) if c.code().starts_with("22") || c.code().starts_with("23") => {
            Failure::Refused(msg)
        }
        // A statement timeout, a serialization failure, a full disk, a missing table (it is
        // created again on the next connect)...: worth another try on a fresh connection.
        _ => Failure::Retry(msg),
    }
}

impl ClickSink for PostgresSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.encode(batch);
        self.connection()?;
        let mut result = self.copy_direct();
        if let Err(Failure::Duplicate) = result {
            result = self.copy_staged();
        }
        match result {
            Ok(()) => Ok(()),
            Err(Failure::Duplicate) => {
                // Only a unique index other than the primary key can say this now.
                Err(SinkError::Permanent(self.message(
                    "redelivery",
                    "a unique constraint other than click_id rejects the batch",
                )))
            }
            Err(Failure::Retry(msg)) => {
                self.client = None;
                Err(SinkError::Transient(self.message("writing", msg)))
            }
            Err(Failure::Refused(msg)) => Err(SinkError::Permanent(self.message("writing", msg))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Binary COPY encoding: per row, a field count, then per field a length (-1: NULL) and bytes.

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn fixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn boolean(buf: &mut Vec<u8>, v: Option<bool>) {
    match v {
        Some(b) => fixed(buf, &[u8::from(b)]),
        None => null(buf),
    }
}

/// A `text` value: valid UTF-8 without NUL (what PostgreSQL accepts); anything else is
/// replaced with U+FFFD, as the JSON form does.
fn text(buf: &mut Vec<u8>, bytes: &[u8]) {
    let plain = bytes.iter().all(|&b| b != 0 && b < 0x80);
    if plain || (!bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()) {
        fixed(buf, bytes);
    } else {
        let s = String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}");
        fixed(buf, s.as_bytes());
    }
}

fn opt_text(buf: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(b) => text(buf, b),
        None => null(buf),
    }
}

fn encode_row(c: &Click, buf: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    buf.extend_from_slice(&N_COLUMNS.to_be_bytes());
    // ts: timestamptz, microseconds since 2000-01-01 UTC.
    let micros = c.ts.saturating_sub(PG_EPOCH_MS).saturating_mul(1000);
    fixed(buf, &micros.to_be_bytes());
    fixed(buf, &c.click_id.encode());
    text(buf, &c.key);
    text(buf, c.location.as_bytes());
    fixed(buf, &(c.status as i16).to_be_bytes());
    match &c.ip {
        Some(ip) => {
            scratch.clear();
            let _ = write!(scratch, "{ip}");
            fixed(buf, scratch);
        }
        None => null(buf),
    }
    opt_text(buf, c.user_agent.as_ref().map(|h| h.as_bytes()));
    opt_text(buf, c.referer.as_ref().map(|h| h.as_bytes()));
    opt_text(buf, c.country.as_ref().map(|h| h.as_bytes()));
    opt_text(buf, c.query().map(str::as_bytes));
    // tags: jsonb, version byte 1 then the JSON text.
    scratch.clear();
    scratch.push(1);
    tags_json(c.tags.as_deref(), scratch);
    fixed(buf, scratch);
    boolean(buf, Some(c.matched));
    boolean(buf, c.bot);
    let notes = c.notes.as_deref();
    opt_text(buf, notes.and_then(|n| n.bot_reason.as_deref()));
    boolean(buf, c.unique);
    boolean(buf, c.suspicious);
    opt_text(buf, notes.and_then(|n| n.suspicious_reason.as_deref()));
    opt_text(buf, notes.and_then(|n| n.rule.as_deref()));
    opt_text(buf, notes.and_then(|n| n.variant.as_deref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_made_valid() {
        let mut b = Vec::new();
        text(&mut b, b"caf\xe9\0x");
        assert_eq!(&b[4..], "caf\u{FFFD}\u{FFFD}x".as_bytes());
        assert_eq!(
            i32::from_be_bytes(b[..4].try_into().unwrap()) as usize,
            b.len() - 4
        );
        b.clear();
        text(&mut b, "café".as_bytes());
        assert_eq!(&b[4..], "café".as_bytes());
    }

    #[test]
    fn schema_takes_the_table_name_and_debug_hides_the_password() {
        let s = PostgresSink::new("host=db user=u password=s3cret dbname=app")
            .unwrap()
            .table("Analytics.Clicks")
            .unwrap();
        assert!(
            s.schema_sql()
                .contains("CREATE TABLE IF NOT EXISTS \"analytics\".\"clicks\" (")
        );
        let d = format!("{s:?}");
        assert!(!d.contains("s3cret") && d.contains("db/app"), "{d}");
        assert!(
            PostgresSink::new("host=db")
                .unwrap()
                .table("x; drop")
                .is_err()
        );
    }
}
