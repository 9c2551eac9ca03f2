//! SCIM filter expressions (RFC 7644 §3.4.2.2): a parser that reports where
//! a filter went wrong, and an evaluator over stored JSON resources.
//!
//! Input comes straight from the network, so the parser never panics, caps
//! the nesting of parentheses, `not` and value paths at [`MAX_DEPTH`], and
//! keeps `and`/`or` chains flat so that neither evaluation nor dropping a
//! long chain recurses once per operand.

use std::cmp::Ordering;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ResourceKind;
use crate::schema::{Attr, key_of};

/// How deeply parentheses, `not` and value paths may nest.
pub const MAX_DEPTH: usize = 32;
/// The longest filter accepted, in bytes.
pub const MAX_LEN: usize = 16 * 1024;

/// A filter that could not be parsed, with the byte offset where parsing
/// stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

/// An attribute reference: `name`, `name.sub`, optionally prefixed by a
/// schema URN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Value),
    /// `attr[filter]`: some value of a multi-valued attribute matches.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH target (RFC 7644 §3.5.2): an attribute, or some values of a
/// multi-valued one picked by a filter, optionally narrowed to a
/// sub-attribute of those values.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

fn err(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

fn tokenize(input: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    if input.len() > MAX_LEN {
        return Err(err(MAX_LEN, format!("filter longer than {MAX_LEN} bytes")));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let single = match c {
            b'(' => Some(Tok::Open),
            b')' => Some(Tok::Close),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = single {
            out.push((i, tok));
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' {
            let end = string_end(bytes, i).ok_or_else(|| err(i, "unterminated string"))?;
            let text = input.get(i..=end).unwrap_or_default();
            let value: String = serde_json::from_str(text)
                .map_err(|e| err(i, format!("invalid string literal: {e}")))?;
            out.push((i, Tok::Str(value)));
            i = end + 1;
        } else {
            let start = i;
            while i < bytes.len() && !b"()[]\" \t\r\n".contains(&bytes[i]) {
                i += 1;
            }
            let word = input.get(start..i).unwrap_or_default().to_owned();
            out.push((start, Tok::Word(word)));
        }
    }
    Ok(out)
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some('$') => name == "$ref",
        Some(first) if first.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

/// Parses `name`, `name.sub` or `urn:...:name.sub`.
pub fn parse_attr_path(word: &str, position: usize) -> Result<AttrPath, FilterError> {
    let (schema, rest) = match word.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("urn:") => match word.rfind(':') {
            Some(at) => (
                Some(word.get(..at).unwrap_or_default().to_owned()),
                word.get(at + 1..).unwrap_or_default(),
            ),
            None => (None, word),
        },
        _ => (None, word),
    };
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() || !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
        return Err(err(position, format!("invalid attribute path {word:?}")));
    }
    Ok(AttrPath {
        schema,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Self, FilterError> {
        Ok(Self {
            toks: tokenize(input)?,
            pos: 0,
            end: input.len(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn next(&mut self) -> Option<(usize, Tok)> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), FilterError> {
        let at = self.offset();
        match self.next() {
            Some((_, tok)) if &tok == want => Ok(()),
            _ => Err(err(at, format!("expected {what}"))),
        }
    }

    fn or_expr(&mut self, depth: usize, nested: bool) -> Result<Filter, FilterError> {
        let mut terms = vec![self.and_expr(depth, nested)?];
        while self.peek_keyword("or") {
            self.pos += 1;
            terms.push(self.and_expr(depth, nested)?);
        }
        Ok(flatten(terms, Filter::Or))
    }

    fn and_expr(&mut self, depth: usize, nested: bool) -> Result<Filter, FilterError> {
        let mut terms = vec![self.unary(depth, nested)?];
        while self.peek_keyword("and") {
            self.pos += 1;
            terms.push(self.unary(depth, nested)?);
        }
        Ok(flatten(terms, Filter::And))
    }

    fn unary(&mut self, depth: usize, nested: bool) -> Result<Filter, FilterError> {
        let at = self.offset();
        if depth >= MAX_DEPTH {
            return Err(err(at, format!("filter nested deeper than {MAX_DEPTH}")));
        }
        if self.peek_keyword("not") && matches!(self.toks.get(self.pos + 1), Some((_, Tok::Open))) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.group(depth + 1, nested)?)));
        }
        if self.peek() == Some(&Tok::Open) {
            return self.group(depth + 1, nested);
        }
        self.attr_expr(depth, nested)
    }

    fn group(&mut self, depth: usize, nested: bool) -> Result<Filter, FilterError> {
        self.expect(&Tok::Open, "'('")?;
        let inner = self.or_expr(depth, nested)?;
        self.expect(&Tok::Close, "')'")?;
        Ok(inner)
    }

    fn attr_expr(&mut self, depth: usize, nested: bool) -> Result<Filter, FilterError> {
        let (at, word) = match self.next() {
            Some((at, Tok::Word(word))) => (at, word),
            Some((at, _)) => return Err(err(at, "expected an attribute name")),
            None => return Err(err(self.end, "expected an attribute name")),
        };
        let path = parse_attr_path(&word, at)?;
        if self.peek() == Some(&Tok::LBracket) {
            if nested {
                return Err(err(self.offset(), "value filters cannot nest"));
            }
            self.pos += 1;
            let inner = self.or_expr(depth + 1, true)?;
            self.expect(&Tok::RBracket, "']'")?;
            return self.after_value_path(path, inner);
        }
        self.comparison(path, &word)
    }

    /// Entra matches users on `emails[type eq "work"].value eq "..."`,
    /// which is read as `emails[type eq "work" and value eq "..."]`.
    fn after_value_path(&mut self, path: AttrPath, inner: Filter) -> Result<Filter, FilterError> {
        let sub = match self.peek() {
            Some(Tok::Word(w)) if w.starts_with('.') => w.clone(),
            _ => return Ok(Filter::ValuePath(path, Box::new(inner))),
        };
        let at = self.offset();
        self.pos += 1;
        let sub_path = parse_attr_path(sub.get(1..).unwrap_or_default(), at)?;
        if sub_path.schema.is_some() || sub_path.sub.is_some() {
            return Err(err(at, format!("invalid sub-attribute {sub:?}")));
        }
        let test = self.comparison(sub_path, &sub)?;
        let both = match inner {
            Filter::And(mut terms) => {
                terms.push(test);
                Filter::And(terms)
            }
            other => Filter::And(vec![other, test]),
        };
        Ok(Filter::ValuePath(path, Box::new(both)))
    }

    fn comparison(&mut self, path: AttrPath, word: &str) -> Result<Filter, FilterError> {
        let op_at = self.offset();
        let op = match self.next() {
            Some((_, Tok::Word(op))) => op.to_ascii_lowercase(),
            _ => return Err(err(op_at, format!("expected an operator after {word:?}"))),
        };
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            other => return Err(err(op_at, format!("unknown operator {other:?}"))),
        };
        Ok(Filter::Compare(path, op, self.literal()?))
    }

    fn literal(&mut self) -> Result<Value, FilterError> {
        let at = self.offset();
        match self.next() {
            Some((_, Tok::Str(s))) => Ok(Value::String(s)),
            Some((_, Tok::Word(w))) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "null" => Ok(Value::Null),
                _ => match serde_json::from_str::<Value>(&w) {
                    Ok(n @ Value::Number(_)) => Ok(n),
                    _ => Err(err(at, format!("invalid comparison value {w:?}"))),
                },
            },
            _ => Err(err(at, "expected a comparison value")),
        }
    }
}

fn flatten(mut terms: Vec<Filter>, join: fn(Vec<Filter>) -> Filter) -> Filter {
    if terms.len() == 1
        && let Some(only) = terms.pop()
    {
        return only;
    }
    join(terms)
}

/// Parses a whole filter expression.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(input)?;
    if parser.toks.is_empty() {
        return Err(err(0, "empty filter"));
    }
    let filter = parser.or_expr(0, false)?;
    match parser.peek() {
        None => Ok(filter),
        Some(_) => Err(err(parser.offset(), "unexpected trailing input")),
    }
}

/// Parses a PATCH `path`: `attr`, `attr.sub`, `attr[filter]` or
/// `attr[filter].sub`, each optionally URN-qualified.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(input)?;
    let (at, word) = match parser.next() {
        Some((at, Tok::Word(word))) => (at, word),
        _ => return Err(err(0, "expected an attribute path")),
    };
    let attr = parse_attr_path(&word, at)?;
    if parser.peek().is_none() {
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    }
    if attr.sub.is_some() {
        return Err(err(
            parser.offset(),
            "a value filter must follow an attribute",
        ));
    }
    parser.expect(&Tok::LBracket, "'['")?;
    let filter = parser.or_expr(1, true)?;
    parser.expect(&Tok::RBracket, "']'")?;
    let sub = match parser.next() {
        None => None,
        Some((at, Tok::Word(w))) => match w.strip_prefix('.') {
            Some(name) if valid_name(name) => Some(name.to_owned()),
            _ => return Err(err(at, format!("invalid sub-attribute {w:?}"))),
        },
        Some((at, _)) => return Err(err(at, "unexpected input after ']'")),
    };
    if let Some((at, _)) = parser.next() {
        return Err(err(at, "unexpected trailing input"));
    }
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// Where a path is resolved: a whole resource, or one value of a
/// multi-valued complex attribute inside a value filter.
#[derive(Clone, Copy)]
enum Scope {
    Resource(ResourceKind),
    Value(Option<&'static Attr>),
}

/// Whether `resource` (a stored resource of `kind`) matches `filter`.
pub fn matches(filter: &Filter, kind: ResourceKind, resource: &Value) -> bool {
    eval(filter, Scope::Resource(kind), resource)
}

/// Whether one value of the multi-valued attribute `parent` matches a value
/// filter, as PATCH paths like `emails[type eq "work"]` need.
pub fn value_matches(filter: &Filter, parent: Option<&'static Attr>, value: &Value) -> bool {
    eval(filter, Scope::Value(parent), value)
}

fn eval(filter: &Filter, scope: Scope, node: &Value) -> bool {
    match filter {
        Filter::And(terms) => terms.iter().all(|t| eval(t, scope, node)),
        Filter::Or(terms) => terms.iter().any(|t| eval(t, scope, node)),
        Filter::Not(inner) => !eval(inner, scope, node),
        Filter::Present(path) => resolve(scope, node, path).0.iter().any(|v| present(v)),
        Filter::Compare(path, CompareOp::Ne, literal) => !eval(
            &Filter::Compare(path.clone(), CompareOp::Eq, literal.clone()),
            scope,
            node,
        ),
        Filter::Compare(path, op, literal) => {
            let (values, attr) = resolve(scope, node, path);
            if literal.is_null() && *op == CompareOp::Eq {
                return !values.iter().any(|v| present(v));
            }
            let exact = attr.is_some_and(|a| a.case_exact);
            values
                .iter()
                .any(|v| compare(comparable(v), *op, literal, exact))
        }
        Filter::ValuePath(path, inner) => {
            let (values, attr) = resolve_whole(scope, node, path);
            values.iter().any(|v| eval(inner, Scope::Value(attr), v))
        }
    }
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

/// A complex value is compared through its `value` sub-attribute, so
/// `emails co "@example.com"` looks at the addresses.
fn comparable(value: &Value) -> &Value {
    match value {
        Value::Object(map) => key_of(map, "value")
            .and_then(|k| map.get(k))
            .unwrap_or(&Value::Null),
        other => other,
    }
}

fn field<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    let map = node.as_object()?;
    map.get(key_of(map, name)?)
}

/// The container a path starts from and the metadata of its attribute.
fn start<'a>(
    scope: Scope,
    node: &'a Value,
    path: &AttrPath,
) -> (Option<&'a Value>, Option<&'static Attr>) {
    match scope {
        Scope::Resource(kind) => {
            let schema = path
                .schema
                .as_deref()
                .filter(|s| !s.eq_ignore_ascii_case(kind.schema()));
            let attr = kind.attr(schema, &path.name);
            let container = match schema {
                Some(urn) => field(node, urn),
                None => Some(node),
            };
            (container.and_then(|c| field(c, &path.name)), attr)
        }
        Scope::Value(parent) => {
            let attr = parent.and_then(|p| p.sub_attr(&path.name));
            (field(node, &path.name), attr)
        }
    }
}

/// The attribute a path names, without descending into a sub-attribute.
fn resolve_whole<'a>(
    scope: Scope,
    node: &'a Value,
    path: &AttrPath,
) -> (Vec<&'a Value>, Option<&'static Attr>) {
    let (found, attr) = start(scope, node, path);
    let values = match found {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    (values, attr)
}

/// Every value a path reaches, flattening multi-valued attributes.
fn resolve<'a>(
    scope: Scope,
    node: &'a Value,
    path: &AttrPath,
) -> (Vec<&'a Value>, Option<&'static Attr>) {
    let (values, attr) = resolve_whole(scope, node, path);
    let Some(sub) = &path.sub else {
        return (values, attr);
    };
    let sub_attr = attr.and_then(|a| a.sub_attr(sub));
    let mut out = Vec::new();
    for value in values {
        match field(value, sub) {
            Some(Value::Array(items)) => out.extend(items.iter()),
            Some(one) => out.push(one),
            None => {}
        }
    }
    (out, sub_attr)
}

fn compare(actual: &Value, op: CompareOp, literal: &Value, exact: bool) -> bool {
    match (actual, literal) {
        (Value::String(a), Value::String(b)) => compare_strings(a, op, b, exact),
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => ordered(a.partial_cmp(&b), op),
            _ => false,
        },
        (Value::Bool(a), Value::Bool(b)) => op == CompareOp::Eq && a == b,
        (Value::String(a), Value::Bool(b)) => {
            op == CompareOp::Eq && a.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        _ => false,
    }
}

fn compare_strings(actual: &str, op: CompareOp, literal: &str, exact: bool) -> bool {
    if let (CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le, Some(a), Some(b)) =
        (op, datetime(actual), datetime(literal))
    {
        return ordered(Some(a.cmp(&b)), op);
    }
    let (a, b) = if exact {
        (actual.to_owned(), literal.to_owned())
    } else {
        (actual.to_lowercase(), literal.to_lowercase())
    };
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        _ => ordered(Some(a.cmp(&b)), op),
    }
}

fn datetime(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn ordered(ordering: Option<Ordering>, op: CompareOp) -> bool {
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests;
