//! CSV: a header row naming the columns, then one link per row (RFC 4180 quoting, via the `csv`
//! crate).
//!
//! Columns `key` and `target` are required and come first. Optional columns, by header name:
//! `status`, `forward_query`, `forward_path` (`true`/`false`/`1`/`0`/`yes`/`no`), `cache_seconds`,
//! `not_before`, `not_after` (RFC 3339 UTC or Unix seconds). Every other column is a tag named by
//! its header (`campaign`, `affiliate`...); empty cells add no tag.
//!
//! ```text
//! key,target,status,campaign
//! /go/summer-deal,https://store.com/p/123?ref=aff_01,302,summer
//! ```

use crate::clock::parse_instant;
use crate::error::{Errors, LoadError};
use crate::link::{Link, Origin};
use crate::set::LinkSet;

use super::{line_col, parse_bool, syntax};

#[derive(Clone, Copy)]
enum Col {
    Key,
    Target,
    Status,
    ForwardQuery,
    ForwardPath,
    Cache,
    NotBefore,
    NotAfter,
    Tag(usize),
}

/// Parses a CSV link file.
pub(crate) fn parse(text: &str) -> Result<LinkSet, LoadError> {
    if let Some(open) = unterminated_quote(text) {
        let (line, column) = line_col(text.as_bytes(), open);
        return Err(syntax(
            line,
            column,
            "unterminated quoted field (unbalanced quotes)",
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let header = match records.next() {
        None => return Ok(LinkSet::default()),
        Some(r) => r.map_err(|e| csv_error(text, &e))?,
    };
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if names.first().map(String::as_str) != Some("key")
        || names.get(1).map(String::as_str) != Some("target")
    {
        return Err(syntax(
            1,
            1,
            "expected a header row starting with `key,target` (then status, tags...)",
        ));
    }
    let mut cols = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        cols.push(match n.as_str() {
            "key" => Col::Key,
            "target" => Col::Target,
            "status" => Col::Status,
            "forward_query" => Col::ForwardQuery,
            "forward_path" => Col::ForwardPath,
            "cache_seconds" => Col::Cache,
            "not_before" => Col::NotBefore,
            "not_after" => Col::NotAfter,
            "" => {
                return Err(syntax(
                    1,
                    column_of(text, 0, i),
                    format!("column {} has an empty header", i + 1),
                ));
            }
            _ => Col::Tag(i),
        });
    }
    let mut set = LinkSet::default();
    let mut errors = Errors::default();
    for rec in records {
        let rec = rec.map_err(|e| csv_error(text, &e))?;
        let pos = rec.position().cloned().unwrap_or_else(csv::Position::new);
        let line = pos.line() as usize;
        let start = pos.byte() as usize;
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue; // blank line
        }
        let origin = Origin::Line { line, column: 1 };
        if rec.len() > cols.len() {
            return Err(syntax(
                line,
                column_of(text, start, cols.len()),
                format!(
                    "row has {} fields, the header names {}",
                    rec.len(),
                    cols.len()
                ),
            ));
        }
        if rec.len() < 2 {
            errors.push(
                origin,
                crate::LinkError::Field {
                    field: "target",
                    reason: "missing".into(),
                },
            );
            continue;
        }
        let mut b = Link::builder(&rec[0], &rec[1]).origin(origin);
        let mut bad = None;
        for (i, cell) in rec.iter().enumerate().skip(2) {
            let at = Origin::Line {
                line,
                column: column_of(text, start, i),
            };
            let fail = |field: &'static str, reason: String| {
                (at, crate::LinkError::Field { field, reason })
            };
            let cell_t = cell.trim();
            match cols[i] {
                Col::Key | Col::Target => {}
                Col::Status if cell_t.is_empty() => {}
                Col::Status => match cell_t.parse::<u16>() {
                    Ok(s) => b = b.status(s),
                    Err(_) => bad = Some(fail("status", format!("`{cell_t}` is not a number"))),
                },
                Col::ForwardQuery | Col::ForwardPath => match parse_bool(cell_t) {
                    Some(v) if matches!(cols[i], Col::ForwardQuery) => b = b.forward_query(v),
                    Some(v) => b = b.forward_path(v),
                    None => {
                        bad = Some(fail(
                            "forward_query/forward_path",
                            format!("`{cell_t}` is not true/false"),
                        ))
                    }
                },
                Col::Cache if cell_t.is_empty() => {}
                Col::Cache => match cell_t.parse::<u32>() {
                    Ok(s) => b = b.cache_seconds(s),
                    Err(_) => {
                        bad = Some(fail(
                            "cache_seconds",
                            format!("`{cell_t}` is not a number of seconds"),
                        ))
                    }
                },
                Col::NotBefore | Col::NotAfter if cell_t.is_empty() => {}
                Col::NotBefore => match parse_instant(cell_t) {
                    Ok(t) => b = b.not_before(t),
                    Err(r) => bad = Some(fail("not_before", r)),
                },
                Col::NotAfter => match parse_instant(cell_t) {
                    Ok(t) => b = b.not_after(t),
                    Err(r) => bad = Some(fail("not_after", r)),
                },
                Col::Tag(_) if cell.is_empty() => {}
                Col::Tag(h) => b = b.tag(header[h].trim(), cell),
            }
            if bad.is_some() {
                break;
            }
        }
        match bad {
            Some((at, e)) => errors.push(at, e),
            None => match b.build() {
                Ok(l) => set.links.push(l),
                Err(e) => errors.push(origin, e),
            },
        }
    }
    errors.into_result()?;
    Ok(set)
}

/// Offset of a quote that is never closed (the `csv` crate accepts one at end of input).
fn unterminated_quote(text: &str) -> Option<usize> {
    let mut open = None;
    for (i, b) in text.bytes().enumerate() {
        if b == b'"' {
            open = if open.is_some() { None } else { Some(i) };
        }
    }
    open
}

/// 1-based column where field `field` of the record starting at byte `start` begins.
fn column_of(text: &str, start: usize, field: usize) -> usize {
    let bytes = text.as_bytes();
    let (mut i, mut n, mut quoted) = (start, 0, false);
    while i < bytes.len() && n < field {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b',' if !quoted => n += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
        i += 1;
    }
    line_col(bytes, i).1
}

fn csv_error(text: &str, e: &csv::Error) -> LoadError {
    let (line, column) = match e.position() {
        Some(p) => line_col(text.as_bytes(), p.byte() as usize),
        None => (1, 1),
    };
    syntax(line, column, format!("CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_and_tags() {
        let set = parse(
            "key,target,status,campaign,affiliate,forward_query\r\n/go/a,https://a.example/,301,summer,,yes\r\n\"/go/b\",\"https://b.example/?x=1,2\",,,aff_01,\n",
        )
        .unwrap();
        assert_eq!(set.links.len(), 2);
        let a = &set.links[0];
        assert_eq!(a.status().as_u16(), 301);
        assert!(a.forward_query());
        assert_eq!(a.tags().len(), 1);
        assert_eq!(&*a.tags()[0].0, "campaign");
        assert_eq!(set.links[1].target(), "https://b.example/?x=1,2");
        assert_eq!(&*set.links[1].tags()[0].1, "aff_01");
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("target,key\n", "header row", "line 1"),
            (
                "key,target\n/go/a,javascript:x\n/go/b,/ok\n/go/c,//evil\n",
                "2 invalid entries",
                "line 4",
            ),
            (
                "key,target,status\n/go/a,/x,abc\n",
                "status",
                "line 2, column 10",
            ),
            ("key,target\n/go/a,/x,extra\n", "3 fields", "line 2"),
            (
                "key,target,not_after\n/go/a,/x,tomorrow\n",
                "not_after",
                "line 2",
            ),
        ];
        for (input, needle, pos) in cases {
            let msg = parse(input).unwrap_err().to_string();
            assert!(
                msg.contains(needle) && msg.contains(pos),
                "{input:?} -> {msg}"
            );
        }
    }
}
