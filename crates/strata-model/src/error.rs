//! Errors of model loading and running, each naming the file, field or item at fault.
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, ModelError>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unsupported architecture '{found}'; supported model_type values: {supported}")]
    UnsupportedArchitecture { found: String, supported: String },

    #[error("config field '{field}': {message}")]
    Config { field: String, message: String },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    #[error("unknown hook point '{name}'{suggestion}")]
    UnknownHook { name: String, suggestion: String },

    #[error("{0}")]
    Input(String),

    #[error(
        "non-finite value (NaN or Inf) first appears at hook point {point} (flat index {index} of shape {shape:?}); \
         in f16 this is usually overflow (try --dtype bf16 or f32), otherwise check the weights that feed it"
    )]
    NonFinite {
        point: String,
        index: usize,
        shape: Vec<usize>,
    },

    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub fn config(field: &str, message: String) -> Self {
        ModelError::Config {
            field: field.to_string(),
            message,
        }
    }

    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::File {
            path: path.into(),
            message: message.into(),
        }
    }
}
