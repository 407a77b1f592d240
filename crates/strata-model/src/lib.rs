//! Model loading (safetensors, GGUF, Hugging Face hub) and the hooked decoder.
pub mod config;
pub mod error;
pub mod load;
pub mod tokenizer_gguf;

pub use config::{Family, ModelConfig};
pub use error::{ModelError, Result};
