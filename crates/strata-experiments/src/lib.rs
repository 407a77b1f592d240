//! Interpretability experiments on the hooked decoder: logit lens, ablation,
//! activation patching and causal tracing.

pub mod item;

pub use item::Item;
