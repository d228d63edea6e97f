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

use crate::error::{Errors, LoadError};
use crate::link::{DefaultRedirect, Link, Origin};
use crate::set::LinkSet;

use super::syntax;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Semi,
    Open,
    Close,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
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

    fn tokens(mut self) -> Result<Vec<Token>, LoadError> {
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let b = self.s[self.i];
            let (line, column) = (self.line, self.col);
            let push = |out: &mut Vec<Token>, tok| out.push(Token { tok, line, column });
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.bump();
                }
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.bump();
                    }
                }
                b';' => {
                    self.bump();
                    push(&mut out, Tok::Semi);
                }
                b'{' => {
                    self.bump();
                    push(&mut out, Tok::Open);
                }
                b'}' => {
                    self.bump();
                    push(&mut out, Tok::Close);
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
                        if c == b'\\' && self.i < self.s.len() {
                            word.push(self.escape());
                        } else {
                            word.push(c);
                        }
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
                    push(
                        &mut out,
                        Tok::Word(String::from_utf8_lossy(&word).into_owned()),
                    );
                }
                _ => {
                    let mut word = Vec::new();
                    while self.i < self.s.len()
                        && !matches!(
                            self.s[self.i],
                            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}' | b'"' | b'\''
                        )
                    {
                        let c = self.bump();
                        if c == b'\\' && self.i < self.s.len() {
                            word.push(self.escape());
                        } else {
                            word.push(c);
                        }
                    }
                    push(
                        &mut out,
                        Tok::Word(String::from_utf8_lossy(&word).into_owned()),
                    );
                }
            }
        }
        Ok(out)
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

/// Parses an nginx map file.
pub(crate) fn parse(text: &str) -> Result<LinkSet, LoadError> {
    let toks = Lexer {
        s: text.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
    }
    .tokens()?;
    let mut set = LinkSet::default();
    let mut errors = Errors::default();
    let mut i = 0;
    let mut seen_map = false;
    let mut depth = 0usize;
    while i < toks.len() {
        let t = &toks[i];
        match &t.tok {
            Tok::Close if depth > 0 => {
                depth -= 1;
                i += 1;
                continue;
            }
            Tok::Close => {
                return Err(syntax(
                    t.line,
                    t.column,
                    "unexpected `}` (unbalanced braces)",
                ));
            }
            Tok::Open => return Err(syntax(t.line, t.column, "unexpected `{`")),
            Tok::Semi => return Err(syntax(t.line, t.column, "unexpected `;` (empty entry)")),
            Tok::Word(w)
                if w == "map"
                    && depth == 0
                    && matches!(toks.get(i + 3).map(|t| &t.tok), Some(Tok::Open)) =>
            {
                if seen_map {
                    return Err(syntax(
                        t.line,
                        t.column,
                        "more than one map block; put one map per file",
                    ));
                }
                for k in 1..=2 {
                    if !matches!(toks.get(i + k).map(|t| &t.tok), Some(Tok::Word(_))) {
                        return Err(syntax(
                            t.line,
                            t.column,
                            "expected `map $source $variable {`",
                        ));
                    }
                }
                seen_map = true;
                depth += 1;
                i += 4;
                continue;
            }
            Tok::Word(_) => {}
        }
        // A directive: words up to `;`.
        let start = i;
        let mut words: Vec<&str> = Vec::new();
        while i < toks.len() {
            match &toks[i].tok {
                Tok::Word(w) => words.push(w),
                Tok::Semi => break,
                Tok::Open | Tok::Close => {
                    return Err(syntax(
                        toks[i].line,
                        toks[i].column,
                        "expected `;` before this brace",
                    ));
                }
            }
            i += 1;
        }
        if i >= toks.len() {
            return Err(syntax(
                t.line,
                t.column,
                "unexpected end of file: entry has no closing `;`",
            ));
        }
        i += 1; // the `;`
        let origin = Origin::Line {
            line: toks[start].line,
            column: toks[start].column,
        };
        let first = words[0];
        match (first, words.len()) {
            ("hostnames" | "volatile", 1) => {
                set.notes.push(format!(
                    "{origin}: `{first}` accepted and ignored (it has no effect on path keys)"
                ));
            }
            ("include", _) => {
                return Err(syntax(
                    toks[start].line,
                    toks[start].column,
                    "`include` is not supported; list the entries in this file",
                ));
            }
            ("default", 2) => match check_value(words[1])
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
            (_, 2) => {
                let key = words[0];
                if key.starts_with('~') {
                    return Err(syntax(
                        toks[start].line,
                        toks[start].column,
                        format!(
                            "regex keys are not supported: `{key}` (list each path as a literal key)"
                        ),
                    ));
                }
                let key = key.strip_prefix('\\').unwrap_or(key);
                match check_value(words[1]) {
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
                    toks[start].line,
                    toks[start].column,
                    format!(
                        "expected `key value;`, found {n} word{}",
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
        }
    }
    if depth > 0 {
        let (line, column) = toks.last().map_or((1, 1), |t| (t.line, t.column));
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
        for (input, needle, pos) in cases {
            let msg = parse(input).unwrap_err().to_string();
            assert!(
                msg.contains(needle) && msg.contains(pos),
                "{input:?} -> {msg}"
            );
        }
    }
}
