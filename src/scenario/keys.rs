//! Key paths (`policy.export_control[0].licence_rate`,
//! `policy.export_control[chips].licence_rate`): parsing, applying `--set`
//! overrides to a parsed TOML table, and finding where a key stands in the
//! file (line and column) for error messages. Sweeps use the same paths.

use std::collections::HashMap;

use toml::{Table, Value};

use crate::error::InputError;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array element by position.
    Index(usize),
    /// An array element by its `name` (or, for countries, `code`).
    Name(String),
}

/// A parsed key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    pub segments: Vec<Segment>,
    pub text: String,
}

impl KeyPath {
    /// Parse `a.b[0].c` or `a.b[name].c`.
    pub fn parse(text: &str) -> Result<KeyPath, String> {
        let mut segments = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut expect_key = true;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    if expect_key {
                        return Err(format!("empty key segment at character {}", i + 1));
                    }
                    expect_key = true;
                    i += 1;
                }
                b'[' => {
                    let close = text[i..]
                        .find(']')
                        .ok_or_else(|| format!("`[` at character {} is never closed", i + 1))?;
                    let inner = text[i + 1..i + close].trim();
                    if inner.is_empty() {
                        return Err("empty `[]` in key path".into());
                    }
                    // A name may be quoted whole (`["chips"]`); a quote at
                    // one end only, or inside, is a typo, not part of a name.
                    let quoted = inner.strip_prefix('"').map(|rest| rest.strip_suffix('"'));
                    segments.push(match quoted {
                        Some(Some(name)) if !name.is_empty() && !name.contains('"') => {
                            Segment::Name(name.to_string())
                        }
                        None if !inner.contains('"') => match inner.parse::<usize>() {
                            Ok(n) => Segment::Index(n),
                            Err(_) => Segment::Name(inner.to_string()),
                        },
                        _ => {
                            return Err(format!(
                                "`[{inner}]` at character {}: quote a name whole (`[\"chips\"]`) or not at all",
                                i + 1
                            ));
                        }
                    });
                    i += close + 1;
                    expect_key = false;
                }
                _ => {
                    if !expect_key {
                        return Err(format!(
                            "expected `.` or `[` at character {} of the key path",
                            i + 1
                        ));
                    }
                    let end = text[i..]
                        .find(['.', '['])
                        .map(|e| i + e)
                        .unwrap_or(text.len());
                    let key = text[i..end].trim();
                    if key.is_empty() {
                        return Err(format!("empty key segment at character {}", i + 1));
                    }
                    segments.push(Segment::Key(key.to_string()));
                    i = end;
                    expect_key = false;
                }
            }
        }
        if segments.is_empty() || expect_key {
            return Err("the key path is empty or ends with `.`".into());
        }
        Ok(KeyPath {
            segments,
            text: text.to_string(),
        })
    }
}

/// Parse the right-hand side of `--set key=value`: any TOML value
/// (`0.5`, `true`, `"text"`, `[1, 2]`, `{ chips = 0.3 }`); anything that is not
/// valid TOML is taken as a bare string, so `--set network.kind=gravity` works.
pub fn parse_override_value(raw: &str) -> Value {
    let doc = format!("v = {raw}");
    match doc.parse::<Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Split `key=value`.
pub fn split_assignment(arg: &str) -> Result<(KeyPath, Value), InputError> {
    let (key, value) = arg.split_once('=').ok_or_else(|| {
        InputError::new(
            "command line",
            format!("`--set {arg}` must have the form key.path=value"),
        )
    })?;
    let path = KeyPath::parse(key.trim()).map_err(|e| {
        InputError::new(
            "command line",
            format!("bad key path in `--set {arg}`: {e}"),
        )
        .with_key(key.trim())
    })?;
    Ok((path, parse_override_value(value.trim())))
}

/// The names an array element answers to: its `name` and (countries) `code`.
fn element_names(v: &Value) -> impl Iterator<Item = &str> {
    let t = v.as_table();
    ["name", "code"]
        .into_iter()
        .filter_map(move |key| t.and_then(|t| t.get(key)).and_then(Value::as_str))
}

fn answers_to(v: &Value, name: &str) -> bool {
    element_names(v).any(|n| n == name)
}

/// Set `path` to `value` inside `root`, creating missing tables on the way
/// (`--set trust.retaliation=true` works even if the file has no `[trust]`).
/// Array elements must exist: an override cannot invent a regime or a sector.
pub fn set_path(root: &mut Table, path: &KeyPath, value: Value) -> Result<(), String> {
    let mut current: &mut Value = {
        let Segment::Key(first) = &path.segments[0] else {
            return Err("a key path must start with a key name".into());
        };
        if path.segments.len() == 1 {
            root.insert(first.clone(), value);
            return Ok(());
        }
        root.entry(first.clone())
            .or_insert_with(|| Value::Table(Table::new()))
    };
    let last = path.segments.len() - 1;
    for (pos, seg) in path.segments.iter().enumerate().skip(1) {
        let is_last = pos == last;
        match seg {
            Segment::Key(k) => {
                let table = current.as_table_mut().ok_or_else(|| {
                    format!(
                        "`{}` is not a table, so it has no key `{k}`",
                        prefix(path, pos)
                    )
                })?;
                if is_last {
                    table.insert(k.clone(), value);
                    return Ok(());
                }
                current = table
                    .entry(k.clone())
                    .or_insert_with(|| Value::Table(Table::new()));
            }
            Segment::Index(n) => {
                let arr = current
                    .as_array_mut()
                    .ok_or_else(|| format!("`{}` is not an array", prefix(path, pos)))?;
                let len = arr.len();
                let slot = arr.get_mut(*n).ok_or_else(|| {
                    format!(
                        "`{}` has {len} element(s), so index {n} does not exist",
                        prefix(path, pos)
                    )
                })?;
                if is_last {
                    *slot = value;
                    return Ok(());
                }
                current = slot;
            }
            Segment::Name(name) => {
                let arr = current
                    .as_array_mut()
                    .ok_or_else(|| format!("`{}` is not an array", prefix(path, pos)))?;
                let names: Vec<String> = arr
                    .iter()
                    .filter_map(|v| element_names(v).next().map(str::to_string))
                    .collect();
                let slot = arr
                    .iter_mut()
                    .find(|v| answers_to(v, name))
                    .ok_or_else(|| {
                        format!(
                            "`{}` has no element named `{name}` (names: {})",
                            prefix(path, pos),
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        )
                    })?;
                if is_last {
                    *slot = value;
                    return Ok(());
                }
                current = slot;
            }
        }
    }
    Ok(())
}

fn prefix(path: &KeyPath, upto: usize) -> String {
    let mut s = String::new();
    for seg in &path.segments[..upto] {
        match seg {
            Segment::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Segment::Index(n) => s.push_str(&format!("[{n}]")),
            Segment::Name(n) => s.push_str(&format!("[{n}]")),
        }
    }
    s
}

/// Rewrite `[name]` segments into `[index]` against the parsed table, so that
/// error messages and span look-ups use one canonical form.
pub fn canonical(root: &Table, path: &KeyPath) -> String {
    let mut out = String::new();
    let mut current: Option<&Value> = None;
    for (pos, seg) in path.segments.iter().enumerate() {
        match seg {
            Segment::Key(k) => {
                if pos > 0 {
                    out.push('.');
                }
                out.push_str(k);
                current = match current {
                    None => root.get(k),
                    Some(v) => v.as_table().and_then(|t| t.get(k)),
                };
            }
            Segment::Index(n) => {
                out.push_str(&format!("[{n}]"));
                current = current.and_then(|v| v.as_array()).and_then(|a| a.get(*n));
            }
            Segment::Name(name) => {
                let found = current.and_then(|v| v.as_array()).and_then(|a| {
                    a.iter()
                        .position(|v| answers_to(v, name))
                        .map(|i| (i, &a[i]))
                });
                match found {
                    Some((i, v)) => {
                        out.push_str(&format!("[{i}]"));
                        current = Some(v);
                    }
                    None => {
                        out.push_str(&format!("[{name}]"));
                        current = None;
                    }
                }
            }
        }
    }
    out
}

/// Where each key of a TOML text stands: canonical key path -> (line, column),
/// both 1-based. Built once per file, only read when an error is reported.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    positions: HashMap<String, (usize, usize)>,
}

impl SpanIndex {
    pub fn build(text: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        if let Ok(doc) = toml_edit::Document::parse(text) {
            let lines = LineStarts::new(text);
            walk_table(doc.as_table(), "", &lines, &mut index.positions);
        }
        index
    }

    /// Line and column of `key`, or of its nearest enclosing key that is known.
    pub fn locate(&self, key: &str) -> Option<(usize, usize)> {
        let mut k = key;
        loop {
            if let Some(p) = self.positions.get(k) {
                return Some(*p);
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }
}

struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let mut v = vec![0];
        v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineStarts(v)
    }
    fn at(&self, offset: usize) -> (usize, usize) {
        let line = self.0.partition_point(|&s| s <= offset);
        (line, offset - self.0[line - 1] + 1)
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_table(
    table: &toml_edit::Table,
    prefix: &str,
    lines: &LineStarts,
    out: &mut HashMap<String, (usize, usize)>,
) {
    for (key, item) in table.iter() {
        let path = join(prefix, key);
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        if let Some(span) = span {
            out.entry(path.clone()).or_insert(lines.at(span.start));
        }
        walk_item(item, &path, lines, out);
    }
}

fn walk_item(
    item: &toml_edit::Item,
    path: &str,
    lines: &LineStarts,
    out: &mut HashMap<String, (usize, usize)>,
) {
    match item {
        toml_edit::Item::Table(t) => walk_table(t, path, lines, out),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(span) = t.span() {
                    out.entry(p.clone()).or_insert(lines.at(span.start));
                }
                walk_table(t, &p, lines, out);
            }
        }
        toml_edit::Item::Value(v) => walk_value(v, path, lines, out),
        toml_edit::Item::None => {}
    }
}

fn walk_value(
    value: &toml_edit::Value,
    path: &str,
    lines: &LineStarts,
    out: &mut HashMap<String, (usize, usize)>,
) {
    match value {
        toml_edit::Value::InlineTable(t) => {
            for (key, v) in t.iter() {
                let p = join(path, key);
                let span = t.key(key).and_then(|k| k.span()).or_else(|| v.span());
                if let Some(span) = span {
                    out.entry(p.clone()).or_insert(lines.at(span.start));
                }
                walk_value(v, &p, lines, out);
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(span) = v.span() {
                    out.entry(p.clone()).or_insert(lines.at(span.start));
                }
                walk_value(v, &p, lines, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_name_segments() {
        let p = KeyPath::parse("policy.export_control[chips].sectors.ai").unwrap();
        assert_eq!(
            p.segments,
            vec![
                Segment::Key("policy".into()),
                Segment::Key("export_control".into()),
                Segment::Name("chips".into()),
                Segment::Key("sectors".into()),
                Segment::Key("ai".into()),
            ]
        );
        assert!(KeyPath::parse("a..b").is_err());
        assert!(KeyPath::parse("a.").is_err());
        assert!(KeyPath::parse("a[0").is_err());
        assert!(KeyPath::parse("a[0]b").is_err());
        // Quoted names: whole, or an error naming the brackets.
        assert_eq!(
            KeyPath::parse("sector[\"chips\"].share").unwrap().segments[1],
            Segment::Name("chips".into())
        );
        assert_eq!(
            KeyPath::parse("sector[\"3\"].share").unwrap().segments[1],
            Segment::Name("3".into())
        );
        for bad in [
            "sector[\"chips].share",
            "sector[chips\"].share",
            "sector[\"ch\"ips\"].share",
            "sector[\"\"].share",
            "sector[\"].share",
        ] {
            let e = KeyPath::parse(bad).unwrap_err();
            assert!(e.contains("quote a name whole"), "{bad}: {e}");
        }
    }

    #[test]
    fn override_by_name_and_index() {
        let mut t: Table = "[[policy.export_control]]\nname = \"chips\"\nlicence_rate = 0.1\n"
            .parse()
            .unwrap();
        let (p, v) = split_assignment("policy.export_control[chips].licence_rate=0.7").unwrap();
        set_path(&mut t, &p, v).unwrap();
        let (p, v) = split_assignment("trust.retaliation=true").unwrap();
        set_path(&mut t, &p, v).unwrap();
        let rc = &t["policy"]["export_control"][0];
        assert_eq!(rc["licence_rate"].as_float(), Some(0.7));
        assert_eq!(t["trust"]["retaliation"].as_bool(), Some(true));
        let (p, v) = split_assignment("policy.export_control[3].cost=1").unwrap();
        assert!(set_path(&mut t, &p, v).unwrap_err().contains("index 3"));
        let (p, _) = split_assignment("policy.export_control[chips].cost=1").unwrap();
        assert_eq!(canonical(&t, &p), "policy.export_control[0].cost");
    }

    #[test]
    fn countries_answer_to_their_code_even_with_a_name() {
        let mut t: Table = "[[world.country]]\ncode = \"FRA\"\nname = \"France\"\n"
            .parse()
            .unwrap();
        let (p, v) = split_assignment("world.country[FRA].gdp=2.5").unwrap();
        set_path(&mut t, &p, v).unwrap();
        let (p, v) = split_assignment("world.country[France].rd=1.5").unwrap();
        set_path(&mut t, &p, v).unwrap();
        assert_eq!(t["world"]["country"][0]["gdp"].as_float(), Some(2.5));
        assert_eq!(t["world"]["country"][0]["rd"].as_float(), Some(1.5));
    }

    #[test]
    fn bare_words_become_strings() {
        assert_eq!(
            parse_override_value("gravity"),
            Value::String("gravity".into())
        );
        assert_eq!(parse_override_value("0.5"), Value::Float(0.5));
        assert_eq!(parse_override_value("3"), Value::Integer(3));
    }

    #[test]
    fn span_index_finds_nested_keys() {
        let text = "steps = 3\n[[policy.export_control]]\nname = \"x\"\nsectors = { a = 0.5 }\n";
        let idx = SpanIndex::build(text);
        assert_eq!(idx.locate("steps"), Some((1, 1)));
        assert_eq!(idx.locate("policy.export_control[0].name"), Some((3, 1)));
        assert_eq!(
            idx.locate("policy.export_control[0].sectors.a"),
            Some((4, 13))
        );
        // falls back to the enclosing key
        assert_eq!(
            idx.locate("policy.export_control[0].name.zzz"),
            Some((3, 1))
        );
    }
}
