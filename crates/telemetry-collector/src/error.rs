//! The crate's error type.

use std::fmt;

/// Why the collector could not start, or a store query failed.
#[derive(Debug)]
pub enum Error {
    /// Binding the listen address or another socket/file operation failed.
    Io(std::io::Error),
    /// SQLite refused to open the database or to run a statement.
    Database(rusqlite::Error),
    /// The listen address is not `host:port`.
    InvalidAddress(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Database(e) => write!(f, "database error: {e}"),
            Error::InvalidAddress(a) => {
                write!(
                    f,
                    "invalid listen address {a:?}: expected host:port, e.g. 127.0.0.1:8765"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Database(e) => Some(e),
            Error::InvalidAddress(_) => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Database(e)
    }
}
