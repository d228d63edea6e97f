//! Link-file formats: nginx `map`, CSV and JSON. Each parser returns a [`LinkSet`] or a
//! [`LoadError`] naming line and column.
//!
//! | format | extensions | notes |
//! |---|---|---|
//! | nginx map | `.map`, `.conf` | the `map $uri $var { ... }` block, or bare `key value;` lines |
//! | CSV | `.csv` | header row `key,target[,status][,...]`, RFC 4180 quoting |
//! | JSON | `.json` | array of link objects, or `{"default": ..., "links": [...]}` (feature `json`) |

mod csv;
#[cfg(feature = "json")]
mod json;
mod nginx;

#[cfg(feature = "json")]
pub use json::apply_routing;

use std::path::Path;

use crate::error::{LoadError, SyntaxError};
use crate::set::LinkSet;

/// A link-file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// nginx `map` block or bare `key value;` entries.
    NginxMap,
    /// CSV with a header row.
    Csv,
    /// JSON (feature `json`).
    Json,
}

impl Format {
    /// The format for a file name's extension (`.map`/`.conf`, `.csv`, `.json`).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Format, LoadError> {
        let path = path.as_ref();
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("map" | "conf") => Ok(Format::NginxMap),
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            _ => Err(LoadError::UnknownFormat {
                path: path.display().to_string(),
            }),
        }
    }

    /// Parses a whole file's bytes (UTF-8; a leading BOM is skipped; CRLF line ends are fine).
    pub fn parse(self, input: &[u8]) -> Result<LinkSet, LoadError> {
        let text = utf8(input).map_err(|error| LoadError::Syntax { path: None, error })?;
        match self {
            Format::NginxMap => nginx::parse(text),
            Format::Csv => csv::parse(text),
            #[cfg(feature = "json")]
            Format::Json => json::parse(text),
            #[cfg(not(feature = "json"))]
            Format::Json => Err(LoadError::Syntax {
                path: None,
                error: SyntaxError {
                    line: 1,
                    column: 1,
                    message: "JSON link files need linkgate's `json` feature".into(),
                },
            }),
        }
    }
}

/// Reads and parses a link file, choosing the format by extension.
///
/// With feature `json`, a CSV or nginx-map file `links.csv` gets its routing (rules, split,
/// caps) from a side file `links.csv.routing.json` when one exists (see [`apply_routing`]).
///
/// ```no_run
/// let links = linkgate::load_file("examples/links.map")?;
/// let table = linkgate::LinkTable::from_links(links)?;
/// # Ok::<(), linkgate::LoadError>(())
/// ```
#[cfg(feature = "os")]
pub fn load_file(path: impl AsRef<Path>) -> Result<LinkSet, LoadError> {
    let path = path.as_ref();
    let format = Format::from_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let set = format.parse(&bytes).map_err(|e| with_path(e, path))?;
    #[cfg(feature = "json")]
    if format != Format::Json {
        let mut side = path.as_os_str().to_owned();
        side.push(".routing.json");
        let side = Path::new(&side);
        match std::fs::read_to_string(side) {
            Ok(text) => return apply_routing(set, &text).map_err(|e| with_path(e, side)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(LoadError::Io {
                    path: side.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(set)
}

/// Adds the file name to a syntax error.
#[cfg(feature = "os")]
pub(crate) fn with_path(e: LoadError, path: &Path) -> LoadError {
    match e {
        LoadError::Syntax { path: None, error } => LoadError::Syntax {
            path: Some(path.display().to_string()),
            error,
        },
        other => other,
    }
}

fn utf8(input: &[u8]) -> Result<&str, SyntaxError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    std::str::from_utf8(input).map_err(|e| {
        let (line, column) = line_col(input, e.valid_up_to());
        SyntaxError {
            line,
            column,
            message: "not UTF-8 text (a binary file?)".into(),
        }
    })
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(input: &[u8], offset: usize) -> (usize, usize) {
    let before = &input[..offset.min(input.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

pub(crate) fn syntax(line: usize, column: usize, message: impl Into<String>) -> LoadError {
    LoadError::Syntax {
        path: None,
        error: SyntaxError {
            line,
            column,
            message: message.into(),
        },
    }
}

/// Parses a yes/no field.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Some(false),
        "1" | "true" | "yes" | "on" => Some(true),
        _ => None,
    }
}
