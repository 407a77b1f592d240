//! Model loading (safetensors, GGUF, Hugging Face hub) and the hooked decoder.
//!
//! ```text
//! Model::load(spec) ─► ModelConfig + HookedDecoder + Tokenizer
//! decoder.forward(&TokenBatch, &mut hook) ─► logits, every activation shown to `hook`
//! ```
pub mod batch;
pub mod config;
pub mod decoder;
pub mod device_memory;
pub mod error;
pub mod hooks;
mod linear;
pub mod load;
pub mod tokenizer;
pub mod tokenizer_gguf;

pub use batch::{Padding, TokenBatch};
pub use config::{Family, ModelConfig};
pub use decoder::{ForwardContext, HookedDecoder, KvCache, RunOptions};
pub use device_memory::{available_device_memory, keep_freed_device_memory};
pub use error::{ModelError, Result};
pub use hooks::{ActivationCache, Axes, Edit, Hook, HookLayout, HookPoint, HookSet, Intervention, NoHooks};
pub use load::{parse_device, parse_dtype, LoadOptions, Model};
pub use tokenizer::Tokenizer;
