//! Scenario files: reading TOML, applying `--set` overrides, and building a
//! validated [`Scenario`] (two stages, as in ripgrep: a serde mirror of what
//! the user wrote, then checked, ready-to-use structures).

mod build;
pub mod file;
pub mod keys;

use std::path::{Path, PathBuf};

use toml::Table;

use crate::error::InputError;
pub use crate::model::Scenario;
use keys::{KeyPath, SpanIndex};

/// The default scenario (`tightening.toml`) and the data it names, embedded in
/// the binary so that `techdiff` runs from any folder.
pub const DEFAULT_SCENARIO_NAME: &str = "tightening.toml";
const EMBEDDED: &[(&str, &str)] = &[
    (
        "tightening.toml",
        include_str!("../../scenarios/tightening.toml"),
    ),
    (
        "data/countries.csv",
        include_str!("../../scenarios/data/countries.csv"),
    ),
];

/// Where a scenario's relative paths (countries CSV, edge lists) are read from.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// Files on disk, relative to this folder (the scenario file's own).
    Disk(PathBuf),
    /// The files embedded in the binary.
    Embedded,
}

impl FileSource {
    /// Read `relative`; returns (name to show in messages, contents).
    pub fn read(
        &self,
        relative: &str,
        key: &str,
        from_file: &str,
    ) -> Result<(String, String), InputError> {
        match self {
            FileSource::Disk(dir) => {
                let path = dir.join(relative);
                let shown = path.display().to_string();
                read_text(&path).map(|t| (shown, t)).map_err(|e| {
                    InputError::new(
                        from_file,
                        format!("{e} (the path is relative to the scenario file)"),
                    )
                    .with_key(key)
                })
            }
            FileSource::Embedded => EMBEDDED
                .iter()
                .find(|(name, _)| *name == relative)
                .map(|(name, text)| (format!("<embedded>/{name}"), (*text).to_string()))
                .ok_or_else(|| {
                    InputError::new(from_file, format!("no embedded file `{relative}`"))
                        .with_key(key)
                }),
        }
    }
}

/// Read a UTF-8 text file, with messages that say what went wrong.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("file `{}` does not exist", path.display()),
        std::io::ErrorKind::IsADirectory => format!("`{}` is a folder, not a file", path.display()),
        _ => format!("cannot read `{}`: {e}", path.display()),
    })?;
    if bytes.is_empty() {
        return Err(format!("file `{}` is empty", path.display()));
    }
    if bytes.contains(&0) {
        return Err(format!("file `{}` is binary, not text", path.display()));
    }
    String::from_utf8(bytes).map_err(|_| format!("file `{}` is not UTF-8 text", path.display()))
}

/// A scenario as loaded: the validated model plus the table it was built from
/// (after overrides), which the manifest records.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    /// The scenario table after `--set` overrides.
    pub table: Table,
    /// Where it came from (a path, or `<embedded>/tightening.toml`).
    pub origin: String,
}

/// Load a scenario file from disk and apply overrides (`key.path=value`).
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedScenario, InputError> {
    let shown = path.display().to_string();
    let text = read_text(path).map_err(|e| InputError::new(&shown, e))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    load_text(&text, &shown, FileSource::Disk(dir), overrides)
}

/// Load the embedded default scenario.
pub fn load_default(overrides: &[String]) -> Result<LoadedScenario, InputError> {
    let (shown, text) = FileSource::Embedded.read(DEFAULT_SCENARIO_NAME, "", "<embedded>")?;
    load_text(&text, &shown, FileSource::Embedded, overrides)
}

/// Parse a TOML table, reporting syntax errors with line and column.
pub fn parse_table(text: &str, shown: &str) -> Result<Table, InputError> {
    text.parse::<Table>().map_err(|e| {
        let line_col = e.span().map(|s| {
            let before = &text[..s.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            (line, col)
        });
        InputError::new(shown, format!("TOML syntax error: {}", e.message().trim())).at(line_col)
    })
}

/// A typed override: a key path and the value to put there.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub path: KeyPath,
    pub value: toml::Value,
}

impl Override {
    /// Parse `key.path=value` (the `--set` syntax).
    pub fn parse(arg: &str) -> Result<Override, InputError> {
        let (path, value) = keys::split_assignment(arg)?;
        Ok(Override { path, value })
    }
}

/// Apply overrides to a parsed table. Returns the canonical paths that were
/// set. `source` says who set them, for messages ("on the command line").
pub fn apply_overrides(
    table: &mut Table,
    overrides: &[Override],
    source: &str,
) -> Result<Vec<String>, InputError> {
    let mut set = Vec::new();
    for o in overrides {
        keys::set_path(table, &o.path, o.value.clone()).map_err(|e| {
            InputError::new(
                source,
                format!("cannot set `{}` = {}: {e}", o.path.text, o.value),
            )
            .with_key(&o.path.text)
        })?;
        set.push(keys::canonical(table, &o.path));
    }
    Ok(set)
}

/// Load a scenario from its text, with `--set` style overrides.
pub fn load_text(
    text: &str,
    shown: &str,
    files: FileSource,
    overrides: &[String],
) -> Result<LoadedScenario, InputError> {
    let typed = overrides
        .iter()
        .map(|a| Override::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    load_with(text, shown, files, &typed, "command line")
}

/// Load a scenario from its text with typed overrides; `source` names who set
/// them in messages ("command line", "sweep point 3").
pub fn load_with(
    text: &str,
    shown: &str,
    files: FileSource,
    overrides: &[Override],
    source: &str,
) -> Result<LoadedScenario, InputError> {
    let mut table = parse_table(text, shown)?;
    let overridden = apply_overrides(&mut table, overrides, source)?;
    let ctx = build::Context {
        file: shown.to_string(),
        spans: SpanIndex::build(text),
        overridden,
        override_source: if source == "command line" {
            "on the command line".into()
        } else {
            format!("by {source}")
        },
    };
    let raw: file::ScenarioFile =
        serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            // `message()`, not `to_string()`: the latter appends "in `key`"
            // on extra lines, and the key is already in the message.
            ctx.error(&key, clean_serde_message(e.inner().message()))
        })?;
    let scenario = build::build(raw, &ctx, &files)?;
    Ok(LoadedScenario {
        scenario,
        table,
        origin: shown.to_string(),
    })
}

/// serde's messages are good but name Rust types; say it in TOML's words.
pub(crate) fn clean_serde_message(msg: &str) -> String {
    msg.replace("i64", "an integer")
        .replace("f64", "a number")
        .replace("invalid type: floating point", "invalid type: number")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_loads() {
        let s = load_default(&[]).expect("embedded default scenario is valid");
        assert!(s.scenario.world.len() >= 60);
        assert!(!s.scenario.regimes.is_empty());
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse_table("steps = 3\nseed = = 4\n", "x.toml").unwrap_err();
        assert_eq!(e.file, "x.toml");
        assert_eq!(e.line_col.map(|l| l.0), Some(2));
        assert!(e.message.contains("syntax"));
    }
}
