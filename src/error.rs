//! Error types. Every variant names the culprit: the field, the entry (line or index), the key.

use std::fmt;

use crate::link::Origin;
use crate::target::TargetError;

/// Why a [`Link`](crate::Link) could not be built. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The key is malformed.
    #[error("key `{key}`: {reason}")]
    Key {
        /// The key as given (truncated).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target is not a safe `http(s)` URL or same-site path.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Not a redirect status.
    #[error("status {status} is not a redirect status: use 301, 302, 303, 307 or 308")]
    Status {
        /// The status given.
        status: u16,
    },
    /// `forward_path` on a key that does not end in `/*`.
    #[error("forward_path is set but key `{key}` does not end in `/*`")]
    ForwardPath {
        /// The key.
        key: String,
    },
    /// `not_after` is not after `not_before`.
    #[error("not_after ({not_after}) must be after not_before ({not_before})")]
    Window {
        /// Start, Unix ms.
        not_before: i64,
        /// End, Unix ms.
        not_after: i64,
    },
    /// A bad tag.
    #[error("tag `{name}`: {reason}")]
    Tag {
        /// The tag name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A targeting rule is invalid.
    #[error("rule `{rule}`, {field}: {reason}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// The rule field at fault (`name`, `target`, `country`, `language`, `before`...).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A split variant is invalid.
    #[error("split variant `{variant}`: {reason}")]
    Variant {
        /// The variant's name.
        variant: String,
        /// What is wrong.
        reason: String,
    },
    /// A field of a link file that could not be read (CSV column, JSON field, map value).
    #[error("{field}: {reason}")]
    Field {
        /// The field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// What is wrong with one entry of a load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// The entry is not a valid link.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Two entries normalise to the same key.
    #[error("duplicate key `{key}` (after normalisation), first defined at {first}")]
    Duplicate {
        /// The normalised key.
        key: String,
        /// Where the first one is.
        first: Origin,
    },
    /// The entry's target leads back into the table in a cycle.
    #[error("redirect loop: {}", chain.join(" -> "))]
    Loop {
        /// The keys of the cycle, first key repeated at the end.
        chain: Vec<String>,
    },
}

/// One bad entry of a load: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// Line/column or list index.
    pub origin: Origin,
    /// The problem.
    pub problem: EntryProblem,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.problem)
    }
}

impl std::error::Error for EntryError {}

/// A syntax error in a link file, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Most entry errors a [`LoadError::Invalid`] keeps; the rest are only counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Why a load or reload was refused. The table keeps serving its current snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// One or more entries are invalid. Up to [`MAX_REPORTED_ERRORS`] are listed.
    #[error("{total} invalid entr{}{}", if *total == 1 { "y" } else { "ies" }, list(errors, *total))]
    Invalid {
        /// The first errors, in file order.
        errors: Vec<EntryError>,
        /// How many entries were bad in all.
        total: usize,
    },
    /// The file is not well-formed.
    #[error("{}{error}", path_prefix(path))]
    Syntax {
        /// The file, if loaded from one.
        path: Option<String>,
        /// Where and what.
        error: SyntaxError,
    },
    /// The reload would remove more links than the guard allows.
    #[error(
        "refusing reload: it removes {removed} of {current} links ({:.1} %), more than max_removed_fraction {:.1} %; \
         use a forced reload if this is intended",
        100.0 * *removed as f64 / (*current).max(1) as f64,
        100.0 * max_fraction
    )]
    TooManyRemoved {
        /// Links the reload would remove.
        removed: usize,
        /// Links in the current table.
        current: usize,
        /// The configured guard.
        max_fraction: f64,
    },
    /// The file's format could not be told from its name.
    #[error("{path}: unknown link-file format (use .map/.conf, .csv or .json, or name the format)")]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A link source failed (network, database...).
    #[error("link source: {0}")]
    Source(String),
}

fn path_prefix(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

fn list(errors: &[EntryError], total: usize) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str("\n  ");
        s.push_str(&e.to_string());
    }
    if total > errors.len() {
        s.push_str(&format!("\n  ... and {} more", total - errors.len()));
    }
    s
}

/// Collects entry errors up to the cap.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    errors: Vec<EntryError>,
    total: usize,
}

impl Errors {
    pub(crate) fn push(&mut self, origin: Origin, problem: impl Into<EntryProblem>) {
        self.total += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(EntryError {
                origin,
                problem: problem.into(),
            });
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub(crate) fn into_result(mut self) -> Result<(), LoadError> {
        if self.total == 0 {
            Ok(())
        } else {
            self.errors.sort_by_key(|e| match e.origin {
                Origin::Line { line, column } => (line, column),
                Origin::Index(i) => (i, 0),
            });
            Err(LoadError::Invalid {
                errors: self.errors,
                total: self.total,
            })
        }
    }
}
