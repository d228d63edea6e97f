//! The nginx `map` format, read with nginx's own tokenizer rules.
//!
//! Accepted: one `map $uri $var { ... }` block (as in an nginx config, verbatim), or bare
//! `key value;` entries without the wrapper. Inside: `key value;` entries (several per line are
//! fine), `default value;`, `#` comments (at the start of a word, as nginx reads them), single or
//! double quotes with nginx's escapes (`\"`, `\'`, `\\`, `\t`, `\r`, `\n`), and a leading `\` that
//! makes a key literal (`\default`). `hostnames;` and `volatile;` are accepted and ignored with a
//! note. Regex keys (`~`, `~*`), `include` and nginx variables in values are clear errors.
//!
//! Matching follows nginx's `map $uri`: keys ignore case and `$uri` is percent-decoded, so every
//! request nginx would answer with a key's value gets the same `Location` here. One deliberate
//! difference: a trailing `/` is tolerated (`/go/deal/` finds `/go/deal`; nginx would not).

use std::borrow::Cow;
use std::collections::VecDeque;

use smallvec::SmallVec;

use crate::error::{Errors, LoadError};
use crate::link::{DefaultRedirect, Link, Origin};
use crate::set::LinkSet;

use super::syntax;

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    /// Borrowed from the text, unless it was quoted or held a `\` escape.
    Word(Cow<'a, str>),
    Semi,
    Open,
    Close,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    tok: Tok<'a>,
    line: usize,
    column: usize,
}

/// nginx's tokenizer, one token at a time: a 1 M-line file is read without holding its tokens
/// (or a `String` per word) in memory.
struct Lexer<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
}

/// Ends an unquoted word.
fn ends_word(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}' | b'"' | b'\''
    )
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            s: text.as_bytes(),
            i: 0,
            line: 1,
            col: 1,
        }
    }

    fn bump(&mut self) -> u8 {
        let b = self.s[self.i];
        self.i += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            self.col += 1;
        }
        b
    }

    /// The next token, or `None` at the end of the text.
    fn next_token(&mut self) -> Result<Option<Token<'a>>, LoadError> {
        while self.i < self.s.len() {
            let b = self.s[self.i];
            let (line, column) = (self.line, self.col);
            let tok = |tok| Ok(Some(Token { tok, line, column }));
            match b {
                b' ' | b'\t' | b'\r' => {
                    // A run of blanks moves the column only.
                    let run = self.s[self.i..]
                        .iter()
                        .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r'))
                        .count();
                    self.i += run;
                    self.col += run;
                }
                b'\n' => {
                    self.bump();
                }
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.bump();
                    }
                }
                b';' => {
                    self.bump();
                    return tok(Tok::Semi);
                }
                b'{' => {
                    self.bump();
                    return tok(Tok::Open);
                }
                b'}' => {
                    self.bump();
                    return tok(Tok::Close);
                }
                b'"' | b'\'' => {
                    let quote = self.bump();
                    let mut word = Vec::new();
                    loop {
                        if self.i >= self.s.len() {
                            return Err(syntax(
                                line,
                                column,
                                "unterminated quoted string (unbalanced quotes)",
                            ));
                        }
                        let c = self.bump();
                        if c == quote {
                            break;
                        }
                        word.push(self.unescape(c));
                    }
                    if self.i < self.s.len()
                        && !matches!(
                            self.s[self.i],
                            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}'
                        )
                    {
                        return Err(syntax(
                            self.line,
                            self.col,
                            "unexpected character after a quoted string",
                        ));
                    }
                    return tok(Tok::Word(Cow::Owned(
                        String::from_utf8_lossy(&word).into_owned(),
                    )));
                }
                _ => return tok(Tok::Word(self.word())),
            }
        }
        Ok(None)
    }

    /// An unquoted word: a slice of the text unless it holds a `\` escape. A word never holds
    /// a newline, so only the column moves (by characters, not bytes).
    fn word(&mut self) -> Cow<'a, str> {
        let start = self.i;
        let plain_end = self.s[start..]
            .iter()
            .position(|&b| ends_word(b) || b == b'\\')
            .map_or(self.s.len(), |n| start + n);
        let chars = |s: &[u8]| s.iter().filter(|&&b| b & 0xC0 != 0x80).count();
        self.col += chars(&self.s[start..plain_end]);
        self.i = plain_end;
        if self.i >= self.s.len() || self.s[self.i] != b'\\' {
            // Every byte that ends a word is ASCII, so the slice is whole characters.
            return Cow::Borrowed(&self.text[start..plain_end]);
        }
        let mut word = self.s[start..plain_end].to_vec();
        while self.i < self.s.len() && !ends_word(self.s[self.i]) {
            let c = self.bump();
            word.push(self.unescape(c));
        }
        Cow::Owned(String::from_utf8_lossy(&word).into_owned())
    }

    /// The byte a word gets for `c`, just taken: `c` itself, or after a `\` (not the last byte
    /// of the text) what [`escape`](Self::escape) makes of what follows.
    fn unescape(&mut self, c: u8) -> u8 {
        if c == b'\\' && self.i < self.s.len() {
            self.escape()
        } else {
            c
        }
    }

    /// After a `\`: nginx turns `\"`, `\'`, `\\` into the character and `\t\r\n` into controls;
    /// any other `\x` stays as written.
    fn escape(&mut self) -> u8 {
        match self.s[self.i] {
            b'"' | b'\'' | b'\\' => self.bump(),
            b't' => {
                self.bump();
                b'\t'
            }
            b'r' => {
                self.bump();
                b'\r'
            }
            b'n' => {
                self.bump();
                b'\n'
            }
            _ => b'\\',
        }
    }
}

/// The lexer with a few tokens of look-ahead (a `map` header is recognised by its `{`).
struct Tokens<'a> {
    lexer: Lexer<'a>,
    ahead: VecDeque<Token<'a>>,
    /// Where the last token taken started (for "unexpected end of file").
    last: (usize, usize),
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Result<Option<Token<'a>>, LoadError> {
        let t = match self.ahead.pop_front() {
            Some(t) => Some(t),
            None => self.lexer.next_token()?,
        };
        if let Some(t) = &t {
            self.last = (t.line, t.column);
        }
        Ok(t)
    }

    /// The token `k` places ahead of the next one (0 = the next one), without taking it.
    fn peek(&mut self, k: usize) -> Result<Option<&Tok<'a>>, LoadError> {
        while self.ahead.len() <= k {
            match self.lexer.next_token()? {
                Some(t) => self.ahead.push_back(t),
                None => return Ok(None),
            }
        }
        Ok(Some(&self.ahead[k].tok))
    }
}

/// Parses an nginx map file.
pub(crate) fn parse(text: &str) -> Result<LinkSet, LoadError> {
    let mut toks = Tokens {
        lexer: Lexer::new(text),
        ahead: VecDeque::new(),
        last: (1, 1),
    };
    let mut set = LinkSet::default();
    let mut errors = Errors::default();
    let mut seen_map = false;
    let mut depth = 0usize;
    while let Some(t) = toks.next()? {
        let (line, column) = (t.line, t.column);
        let first = match t.tok {
            Tok::Close if depth > 0 => {
                depth -= 1;
                continue;
            }
            Tok::Close => {
                return Err(syntax(line, column, "unexpected `}` (unbalanced braces)"));
            }
            Tok::Open => return Err(syntax(line, column, "unexpected `{`")),
            Tok::Semi => return Err(syntax(line, column, "unexpected `;` (empty entry)")),
            Tok::Word(w) if w == "map" && depth == 0 && toks.peek(2)? == Some(&Tok::Open) => {
                if seen_map {
                    return Err(syntax(
                        line,
                        column,
                        "more than one map block; put one map per file",
                    ));
                }
                for k in 0..2 {
                    if !matches!(toks.peek(k)?, Some(Tok::Word(_))) {
                        return Err(syntax(line, column, "expected `map $source $variable {`"));
                    }
                }
                for _ in 0..3 {
                    toks.next()?;
                }
                seen_map = true;
                depth += 1;
                continue;
            }
            Tok::Word(w) => w,
        };
        // A directive: words up to `;`.
        let mut words: SmallVec<[Cow<'_, str>; 2]> = SmallVec::new();
        words.push(first);
        loop {
            match toks.next()? {
                Some(Token {
                    tok: Tok::Word(w), ..
                }) => words.push(w),
                Some(Token { tok: Tok::Semi, .. }) => break,
                Some(t) => {
                    return Err(syntax(t.line, t.column, "expected `;` before this brace"));
                }
                None => {
                    return Err(syntax(
                        line,
                        column,
                        "unexpected end of file: entry has no closing `;`",
                    ));
                }
            }
        }
        let origin = Origin::Line { line, column };
        let first = &*words[0];
        match (first, words.len()) {
            ("hostnames" | "volatile", 1) => {
                set.notes.push(format!(
                    "{origin}: `{first}` accepted and ignored (it has no effect on path keys)"
                ));
            }
            ("include", _) => {
                return Err(syntax(
                    line,
                    column,
                    "`include` is not supported; list the entries in this file",
                ));
            }
            ("default", 2) => match check_value(&words[1])
                .and_then(|v| DefaultRedirect::new(v).map_err(|e| e.to_string()))
            {
                Ok(d) => set.default = Some(d),
                Err(reason) => errors.push(
                    origin,
                    crate::LinkError::Field {
                        field: "default",
                        reason,
                    },
                ),
            },
            (key, 2) => {
                if key.starts_with('~') {
                    return Err(syntax(
                        line,
                        column,
                        format!(
                            "regex keys are not supported: `{key}` (list each path as a literal key)"
                        ),
                    ));
                }
                let key = key.strip_prefix('\\').unwrap_or(key);
                match check_value(&words[1]) {
                    Err(reason) => errors.push(
                        origin,
                        crate::LinkError::Field {
                            field: "target",
                            reason,
                        },
                    ),
                    Ok(target) => match Link::builder(key, target).origin(origin).build() {
                        Ok(l) => set.links.push(l),
                        Err(e) => errors.push(origin, e),
                    },
                }
            }
            (_, n) => {
                return Err(syntax(
                    line,
                    column,
                    format!(
                        "expected `key value;`, found {n} word{}",
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
        }
    }
    if depth > 0 {
        let (line, column) = toks.last;
        return Err(syntax(
            line,
            column,
            "unexpected end of file: missing `}` (unbalanced braces)",
        ));
    }
    errors.into_result()?;
    Ok(set)
}

/// nginx would interpolate `$name` in a value; we serve values literally, so refuse them.
fn check_value(v: &str) -> Result<&str, String> {
    let b = v.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'$'
            && b.get(i + 1)
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_' || *n == b'{')
        {
            return Err(format!(
                "nginx variables in values are not supported: `{v}`"
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_block_verbatim() {
        let set = parse(
            "map $uri $affiliate_url {\n    /go/summer-deal https://store.com/p/123?ref=aff_01;\n    default https://store.com/;\n}\n",
        )
        .unwrap();
        assert_eq!(set.links.len(), 1);
        assert_eq!(set.links[0].target(), "https://store.com/p/123?ref=aff_01");
        assert_eq!(set.default.unwrap().target(), "https://store.com/");
    }

    #[test]
    fn bare_quotes_comments_multi() {
        let set = parse(
            "# comment\n/go/a https://a.example/#frag; /go/b \"https://b.example/?q=1\" ;\n'/go/c' '/local';\r\nhostnames;\n",
        )
        .unwrap();
        let keys: Vec<_> = set.links.iter().map(|l| l.key().to_string()).collect();
        assert_eq!(keys, ["/go/a", "/go/b", "/go/c"]);
        assert_eq!(set.links[0].target(), "https://a.example/#frag");
        assert_eq!(set.notes.len(), 1);
        // `\default` is a literal key: it fails key validation, with its line.
        let err = parse("\\default /d;").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            (
                "map $uri $x {\n ~^/go/(.*) https://a/;\n}",
                "regex keys are not supported",
                "line 2",
            ),
            ("/go/a \"https://a.example/;", "unbalanced quotes", "line 1"),
            (
                "map $uri $x {\n/go/a https://a.example/;\n",
                "missing `}`",
                "line",
            ),
            (
                "/go/a https://a.example/;\n}",
                "unbalanced braces",
                "line 2",
            ),
            ("/go/a https://a.example/", "no closing `;`", "line 1"),
            ("/go/a b c;", "found 3 words", "line 1"),
            ("include links.map;", "include", "line 1"),
            ("/go/a https://a.example/$arg_x;", "variables", "line 1"),
            (
                "\n\n  /go/a javascript:alert(1);",
                "scheme",
                "line 3, column 3",
            ),
        ];
        // The tokens stream, so of two syntax errors the first in the file is the one reported
        // (here: before an unbalanced quote further on).
        let cases = cases.into_iter().chain([(
            "/go/a b c;\n/go/d 'unterminated;",
            "found 3 words",
            "line 1",
        )]);
        for (input, needle, pos) in cases {
            let msg = parse(input).unwrap_err().to_string();
            assert!(
                msg.contains(needle) && msg.contains(pos),
                "{input:?} -> {msg}"
            );
        }
    }
}
