//! Error types. Input errors carry the file, the key path (in the same syntax
//! as `--set`), the line and column where known, and what is allowed, so the
//! binary can print one clear message and exit with code 2.

use std::fmt;
use std::path::PathBuf;

/// A problem with what the user gave us: a scenario or sweep file, a data file
/// it names, a command-line override. Always the user's to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file the problem is in (or `command line`).
    pub file: String,
    /// Key path such as `policy.export_control[0].licence_rate`, if any.
    pub key: Option<String>,
    /// 1-based line and column, when the parser or the span index knows them.
    pub line_col: Option<(usize, usize)>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl InputError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        InputError {
            file: file.into(),
            key: None,
            line_col: None,
            message: message.into(),
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.key = if key.is_empty() { None } else { Some(key) };
        self
    }

    pub fn at(mut self, line_col: Option<(usize, usize)>) -> Self {
        self.line_col = line_col;
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Every error the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: exit code 2.
    #[error("{0}")]
    Input(#[from] InputError),
    /// A sweep finished, but some of its runs failed (see failures.csv):
    /// exit code 3.
    #[error("{0} runs failed")]
    SomeRunsFailed(usize),
    /// Writing results failed (disk full, permissions): exit code 1.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn output(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Output {
            path: path.into(),
            source,
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => 2,
            Error::Output { .. } => 1,
            Error::SomeRunsFailed(_) => 3,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
