//! Reading a results folder's files for the report. Every problem becomes
//! one [`InputError`] naming the file (and the line or key) and what is
//! wrong; nothing here panics on bad input.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::error::InputError;

/// The file's text. `what` says what the file is for the message.
pub fn text(path: &Path, what: &str) -> Result<String, InputError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            InputError::new(&shown, format!("missing: a {what} needs this file"))
        } else {
            InputError::new(&shown, format!("cannot read: {e}"))
        }
    })?;
    String::from_utf8(bytes).map_err(|e| {
        InputError::new(
            &shown,
            format!(
                "not UTF-8 text (byte {}): not a file techdiff wrote",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// The file parsed as JSON.
pub fn json(path: &Path, what: &str) -> Result<Value, InputError> {
    let text = text(path, what)?;
    serde_json::from_str(&text).map_err(|e| {
        InputError::new(path.display().to_string(), format!("malformed JSON: {e}"))
            .at(Some((e.line(), e.column())))
    })
}

/// Typed access to the keys of a JSON object, with messages naming the file
/// and the key.
pub struct Json<'a> {
    pub file: &'a str,
    pub value: &'a Value,
}

impl<'a> Json<'a> {
    pub fn new(file: &'a str, value: &'a Value) -> Json<'a> {
        Json { file, value }
    }

    fn bad(&self, key: &str, want: &str) -> InputError {
        let found = match self.value.get(key) {
            None => "it is missing".to_string(),
            Some(v) => format!("found `{}`", super::html::clip(&v.to_string(), 60)),
        };
        InputError::new(self.file, format!("expected {want}, {found}")).with_key(key)
    }

    pub fn str(&self, key: &str) -> Result<&'a str, InputError> {
        self.value
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad(key, "a string"))
    }

    /// A string, or None when the key is absent or null.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(key, "a string or null")),
        }
    }

    pub fn u64(&self, key: &str) -> Result<u64, InputError> {
        self.value
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.bad(key, "a whole number >= 0"))
    }

    pub fn i64(&self, key: &str) -> Result<i64, InputError> {
        self.value
            .get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| self.bad(key, "a whole number"))
    }

    pub fn opt_f64(&self, key: &str) -> Option<f64> {
        self.value.get(key).and_then(Value::as_f64)
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>, InputError> {
        let list = self
            .value
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| self.bad(key, "a list of strings"))?;
        list.iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.bad(key, "a list of strings"))
    }

    pub fn object(&self, key: &str) -> Result<&'a serde_json::Map<String, Value>, InputError> {
        self.value
            .get(key)
            .and_then(Value::as_object)
            .ok_or_else(|| self.bad(key, "an object"))
    }
}

/// A CSV file read whole: its header and rows, with the line of each row
/// for messages.
pub struct Csv {
    pub file: String,
    pub header: Vec<String>,
    pub rows: Vec<(u64, csv::StringRecord)>,
    index: HashMap<String, usize>,
}

impl Csv {
    /// Read `path`; `required` columns must be in the header.
    pub fn read(path: &Path, what: &str, required: &[&str]) -> Result<Csv, InputError> {
        let file = path.display().to_string();
        let text = text(path, what)?;
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let bad_csv = |e: csv::Error| {
            let line = e.position().map(|p| p.line());
            let msg = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("a row has {len} fields where the header has {expected_len}"),
                _ => format!("malformed CSV: {e}"),
            };
            match line {
                Some(l) => InputError::new(&file, format!("line {l}: {msg}")),
                None => InputError::new(&file, msg),
            }
        };
        let header: Vec<String> = reader
            .headers()
            .map_err(bad_csv)?
            .iter()
            .map(str::to_string)
            .collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(InputError::new(&file, "empty file: no header row"));
        }
        let index: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), i))
            .collect();
        for col in required {
            if !index.contains_key(*col) {
                return Err(InputError::new(
                    &file,
                    format!(
                        "no `{col}` column (the header is `{}`)",
                        super::html::clip(&header.join(","), 200)
                    ),
                ));
            }
        }
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(bad_csv)?;
            let line = rec.position().map_or(0, |p| p.line());
            rows.push((line, rec));
        }
        Ok(Csv {
            file,
            header,
            rows,
            index,
        })
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The column's position; it must exist.
    pub fn col(&self, name: &str) -> Result<usize, InputError> {
        self.column(name)
            .ok_or_else(|| InputError::new(&self.file, format!("no `{name}` column")))
    }

    fn cell_error(&self, line: u64, col: usize, value: &str, want: &str) -> InputError {
        InputError::new(
            &self.file,
            format!(
                "line {line}: column `{}`: `{}` is not {want}",
                self.header[col],
                super::html::clip(value, 60)
            ),
        )
    }

    /// A number (empty cell: None).
    pub fn opt_f64(
        &self,
        row: &(u64, csv::StringRecord),
        col: usize,
    ) -> Result<Option<f64>, InputError> {
        let v = row.1.get(col).unwrap_or("").trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<f64>()
            .map(Some)
            .map_err(|_| self.cell_error(row.0, col, v, "a number"))
    }

    pub fn f64(&self, row: &(u64, csv::StringRecord), col: usize) -> Result<f64, InputError> {
        self.opt_f64(row, col)?
            .ok_or_else(|| self.cell_error(row.0, col, "", "a number"))
    }

    pub fn u64(&self, row: &(u64, csv::StringRecord), col: usize) -> Result<u64, InputError> {
        let v = row.1.get(col).unwrap_or("").trim();
        v.parse::<u64>()
            .map_err(|_| self.cell_error(row.0, col, v, "a whole number >= 0"))
    }

    pub fn str<'r>(&self, row: &'r (u64, csv::StringRecord), col: usize) -> &'r str {
        row.1.get(col).unwrap_or("")
    }

    /// An error about a row.
    pub fn error(&self, line: u64, msg: impl std::fmt::Display) -> InputError {
        InputError::new(&self.file, format!("line {line}: {msg}"))
    }
}
