//! `PostgresSource` (feature `postgres`): links in a PostgreSQL table, reloaded on `NOTIFY`.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{FromSql, Type};
use ::postgres::{Client, Config, IsolationLevel, NoTls, Statement};

use super::{LinkSource, Notifier};
use crate::error::{Errors, LinkError, LoadError};
use crate::link::{Link, Origin, truncate};
use crate::set::LinkSet;

/// Why a [`PostgresSource`] could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresConfigError {
    /// The table name is not a plain (optionally schema-qualified) SQL identifier.
    #[error(
        "table name `{name}` is not a plain SQL identifier: use [A-Za-z_][A-Za-z0-9_]* \
         (at most 63 bytes), optionally schema-qualified as `schema.table`"
    )]
    TableName {
        /// The name as given (truncated).
        name: String,
    },
    /// The connection string could not be parsed.
    #[error("connection string: {reason}")]
    Connection {
        /// What is wrong with it.
        reason: String,
    },
}

impl From<PostgresConfigError> for LoadError {
    fn from(e: PostgresConfigError) -> Self {
        LoadError::Source(format!("postgres: {e}"))
    }
}

/// A validated table name: lower-cased like an unquoted SQL identifier, quoted when used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    pub(crate) fn parse(s: &str) -> Result<TableName, PostgresConfigError> {
        let bad = || PostgresConfigError::TableName {
            name: truncate(s, 140),
        };
        let ident = |part: &str| {
            let mut bytes = part.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
            (first_ok && part.len() <= 63 && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .then(|| part.to_ascii_lowercase())
        };
        let (schema, name) = match s.split_once('.') {
            Some((schema, name)) => (Some(ident(schema).ok_or_else(bad)?), name),
            None => (None, s),
        };
        let name = ident(name).ok_or_else(bad)?;
        Ok(TableName { schema, name })
    }

    /// `"schema"."table"`: safe to splice into SQL (the parts are plain identifiers), and reserved
    /// words such as `user` work.
    pub(crate) fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }

    /// Whether a `linkgate_links` notification is about this table. The payload the shipped
    /// trigger sends is `schema.table`; a bare `table` and an empty payload (a hand-written
    /// `NOTIFY linkgate_links`) are accepted too, the latter as "everyone reload".
    fn matches_payload(&self, payload: &str) -> bool {
        if payload.is_empty() {
            return true;
        }
        match payload.split_once('.') {
            None => payload == self.name,
            Some((schema, name)) => {
                name == self.name && self.schema.as_deref().is_none_or(|s| s == schema)
            }
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Links from a PostgreSQL table, reloaded when the table changes (`LISTEN`/`NOTIFY`).
///
/// # Loading
/// Every load is **one consistent read**: a single `SELECT` of the whole table in a
/// `REPEATABLE READ READ ONLY` transaction, so a reload never mixes two states of the table.
/// Rows are streamed (`query_raw`, with back-pressure on the socket), so a million rows are never
/// held twice: each row becomes a [`Link`] (with [`Origin::Index`] = its position in the
/// result; there is no `ORDER BY`, which would cost a sort) as it arrives. A bad row (a `javascript:` target, an `https://` key, a tag that is
/// not a string...) is reported with its position **and its key**; any bad row fails the whole
/// reload and the table keeps serving its last good snapshot (the [`Reloader`] reports it).
///
/// # Change notification
/// [`watch`](LinkSource::watch) starts a `linkgate-pglisten` thread with its own connection
/// (`application_name` `linkgate-listen`, or `<yours>-listen` if the connection string sets one)
/// that runs `LISTEN linkgate_links` and wakes the
/// reloader for every notification about this table; the triggers of [`SCHEMA`](Self::SCHEMA)
/// send one per statement. The listener checks its connection every
/// [`liveness_interval`](Self::liveness_interval) (and TCP keepalives are on); when the
/// connection dies (server restart, `pg_terminate_backend`, network) it reconnects with backoff
/// (100 ms doubling to 5 s) and then asks for one reload, which picks up whatever changed while
/// it was away. The reloader's `resync_every` stays the last safety net.
///
/// # Failures and timeouts
/// Loads use another connection (`application_name` `linkgate-load`), kept between loads. When
/// it is found dead, or cannot be opened, the load reconnects at once, then with the same backoff,
/// for up to
/// [`retry_for`](Self::retry_for) (10 s) before it fails. Connecting times out after 5 s
/// (unless the connection string sets `connect_timeout`), statements after 60 s
/// ([`statement_timeout`](Self::statement_timeout)); TCP keepalives (15 s idle) and a 30 s TCP
/// user timeout catch a silent network. Nothing waits forever. Connections are plain TCP or
/// Unix sockets (`NoTls`).
///
/// # Schema
/// [`SCHEMA`](Self::SCHEMA) (the crate's `src/source/links.sql`) creates the table and its
/// notify trigger; [`install_schema`](Self::install_schema) runs it for the configured table.
/// Idempotent. The load reads the columns below (casting each, so `integer` for `status` or
/// `json` for `tags` also work) and ignores any others:
///
/// | column | type | link field |
/// |---|---|---|
/// | `key` | `text` primary key | key (normalised; two keys equal after normalisation are a duplicate error) |
/// | `target` | `text not null` | target |
/// | `status` | `smallint`, default 302 | status (301, 302, 303, 307, 308) |
/// | `forward_query`, `forward_path` | `bool`, default false | same |
/// | `cache_seconds` | `integer` null | `cache_seconds` (≥ 0) |
/// | `not_before`, `not_after` | `timestamptz` null | time window (`not_before = -infinity` and `not_after = infinity` mean no bound) |
/// | `tags` | `jsonb` object of strings, default `{}` | tags (sorted by name) |
/// | `updated_at` | `timestamptz` | not read; kept current by a trigger |
///
/// ```sql
#[doc = include_str!("links.sql")]
/// ```
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{LinkTable, PostgresSource, Reloader};
///
/// let source = PostgresSource::new("host=db.internal user=linkgate dbname=app")?
///     .table("redirects.links")?;
/// source.ensure_schema()?; // CREATE TABLE IF NOT EXISTS ... + the trigger
/// let table = LinkTable::new();
/// let _reloader = Reloader::builder(table.clone(), source)
///     .resync_every(Duration::from_secs(300))
///     .on_reload(|outcome| eprintln!("links: {outcome:?}"))
///     .spawn()?;
/// // `UPDATE redirects.links SET target = '...' WHERE key = '/go/x'` now reaches `table`.
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Reloader`]: super::Reloader
pub struct PostgresSource {
    config: Config,
    table: TableName,
    select: String,
    statement_timeout: Duration,
    retry_for: Duration,
    liveness: Duration,
    client: Option<Client>,
    /// The `SELECT`, prepared on `client`; dropped with it and after any failed read.
    statement: Option<Statement>,
    stop: Arc<AtomicBool>,
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSource")
            .field("server", &self.server())
            .field("table", &self.table.to_string())
            .field("statement_timeout", &self.statement_timeout)
            .field("retry_for", &self.retry_for)
            .field("liveness_interval", &self.liveness)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

impl Default for PostgresSource {
    /// [`DEFAULT_CONNECTION`](Self::DEFAULT_CONNECTION), table `links`.
    fn default() -> Self {
        PostgresSource::new(Self::DEFAULT_CONNECTION).expect("the default connection string parses")
    }
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(200);

fn select_sql(table: &TableName) -> String {
    format!(
        "SELECT key::text, target::text, status::int4, forward_query::bool, forward_path::bool, \
         cache_seconds::int8, not_before::timestamptz, not_after::timestamptz, tags::text \
         FROM {}",
        table.quoted()
    )
}

impl PostgresSource {
    /// The schema for the default table `links`: the table, its notify trigger, and an
    /// `updated_at` trigger. See the type's documentation.
    pub const SCHEMA: &'static str = include_str!("links.sql");

    /// The `LISTEN`/`NOTIFY` channel of the shipped trigger.
    pub const CHANNEL: &'static str = "linkgate_links";

    /// The connection string used by [`Default`]: `host=127.0.0.1 user=postgres dbname=test`.
    pub const DEFAULT_CONNECTION: &'static str = "host=127.0.0.1 user=postgres dbname=test";

    /// A source reading table `links` through `connection` (a libpq-style `key=value` string or a
    /// `postgresql://` URL, parsed now; nothing connects until the first load or watch).
    pub fn new(connection: &str) -> Result<PostgresSource, PostgresConfigError> {
        Ok(PostgresSource::from_config(parse_config(connection)?))
    }

    /// A source using an already built [`postgres::Config`](::postgres::Config).
    pub fn from_config(config: Config) -> PostgresSource {
        let config = with_timeouts(config);
        let table = TableName {
            schema: None,
            name: "links".into(),
        };
        PostgresSource {
            config,
            select: select_sql(&table),
            table,
            statement_timeout: Duration::from_secs(60),
            retry_for: Duration::from_secs(10),
            liveness: Duration::from_secs(10),
            client: None,
            statement: None,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Reads this table instead of `links`: `name` or `schema.name`, each part
    /// `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes). Parts are lower-cased, as PostgreSQL does for
    /// unquoted identifiers, and quoted in every statement.
    pub fn table(mut self, name: &str) -> Result<PostgresSource, PostgresConfigError> {
        self.table = TableName::parse(name)?;
        self.select = select_sql(&self.table);
        Ok(self)
    }

    /// Server-side `statement_timeout` of every statement (default 60 s; at least 1 ms).
    pub fn statement_timeout(mut self, d: Duration) -> Self {
        self.statement_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// Timeout of each connection attempt (default 5 s, or the connection string's
    /// `connect_timeout`).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout(d.max(Duration::from_millis(1)));
        self
    }

    /// How long a load keeps reconnecting (with backoff) before it fails (default 10 s). Also
    /// bounds how long dropping the [`Reloader`](super::Reloader) can wait for a load.
    pub fn retry_for(mut self, d: Duration) -> Self {
        self.retry_for = d;
        self
    }

    /// How often an idle listener checks that its connection is alive (default 10 s).
    pub fn liveness_interval(mut self, d: Duration) -> Self {
        self.liveness = d.max(Duration::from_millis(100));
        self
    }

    /// The table as used: `name` or `schema.name`, lower-cased.
    pub fn table_name(&self) -> String {
        self.table.to_string()
    }

    /// [`SCHEMA`](Self::SCHEMA) for the configured table.
    pub fn schema_sql(&self) -> String {
        Self::SCHEMA.replace("/*table*/links", &self.table.quoted())
    }

    /// Creates the table and (re)installs its triggers ([`schema_sql`](Self::schema_sql)) in one
    /// transaction, under an advisory lock so that instances starting together don't collide.
    /// Idempotent; existing rows are kept.
    pub fn install_schema(&self, client: &mut Client) -> Result<(), LoadError> {
        let run = |client: &mut Client| -> Result<(), ::postgres::Error> {
            let mut tx = client.transaction()?;
            tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('linkgate_links_schema'))")?;
            tx.batch_execute(&self.schema_sql())?;
            tx.commit()
        };
        run(client).map_err(|e| self.error("installing the schema", &e))
    }

    /// Connects with this source's settings and runs [`install_schema`](Self::install_schema).
    pub fn ensure_schema(&self) -> Result<(), LoadError> {
        let mut client = self
            .connect("admin")
            .map_err(|e| self.error("connecting", &e))?;
        self.install_schema(&mut client)
    }

    fn server(&self) -> String {
        server_of(&self.config)
    }

    fn error(&self, doing: &str, e: &::postgres::Error) -> LoadError {
        LoadError::Source(format!(
            "postgres table {} on {}: {doing}: {}",
            self.table,
            self.server(),
            pg_message(e)
        ))
    }

    fn connect(&self, role: &str) -> Result<Client, ::postgres::Error> {
        connect(&self.config, role, self.statement_timeout)
    }

    /// One attempt: (re)connect if needed, then read the table.
    fn load_once(&mut self) -> Result<LinkSet, Attempt> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statement = None;
            let c = self
                .connect("load")
                .map_err(|e| Attempt::Retry(self.error("connecting", &e)))?;
            self.client = Some(c);
        }
        let client = self.client.as_mut().expect("connected above");
        let result = read_links(client, &mut self.statement, &self.select);
        match result {
            Ok(set) => set.map_err(Attempt::Fail),
            Err(e) => {
                // A changed table can invalidate the prepared statement: prepare afresh.
                self.statement = None;
                let err = self.error("loading", &e);
                if self.client.as_ref().is_none_or(Client::is_closed) || transient(&e) {
                    self.client = None;
                    Err(Attempt::Retry(err))
                } else {
                    Err(Attempt::Fail(err))
                }
            }
        }
    }
}

impl Drop for PostgresSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

enum Attempt {
    /// The connection failed or died: worth another try.
    Retry(LoadError),
    /// The read or its content is wrong: trying again will not help.
    Fail(LoadError),
}

/// 100 ms doubling to 5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }
    fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        d
    }
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// The connect timeout, TCP user timeout and keepalives linkgate uses unless the connection
/// string sets them: nothing waits forever on a silent network.
pub(crate) fn with_timeouts(mut config: Config) -> Config {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    if config.get_keepalives_idle() >= Duration::from_secs(2 * 60 * 60) {
        // libpq's default is the OS's (2 h): far too slow to notice a dead listener.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(15));
        config.keepalives_interval(Duration::from_secs(5));
        config.keepalives_retries(3);
    }
    config
}

/// `host/dbname` (never the password) for messages.
pub(crate) fn server_of(config: &Config) -> String {
    use ::postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
}

pub(crate) fn connect(
    config: &Config,
    role: &str,
    statement_timeout: Duration,
) -> Result<Client, ::postgres::Error> {
    let mut config = config.clone();
    let app = match config.get_application_name() {
        Some(a) => format!("{a}-{role}"),
        None => format!("linkgate-{role}"),
    };
    config.application_name(&app);
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!(
        "SET statement_timeout = {}",
        statement_timeout.as_millis().min(i32::MAX as u128)
    ))?;
    Ok(client)
}

/// Connection-level failures worth a reconnect even if the client still looks open.
pub(crate) fn transient(e: &::postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P")
        })
        || e.source()
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
}

/// The error and its causes on one line (`db error: ERROR: relation "x" does not exist`).
/// Parses a libpq-style `key=value` string or a `postgresql://` URL (nothing connects).
pub(crate) fn parse_config(connection: &str) -> Result<Config, PostgresConfigError> {
    connection
        .parse()
        .map_err(|e: ::postgres::Error| PostgresConfigError::Connection {
            reason: pg_message(&e),
        })
}

pub(crate) fn pg_message(e: &::postgres::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// A `timestamptz` as Unix milliseconds, keeping `±infinity` apart.
enum PgTime {
    Ms(i64),
    Infinity,
    MinusInfinity,
}

impl<'a> FromSql<'a> for PgTime {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // Microseconds since 2000-01-01 00:00 UTC.
        let micros = i64::from_be_bytes(raw.try_into()?);
        Ok(match micros {
            i64::MAX => PgTime::Infinity,
            i64::MIN => PgTime::MinusInfinity,
            m => PgTime::Ms(m.div_euclid(1000) + 946_684_800_000),
        })
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ || *ty == Type::TIMESTAMP
    }
}

/// The whole table in one `REPEATABLE READ READ ONLY` transaction, streamed: each row becomes a
/// link as it arrives. The outer error is the database's; the inner one the rows'.
///
/// (Converting on a second thread, a few batches behind the reader, was tried: on a 2-core
/// machine shared with the server it cost 15-20 % more CPU and was no faster.)
fn read_links(
    client: &mut Client,
    statement: &mut Option<Statement>,
    select: &str,
) -> Result<Result<LinkSet, LoadError>, ::postgres::Error> {
    let statement = match statement {
        Some(s) => s.clone(),
        None => statement.insert(client.prepare(select)?).clone(),
    };
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut links = Vec::new();
    let mut errors = Errors::default();
    {
        let mut rows = tx.query_raw(&statement, std::iter::empty::<i32>())?;
        let mut i = 0usize;
        while let Some(row) = rows.next()? {
            let origin = Origin::Index(i);
            i += 1;
            match row_to_link(&row, origin) {
                // After the first bad row only the errors matter.
                Ok(link) if errors.is_empty() => links.push(link),
                Ok(_) => {}
                Err(problem) => errors.push(origin, problem),
            }
        }
    }
    tx.commit()?;
    Ok(errors.into_result().map(|()| LinkSet::from(links)))
}

fn row_to_link(row: &::postgres::Row, origin: Origin) -> Result<Link, LinkError> {
    let field = |field: &'static str, reason: String| LinkError::Field { field, reason };
    let key: Option<&str> = row.try_get(0).map_err(|e| field("key", e.to_string()))?;
    let Some(key) = key else {
        return Err(field("key", "is NULL".into()));
    };
    // Every other problem names the key: the row number alone says little.
    let named = |e: String| field("row", format!("key `{}`: {e}", truncate(key, 80)));
    let col = |e: ::postgres::Error| named(pg_message(&e));
    let target: Option<&str> = row.try_get(1).map_err(col)?;
    let target = target.ok_or_else(|| named("target is NULL".into()))?;
    let mut b = Link::builder(key, target).origin(origin);
    if let Some(s) = row.try_get::<_, Option<i32>>(2).map_err(col)? {
        let s =
            u16::try_from(s).map_err(|_| named(format!("status {s} is not a redirect status")))?;
        b = b.status(s);
    }
    b = b
        .forward_query(
            row.try_get::<_, Option<bool>>(3)
                .map_err(col)?
                .unwrap_or(false),
        )
        .forward_path(
            row.try_get::<_, Option<bool>>(4)
                .map_err(col)?
                .unwrap_or(false),
        );
    if let Some(c) = row.try_get::<_, Option<i64>>(5).map_err(col)? {
        let c = u32::try_from(c).map_err(|_| {
            named(format!(
                "cache_seconds {c} is out of range (0 to {})",
                u32::MAX
            ))
        })?;
        b = b.cache_seconds(c);
    }
    match row.try_get::<_, Option<PgTime>>(6).map_err(col)? {
        None | Some(PgTime::MinusInfinity) => {}
        Some(PgTime::Ms(ms)) => b = b.not_before(ms),
        Some(PgTime::Infinity) => b = b.not_before(i64::MAX),
    }
    match row.try_get::<_, Option<PgTime>>(7).map_err(col)? {
        None | Some(PgTime::Infinity) => {}
        Some(PgTime::Ms(ms)) => b = b.not_after(ms),
        Some(PgTime::MinusInfinity) => b = b.not_after(i64::MIN),
    }
    if let Some(tags) = row.try_get::<_, Option<&str>>(8).map_err(col)? {
        for (n, v) in parse_tags(tags).map_err(|e| named(format!("tags: {e}")))? {
            b = b.tag(n, v);
        }
    }
    b.build().map_err(|e| named(e.to_string()))
}

/// A JSON object of strings, sorted by name.
fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let t = text.trim();
    if t == "{}" || t.is_empty() || t == "null" {
        return Ok(out);
    }
    let v: serde_json::Value = serde_json::from_str(t).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = v else {
        return Err(format!(
            "must be a JSON object of strings, not {}",
            json_kind(&v)
        ));
    };
    for (name, value) in map {
        match value {
            serde_json::Value::String(s) => {
                out.insert(name, s);
            }
            other => {
                return Err(format!(
                    "tag `{}` must be a JSON string, not {}",
                    truncate(&name, 40),
                    json_kind(&other)
                ));
            }
        }
    }
    Ok(out)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn nap(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

impl LinkSource for PostgresSource {
    fn load(&mut self) -> Result<LinkSet, LoadError> {
        let start = Instant::now();
        let mut backoff = Backoff::new();
        let mut tries = 0u32;
        loop {
            tries += 1;
            match self.load_once() {
                Ok(set) => return Ok(set),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(e)) => {
                    // The first retry is immediate: a connection found dead after a quiet
                    // spell (terminated, server restarted) usually reconnects at once.
                    let delay = if tries == 1 {
                        Duration::ZERO
                    } else {
                        backoff.delay()
                    };
                    if start.elapsed() + delay > self.retry_for {
                        return Err(match e {
                            LoadError::Source(m) => LoadError::Source(format!(
                                "{m} (gave up after {tries} attempt{} in {:.1} s)",
                                if tries == 1 { "" } else { "s" },
                                start.elapsed().as_secs_f64()
                            )),
                            other => other,
                        });
                    }
                    std::thread::sleep(delay);
                }
            }
        }
    }

    fn watch(&mut self, notifier: Notifier) -> Result<(), LoadError> {
        let listener = Listener {
            config: self.config.clone(),
            table: self.table.clone(),
            statement_timeout: self.statement_timeout,
            liveness: self.liveness,
            notifier,
            stop: self.stop.clone(),
        };
        // Listen before the first load (the reloader loads right after `watch`), so no change
        // falls between the two. If the server is unreachable now, the thread keeps trying and
        // asks for a reload once it is listening.
        let first = listener.listen().ok();
        std::thread::Builder::new()
            .name("linkgate-pglisten".into())
            .spawn(move || listener.run(first))
            .map_err(|e| LoadError::Source(format!("starting the postgres listener: {e}")))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("postgres table {} on {}", self.table, self.server())
    }
}

struct Listener {
    config: Config,
    table: TableName,
    statement_timeout: Duration,
    liveness: Duration,
    notifier: Notifier,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn listen(&self) -> Result<Client, ::postgres::Error> {
        let mut client = connect(&self.config, "listen", self.statement_timeout)?;
        client.batch_execute(&format!("LISTEN {}", PostgresSource::CHANNEL))?;
        Ok(client)
    }

    fn run(self, first: Option<Client>) {
        let mut backoff = Backoff::new();
        let mut client = first;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let mut c = match client.take() {
                Some(c) => c,
                None => {
                    nap(&self.stop, backoff.delay());
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    match self.listen() {
                        // Changes made while nobody listened: one full reload catches up.
                        Ok(c) => {
                            self.notifier.notify();
                            c
                        }
                        Err(_) => continue,
                    }
                }
            };
            let up = Instant::now();
            self.serve(&mut c);
            // A connection that held a while earns a fast reconnect; a flapping one backs off.
            if up.elapsed() >= Duration::from_secs(5) {
                backoff.reset();
            }
        }
    }

    /// Relays notifications until the connection dies or the source is dropped.
    fn serve(&self, client: &mut Client) {
        let mut checked = Instant::now();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            {
                let mut notifications = client.notifications();
                let mut it = notifications.timeout_iter(POLL.min(self.liveness));
                loop {
                    match it.next() {
                        Ok(Some(n)) => {
                            checked = Instant::now();
                            if n.channel() == PostgresSource::CHANNEL
                                && self.table.matches_payload(n.payload())
                            {
                                self.notifier.notify();
                            }
                        }
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
            if client.is_closed() {
                return;
            }
            if checked.elapsed() >= self.liveness {
                if client
                    .is_valid(self.liveness.min(Duration::from_secs(5)))
                    .is_err()
                {
                    return;
                }
                checked = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        let t = TableName::parse("links").unwrap();
        assert_eq!(
            (t.quoted(), t.to_string()),
            ("\"links\"".into(), "links".into())
        );
        let t = TableName::parse("Redirects.My_Links2").unwrap();
        assert_eq!(t.quoted(), "\"redirects\".\"my_links2\"");
        for bad in [
            "",
            "1links",
            "links;drop",
            "a.b.c",
            "\"links\"",
            "li nks",
            ".links",
            "links.",
            "lïnks",
            &"x".repeat(64),
        ] {
            assert!(
                matches!(
                    TableName::parse(bad),
                    Err(PostgresConfigError::TableName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(TableName::parse(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn payloads() {
        let plain = TableName::parse("links").unwrap();
        assert!(plain.matches_payload("public.links"));
        assert!(plain.matches_payload("other.links"));
        assert!(plain.matches_payload("links"));
        assert!(plain.matches_payload(""));
        assert!(!plain.matches_payload("public.links2"));
        let q = TableName::parse("app.links").unwrap();
        assert!(q.matches_payload("app.links"));
        assert!(!q.matches_payload("public.links"));
    }

    #[test]
    fn schema_rendering() {
        let s = PostgresSource::default().table("app.redirects").unwrap();
        let sql = s.schema_sql();
        assert!(!sql.contains("/*table*/links"));
        assert_eq!(sql.matches("\"app\".\"redirects\"").count(), 5);
        assert_eq!(PostgresSource::SCHEMA.matches("/*table*/links").count(), 5);
    }

    #[test]
    fn tags() {
        assert!(parse_tags("{}").unwrap().is_empty());
        let t = parse_tags(r#"{"b": "2", "a": "1"}"#).unwrap();
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(parse_tags(r#"{"a": 1}"#).unwrap_err().contains("a number"));
        assert!(parse_tags("[]").unwrap_err().contains("an array"));
    }

    #[test]
    fn backoff() {
        let mut b = Backoff::new();
        let ds: Vec<u128> = (0..8).map(|_| b.delay().as_millis()).collect();
        assert_eq!(ds, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.delay().as_millis(), 100);
    }

    #[test]
    fn connection_strings() {
        assert!(PostgresSource::new("host=x user=y dbname=z").is_ok());
        assert!(PostgresSource::new("postgresql://u@h/db").is_ok());
        assert!(matches!(
            PostgresSource::new("host=x bogus_key=1"),
            Err(PostgresConfigError::Connection { .. })
        ));
        let s = PostgresSource::default();
        assert_eq!(s.describe(), "postgres table links on 127.0.0.1/test");
    }
}
