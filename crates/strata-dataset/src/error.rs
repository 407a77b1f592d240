//! Errors of the dataset crate: each names the file and, for data errors, the line and column.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: malformed CSV: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: column {column_index} `{column}`: {message} (value {value:?})")]
    Value {
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// 1-based column index in the file.
        column_index: usize,
        /// The column's header as written in the file.
        column: String,
        value: String,
        message: String,
    },
    #[error("{path}: no column maps to {what} (headers: {headers})")]
    MissingColumn {
        path: PathBuf,
        what: String,
        headers: String,
    },
    #[error("{path}: no data rows")]
    Empty { path: PathBuf },
    #[error("{0}")]
    Analysis(String),
}

impl DatasetError {
    /// The 1-based (line, column index) a data error points at, if any.
    pub fn location(&self) -> Option<(u64, usize)> {
        match self {
            DatasetError::Value {
                line, column_index, ..
            } => Some((*line, *column_index)),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, DatasetError>;
