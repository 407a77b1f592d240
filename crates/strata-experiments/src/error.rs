//! Errors of the experiments crate.

use strata_model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A bad experiment input (item, option, component name), with a message saying what to fix.
    #[error("{0}")]
    Input(String),

    #[error(transparent)]
    Model(#[from] ModelError),

    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error("serialising results: {0}")]
    Serde(#[from] serde_json::Error),

    #[error("writing CSV: {0}")]
    Csv(String),
}

pub type Result<T> = std::result::Result<T, ExperimentError>;

pub(crate) fn input<T>(msg: impl Into<String>) -> Result<T> {
    Err(ExperimentError::Input(msg.into()))
}
