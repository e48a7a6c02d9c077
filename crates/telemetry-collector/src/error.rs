//! The crate's error type.

use std::fmt;

/// Why the collector could not start, or a store operation failed.
#[derive(Debug)]
pub enum Error {
    /// Binding the listen address or another socket/file operation failed.
    Io(std::io::Error),
    /// SQLite refused to open the database or to run a statement.
    Database(rusqlite::Error),
    /// PostgreSQL could not be reached or refused a statement.
    Postgres(postgres::Error),
    /// The listen address is not `host:port`.
    InvalidAddress(String),
    /// The configuration cannot work (e.g. listening beyond loopback without an
    /// admin token, an unreadable certificate, a database from a newer collector).
    Config(String),
    /// The store is busy with too much queued work; retry shortly.
    Overloaded,
    /// The collector is shutting down and takes no more writes.
    ShuttingDown,
}

impl Error {
    /// Whether retrying later can succeed: the database is unreachable, locked,
    /// full or overloaded, not refusing the data. The server answers these with
    /// 503 and `Retry-After`, which PostHog senders retry.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(e) => crate::store::sqlite_is_transient(e),
            Error::Postgres(e) => crate::store::postgres_is_transient(e),
            Error::Overloaded | Error::ShuttingDown => true,
            Error::Io(_) | Error::InvalidAddress(_) | Error::Config(_) => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Database(e) => write!(f, "database error: {e}"),
            Error::Postgres(e) => match e.as_db_error() {
                // The server's own message says more than "db error".
                Some(db) => write!(
                    f,
                    "PostgreSQL error: {}: {}",
                    db.code().code(),
                    db.message()
                ),
                None => write!(f, "PostgreSQL error: {e}"),
            },
            Error::InvalidAddress(a) => {
                write!(
                    f,
                    "invalid listen address {a:?}: expected host:port, e.g. 127.0.0.1:8765"
                )
            }
            Error::Config(message) => f.write_str(message),
            Error::Overloaded => f.write_str("the store has too much queued work; retry shortly"),
            Error::ShuttingDown => f.write_str("the collector is shutting down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Database(e) => Some(e),
            Error::Postgres(e) => Some(e),
            _ => None,
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

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Postgres(e)
    }
}
