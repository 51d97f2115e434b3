//! Errors: small typed kinds, positions never values.
//!
//! Every message crosswalk produces names *where* a problem is (file, row, column, field) and
//! *what kind* of problem it is, never the offending value: an identifier quoted in an error
//! message would leave the agency in a log file. [`Error::exit_code`] maps each kind to the
//! documented exit code of the `crosswalk` binary (docs/cli.md).
//!
//! # Example
//!
//! ```
//! use crosswalk::error::{Error, ErrorKind};
//!
//! let err = Error::new(ErrorKind::Config {
//!     file: "agency.toml".into(),
//!     message: "unknown field `dbo`".into(),
//! });
//! assert_eq!(err.exit_code(), 3);
//! assert!(err.to_string().contains("agency.toml"));
//! ```

use std::path::PathBuf;

/// A crosswalk error. Boxed so that `Result<T>` stays one pointer wide on the happy path.
#[derive(Debug)]
pub struct Error(Box<ErrorKind>);

/// `Result` with crosswalk's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Messages carry positions and counts, never input values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file (linkage schema or source mapping) is invalid.
    #[error("{file}: {message}")]
    Config {
        /// The configuration file.
        file: PathBuf,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
    /// The secret key file is missing, malformed or too widely readable.
    #[error("key file {file}: {message}")]
    Key {
        /// The key file.
        file: PathBuf,
        /// What is wrong (never any part of the key).
        message: String,
    },
    /// The input export cannot be processed as a whole (missing columns, empty file, unknown
    /// codes, ...). Row-level problems are not errors: they go to the rejects report.
    #[error("{file}: {message}")]
    Input {
        /// The input file.
        file: PathBuf,
        /// What is wrong, with row and column positions where they apply.
        message: String,
    },
    /// Encodings that cannot be used together or a damaged encoding file.
    #[error("{file}: {message}")]
    Encoding {
        /// The encoding file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Another run holds the registry's lock.
    #[error("{path}: {message}")]
    Busy {
        /// The registry directory.
        path: PathBuf,
        /// Who holds it and what to do.
        message: String,
    },
    /// Writing a Parquet file failed.
    #[error("{path}: writing Parquet failed: {message}")]
    Parquet {
        /// The file being written or read.
        path: PathBuf,
        /// The Parquet library's message (it never contains cell values).
        message: String,
    },
}

impl Error {
    /// Wraps an [`ErrorKind`].
    pub fn new(kind: ErrorKind) -> Error {
        Error(Box::new(kind))
    }

    /// The kind of this error.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    /// The process exit code the `crosswalk` binary uses for this error (docs/cli.md):
    /// 1 I/O or Parquet failure, 3 configuration or key problem, 4 bad input data, 5 the
    /// registry is in use by another run.
    /// (2 is reserved for command-line usage errors, reported by the argument parser.)
    pub fn exit_code(&self) -> i32 {
        match *self.0 {
            ErrorKind::Io { .. } | ErrorKind::Parquet { .. } => 1,
            ErrorKind::Config { .. } | ErrorKind::Key { .. } => 3,
            ErrorKind::Input { .. } | ErrorKind::Encoding { .. } => 4,
            ErrorKind::Busy { .. } => 5,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::new(ErrorKind::Io {
            path: path.into(),
            source,
        })
    }

    /// A configuration error in `file`.
    pub fn config(file: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config {
            file: file.into(),
            message: message.into(),
        })
    }

    /// A key-file error.
    pub fn key(file: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Key {
            file: file.into(),
            message: message.into(),
        })
    }

    /// An input-data error in `file`.
    pub fn input(file: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Input {
            file: file.into(),
            message: message.into(),
        })
    }

    /// An encoding-file error.
    pub fn encoding(file: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Encoding {
            file: file.into(),
            message: message.into(),
        })
    }

    /// The registry at `path` is locked by another run.
    pub fn busy(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Busy {
            path: path.into(),
            message: message.into(),
        })
    }

    /// A Parquet error while handling `path`.
    pub fn parquet(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Parquet {
            path: path.into(),
            message: err.to_string(),
        })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
