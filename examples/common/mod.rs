//! What the three example servers share: flags, loading, the click pipeline, live reload
//! (SIGHUP or a change to the links file), and the final report. Each server file only wires
//! its framework.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use linkgate::{
    BotDetector, BotPolicy, ClickRecorder, DrainGuard, FileSource, FloodDetector, Gate,
    JsonLinesSink, LinkTable, ReloadOutcome, Reloader, UniqueFilter, UnknownPolicy,
};

/// A linkgate example server: redirects under --prefix from the --links file, clicks to --clicks.
#[derive(Debug, Parser)]
pub struct Args {
    /// Links file (format by extension: .map/.conf, .csv, .json).
    #[arg(long, default_value = "examples/links.map")]
    pub links: PathBuf,
    /// JSON-lines file clicks are appended to.
    #[arg(long, default_value = "clicks.jsonl")]
    pub clicks: PathBuf,
    /// Serve redirects without recording clicks (the click file is not opened): to measure
    /// what click logging costs.
    #[arg(long)]
    pub no_clicks: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Path prefix the redirects live under.
    #[arg(long, default_value = "/go/")]
    pub prefix: String,
    /// Worker threads (default: number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Unknown keys under the prefix: `redirect` to the table's default, or `pass` to the app (404).
    #[arg(long, value_enum, default_value_t = Unknown::Redirect)]
    pub unknown: Unknown,
    /// Bot and link-preview clicks: `flag` them in the click log, `redirect` them to the link's
    /// bot target (or its target without the query string), `dont-record` them, or `off` (no
    /// classification).
    #[arg(long, value_enum, default_value_t = Bots::Flag)]
    pub bots: Bots,
    /// Request header holding the visitor's country (e.g. `cf-ipcountry`), for clicks and
    /// country rules.
    #[arg(long)]
    pub country_header: Option<http::HeaderName>,
    /// Mark repeat clicks of a visitor on a key within 24 h `unique: false` (fixed 56 MiB).
    #[arg(long)]
    pub unique: bool,
    /// Flag clicks beyond this many per minute from one IPv4 address or IPv6 /64
    /// `suspicious: true` (fixed 8 MiB; off when not given).
    #[arg(long)]
    pub flood_limit: Option<u32>,
}

/// `--bots` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bots {
    /// No classification.
    Off,
    /// Record with `bot: true` and the reason.
    Flag,
    /// Send to the bot target, record with `bot: true`.
    Redirect,
    /// Serve, but record nothing.
    DontRecord,
}

/// `--unknown` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Unknown {
    /// The table's default redirect (nginx `map` `default`).
    Redirect,
    /// Hand to the app, which answers 404.
    Pass,
}

/// A configured server: table, gate, pipeline.
pub struct Setup {
    pub args: Args,
    pub table: LinkTable,
    pub gate: Gate,
    pub guard: DrainGuard,
    pub threads: usize,
    pub reloader: Reloader,
}

/// Parses flags, loads links, opens the click file and starts the pipeline and the reloader.
/// Any failure is printed with its file/line and becomes a non-zero exit code.
pub fn setup(server: &str) -> Result<Setup, ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(1)
    };
    let set = linkgate::load_file(&args.links).map_err(|e| fail(e.to_string()))?;
    let table = LinkTable::builder().max_removed_fraction(0.5).build();
    let report = table
        .reload(set)
        .map_err(|e| fail(format!("links file {}: {e}", args.links.display())))?;
    let pipeline = if args.no_clicks {
        ClickRecorder::builder(()).spawn()
    } else {
        let sink = JsonLinesSink::open(&args.clicks)
            .map_err(|e| fail(format!("click file {}: {e}", args.clicks.display())))?;
        ClickRecorder::builder(sink).spawn()
    };
    let (recorder, guard) =
        pipeline.map_err(|e| fail(format!("starting the click pipeline: {e}")))?;
    let unknown = match args.unknown {
        Unknown::Redirect => UnknownPolicy::Redirect,
        Unknown::Pass => UnknownPolicy::Pass,
    };
    let mut gate = Gate::builder(table.clone(), recorder)
        .prefix(args.prefix.clone())
        .unknown(unknown)
        .record_clicks(!args.no_clicks);
    if let Some(h) = &args.country_header {
        gate = gate.country_header(h.clone());
    }
    let policy = match args.bots {
        Bots::Off => None,
        Bots::Flag => Some(BotPolicy::Flag),
        Bots::Redirect => Some(BotPolicy::Redirect),
        Bots::DontRecord => Some(BotPolicy::DontRecord),
    };
    if let Some(p) = policy {
        let detector = BotDetector::builder()
            .build()
            .map_err(|e| fail(format!("bot patterns: {e}")))?;
        gate = gate.bots(detector).bot_policy(p);
    }
    if args.unique {
        let filter = std::sync::Arc::new(
            UniqueFilter::builder()
                .build()
                .map_err(|e| fail(format!("unique filter: {e}")))?,
        );
        // Housekeeping: rotate generations here so no request pays for clearing one.
        let f = filter.clone();
        std::thread::Builder::new()
            .name("linkgate-rotate".into())
            .spawn(move || {
                loop {
                    f.rotate(linkgate::system_now_ms());
                    std::thread::sleep(Duration::from_secs(60));
                }
            })
            .map_err(|e| fail(format!("starting the rotation thread: {e}")))?;
        gate = gate.unique(filter);
    }
    if let Some(limit) = args.flood_limit {
        let detector = FloodDetector::builder()
            .limit(limit)
            .build()
            .map_err(|e| fail(format!("flood detector: {e}")))?;
        gate = gate.flood(detector);
    }
    let gate = gate.build();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let clicks = if args.no_clicks {
        "nowhere (--no-clicks)".to_string()
    } else {
        args.clicks.display().to_string()
    };
    tracing::info!(
        "linkgate {server}: {} links loaded from {}, clicks to {clicks}, serving {} on http://{} ({threads} threads)",
        report.links,
        args.links.display(),
        args.prefix,
        args.listen
    );
    let reloader = spawn_reloader(table.clone(), args.links.clone())
        .map_err(|e| fail(format!("starting the reloader: {e}")))?;
    Ok(Setup {
        args,
        table,
        gate,
        guard,
        threads,
        reloader,
    })
}

/// Reloads through a `FileSource` (filesystem watch + poll fallback, settle delay against
/// half-written files) and on SIGHUP. A bad or missing file is logged; the current table keeps
/// serving.
fn spawn_reloader(table: LinkTable, path: PathBuf) -> Result<Reloader, String> {
    let source = FileSource::new(&path).map_err(|e| e.to_string())?;
    let shown = path.display().to_string();
    let current = table.clone();
    let reloader = Reloader::builder(table, source)
        .on_reload(move |outcome| match outcome {
            ReloadOutcome::Reloaded(r) if r.version > 1 => tracing::info!(
                "reloaded {shown}: {} links, +{} -{} ~{}, version {}",
                r.links,
                r.added,
                r.removed,
                r.changed,
                r.version
            ),
            ReloadOutcome::Failed(e) => {
                tracing::error!(
                    "reload of {shown} failed; keeping {} links: {e}",
                    current.len()
                )
            }
            _ => {}
        })
        .spawn()
        .map_err(|e| e.to_string())?;
    let notifier = reloader.notifier();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| format!("SIGHUP handler: {e}"))?;
    std::thread::Builder::new()
        .name("linkgate-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::info!("SIGHUP: reloading");
                notifier.notify();
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(reloader)
}

/// A multi-threaded tokio runtime with `threads` workers (axum and hyper examples).
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: tokio runtime: {e}");
            ExitCode::from(1)
        })
}

/// Reports a serving error, still shuts the click pipeline down, and exits non-zero.
pub fn served(setup: Setup, result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => finish(setup),
        Err(e) => {
            eprintln!("error: serving on {}: {e}", setup.args.listen);
            let _ = finish(setup);
            ExitCode::from(1)
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}

/// Shuts the click pipeline down (every click written) and prints the final stats.
pub fn finish(setup: Setup) -> ExitCode {
    let Setup {
        guard,
        gate,
        reloader,
        ..
    } = setup;
    drop(reloader);
    let g = gate.stats();
    tracing::info!(
        "redirects: {} ({} unmatched), bots {} ({} previews, {} redirected, {} not recorded), rule matches {}, split choices {}, capped {}, duplicates {}, suspicious {}",
        g.redirects,
        g.unmatched,
        g.bots,
        g.previews,
        g.bots_redirected,
        g.bots_not_recorded,
        g.rule_matches,
        g.split_choices,
        g.capped,
        g.duplicates,
        g.suspicious
    );
    drop(gate);
    let s = guard.shutdown(Duration::from_secs(10));
    tracing::info!(
        "clicks: recorded {}, delivered {}, dropped {}, failed {}, in flight {}{}",
        s.recorded,
        s.delivered,
        s.dropped,
        s.failed,
        s.in_flight,
        s.last_error
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default()
    );
    if s.in_flight == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
