//! One experiment input: a prompt with its target (and optional distractor,
//! corrupted partner and subject span). Probe suites return `Vec<Item>`.

use serde::{Deserialize, Serialize};

/// A single prompt for an experiment.
///
/// * `target` / `distractor` are token strings (e.g. `" Paris"`) that must be a
///   single token for the model in use.
/// * `corrupted` is the corrupted partner for activation patching; it must have
///   the same token length as `prompt`.
/// * `subject` is a substring of `prompt` whose tokens causal tracing corrupts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Item {
    pub id: String,
    pub prompt: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distractor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Item {
    /// An item with only a prompt and a target.
    pub fn new(id: impl Into<String>, prompt: impl Into<String>, target: impl Into<String>) -> Self {
        Item {
            id: id.into(),
            prompt: prompt.into(),
            target: target.into(),
            ..Default::default()
        }
    }

    pub fn with_distractor(mut self, d: impl Into<String>) -> Self {
        self.distractor = Some(d.into());
        self
    }

    pub fn with_corrupted(mut self, c: impl Into<String>) -> Self {
        self.corrupted = Some(c.into());
        self
    }

    pub fn with_subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }
}
