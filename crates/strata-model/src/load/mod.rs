//! Where weights and configs come from: local safetensors directories, the hub, GGUF files.
pub mod gguf;
