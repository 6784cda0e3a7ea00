//! `if:` conditions: a small expression language over outputs and the build's context.
//!
//! ```text
//! expr    := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := operand ( ("==" | "!=") operand )?
//! operand := "(" expr ")" | reference | changed | 'text' | "text" | number | true | false
//! reference := job.OUTPUT | product.job.OUTPUT | conveyor.NAME | ${…} | {{ … }}
//! changed := "changed" "(" 'glob' ")"
//! ```
//! A value on its own is true unless it is empty, `false` or `0`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Expr {
    Lit(String),
    /// A dotted reference, as written without `${}` or `{{}}`.
    Ref(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
    /// `changed("glob")`: whether the build's change touched a matching path.
    Changed(String),
}

/// What a condition reads: references' values and the change's paths.
pub trait Env {
    /// A reference's value (missing → empty).
    fn value(&self, path: &str) -> Option<String>;
    /// Whether the change touched a path `pattern` matches.
    fn changed(&self, pattern: &str) -> bool;
}

impl Expr {
    /// Every reference in the expression, in order.
    pub fn refs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Lit(_) | Expr::Changed(_) => {}
            Expr::Ref(r) => out.push(r),
            Expr::Not(a) => a.collect_refs(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Eq(a, b) | Expr::Ne(a, b) => {
                a.collect_refs(out);
                b.collect_refs(out);
            }
        }
    }

    /// Evaluates the condition over `env`.
    pub fn eval(&self, lookup: &dyn Env) -> bool {
        truthy(&self.value(lookup))
    }

    fn value(&self, lookup: &dyn Env) -> String {
        let b = |v: bool| v.to_string();
        match self {
            Expr::Lit(s) => s.clone(),
            Expr::Ref(r) => lookup.value(r).unwrap_or_default(),
            Expr::Changed(p) => b(lookup.changed(p)),
            Expr::Not(a) => b(!a.eval(lookup)),
            Expr::And(x, y) => b(x.eval(lookup) && y.eval(lookup)),
            Expr::Or(x, y) => b(x.eval(lookup) || y.eval(lookup)),
            Expr::Eq(x, y) => b(x.value(lookup) == y.value(lookup)),
            Expr::Ne(x, y) => b(x.value(lookup) != y.value(lookup)),
        }
    }
}

fn truthy(v: &str) -> bool {
    !(v.is_empty() || v == "false" || v == "0")
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(String),
    Ref(String),
    Op(&'static str),
    /// `changed`, which must be followed by `("glob")`.
    Changed,
}

/// Parses a condition, or explains the first problem in it.
pub fn parse(text: &str) -> Result<Expr, String> {
    let toks = lex(text)?;
    let mut p = Parser { toks, at: 0 };
    let e = p.or()?;
    match p.toks.get(p.at) {
        None => Ok(e),
        Some(t) => Err(format!("unexpected {} in condition `{text}`", describe(t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Lit(s) => format!("value `{s}`"),
        Tok::Ref(r) => format!("reference `{r}`"),
        Tok::Op(o) => format!("`{o}`"),
        Tok::Changed => "`changed`".into(),
    }
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if let Some(op) = ["==", "!=", "&&", "||", "!", "(", ")"]
            .into_iter()
            .find(|op| rest.starts_with(op))
        {
            toks.push(Tok::Op(op));
            i += op.len();
        } else if c == b'\'' || c == b'"' {
            let end = rest[1..]
                .find(c as char)
                .ok_or_else(|| format!("unterminated string in condition `{text}`"))?;
            toks.push(Tok::Lit(rest[1..=end].to_string()));
            i += end + 2;
        } else if let Some((path, len)) = wrapped_ref(rest) {
            toks.push(Tok::Ref(path));
            i += len;
        } else {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.')))
                .unwrap_or(rest.len());
            if len == 0 {
                return Err(format!(
                    "unexpected `{}` in condition `{text}`",
                    rest.chars().next().unwrap_or(' ')
                ));
            }
            let word = &rest[..len];
            toks.push(classify(word, text)?);
            i += len;
        }
    }
    Ok(toks)
}

fn classify(word: &str, text: &str) -> Result<Tok, String> {
    if word == "changed" {
        Ok(Tok::Changed)
    } else if word == "true" || word == "false" || word.parse::<f64>().is_ok() {
        Ok(Tok::Lit(word.to_string()))
    } else if word.contains('.') {
        Ok(Tok::Ref(word.to_string()))
    } else {
        Err(format!(
            "`{word}` in condition `{text}` is not a value: write a reference such as `job.OUTPUT` or `conveyor.branch`, `changed(\"glob\")`, a quoted string, a number, true or false"
        ))
    }
}

/// `${a.b}` or `{{ a.b }}` at the start of `s`: the path and the length consumed.
fn wrapped_ref(s: &str) -> Option<(String, usize)> {
    let (open, close) = if s.starts_with("${") {
        ("${", "}")
    } else if s.starts_with("{{") {
        ("{{", "}}")
    } else {
        return None;
    };
    let end = s.find(close)?;
    let inner = s[open.len()..end].trim();
    Some((inner.to_string(), end + close.len()))
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn eat(&mut self, op: &'static str) -> bool {
        if self.toks.get(self.at) == Some(&Tok::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.operand()?;
        if self.eat("==") {
            Ok(Expr::Eq(Box::new(left), Box::new(self.operand()?)))
        } else if self.eat("!=") {
            Ok(Expr::Ne(Box::new(left), Box::new(self.operand()?)))
        } else {
            Ok(left)
        }
    }

    /// The rest of `changed("glob")`.
    fn changed(&mut self) -> Result<Expr, String> {
        let usage =
            "write `changed(\"glob\")` with one quoted pattern, e.g. `changed(\"docs/**\")`";
        if !self.eat("(") {
            return Err(format!("`changed` needs a pattern: {usage}"));
        }
        let Some(Tok::Lit(pattern)) = self.toks.get(self.at).cloned() else {
            return Err(format!("`changed` needs a quoted pattern: {usage}"));
        };
        self.at += 1;
        if pattern.is_empty() || !self.eat(")") {
            return Err(format!("`changed` takes one non-empty pattern: {usage}"));
        }
        Ok(Expr::Changed(pattern))
    }

    fn operand(&mut self) -> Result<Expr, String> {
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err("missing `)` in condition".into());
            }
            return Ok(e);
        }
        let tok = self.toks.get(self.at).cloned();
        self.at += 1;
        match tok {
            Some(Tok::Lit(s)) => Ok(Expr::Lit(s)),
            Some(Tok::Ref(r)) => Ok(Expr::Ref(r)),
            Some(Tok::Changed) => self.changed(),
            Some(t) => Err(format!("expected a value, found {}", describe(&t))),
            None => Err("condition ends where a value was expected".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vals<'a>(&'a [(&'a str, &'a str)]);

    impl Env for Vals<'_> {
        fn value(&self, r: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == r)
                .map(|(_, v)| v.to_string())
        }
        fn changed(&self, pattern: &str) -> bool {
            pattern == "docs/**"
        }
    }

    fn run(text: &str, vals: &[(&str, &str)]) -> bool {
        let e = parse(text).expect("valid condition");
        e.eval(&Vals(vals))
    }

    #[test]
    fn changed_takes_one_quoted_pattern() {
        assert!(run("changed('docs/**')", &[]));
        assert!(!run("changed(\"src/**\") && true", &[]));
        assert!(run("!changed('src/**')", &[]));
        assert_eq!(
            parse("changed(docs)").unwrap_err(),
            "`docs` in condition `changed(docs)` is not a value: write a reference such as `job.OUTPUT` or `conveyor.branch`, `changed(\"glob\")`, a quoted string, a number, true or false"
        );
        assert_eq!(
            parse("changed").unwrap_err(),
            "`changed` needs a pattern: write `changed(\"glob\")` with one quoted pattern, e.g. `changed(\"docs/**\")`"
        );
    }

    #[test]
    fn conditions_compare_outputs_as_strings() {
        let vals = [("build.CHANGED", "true"), ("build.VERSION", "1.2")];
        assert!(run("build.CHANGED == 'true'", &vals));
        assert!(run("${build.VERSION} != \"1.3\"", &vals));
        assert!(run("{{ build.CHANGED }} && !(build.VERSION == '2')", &vals));
        assert!(!run("build.MISSING", &vals));
        assert!(run("build.MISSING || build.CHANGED", &vals));
        assert!(!run("false", &vals));
        assert!(run("build.VERSION == 1.2", &vals));
    }

    #[test]
    fn references_are_listed_in_order() {
        let e = parse("a.X == 'y' || ${b.Z}").expect("valid");
        assert_eq!(e.refs(), vec!["a.X", "b.Z"]);
    }

    #[test]
    fn malformed_conditions_explain_themselves() {
        assert_eq!(
            parse("a.X ==").unwrap_err(),
            "condition ends where a value was expected"
        );
        assert_eq!(parse("(a.X").unwrap_err(), "missing `)` in condition");
        assert_eq!(
            parse("'open").unwrap_err(),
            "unterminated string in condition `'open`"
        );
        assert_eq!(
            parse("deploy").unwrap_err(),
            "`deploy` in condition `deploy` is not a value: write a reference such as `job.OUTPUT` or `conveyor.branch`, `changed(\"glob\")`, a quoted string, a number, true or false"
        );
        assert_eq!(
            parse("a.X b.Y").unwrap_err(),
            "unexpected reference `b.Y` in condition `a.X b.Y`"
        );
    }
}
