//! Interpretability experiments on the hooked decoder: logit lens, ablation, activation
//! patching and causal tracing. Inputs are [`Item`]s (a prompt, its target, optional
//! distractor, corrupted partner and subject); outputs are serde types written as JSON and CSV
//! (schema in `docs/results.md`).

pub mod ablate;
pub mod attribution;
pub mod batch_size;
pub mod engine;
pub mod error;
pub mod item;
pub mod lens;
pub mod metric;
pub mod patch;
pub mod prepare;
pub mod probes;
pub mod results;
pub mod rng;
pub mod sweep;
pub mod trace;

pub use ablate::{ablate, AblateComponent, AblateOptions, AblateResult, AblationKind};
pub use attribution::{agreement, attribution_patching, Agreement};
pub use batch_size::BatchSize;
pub use error::{ExperimentError, Result};
pub use item::Item;
pub use lens::{logit_lens, LensOptions, LensResult, LensRow, LensSource, TopToken};
pub use metric::Metric;
pub use patch::{activation_patching, Direction, PatchComponent, PatchOptions, PatchResult};
pub use prepare::{prepare, prepare_all, Prepared};
pub use results::{ItemSummary, SweepRow, SCHEMA_VERSION};
pub use trace::{causal_trace, NoiseLevel, TraceKind, TraceOptions, TraceResult, TraceRow};
