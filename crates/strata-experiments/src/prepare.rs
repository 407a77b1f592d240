//! Items tokenized for one model: ids, target ids, corrupted partner, subject positions.

use strata_model::{Model, Tokenizer};

use crate::error::{input, ExperimentError, Result};
use crate::item::Item;

/// An [`Item`] tokenized for one model and checked (single-token targets, equal-length pairs).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: String,
    pub prompt: String,
    pub ids: Vec<u32>,
    /// Decoded text of every token of the prompt.
    pub tokens: Vec<String>,
    pub target: u32,
    pub target_text: String,
    pub distractor: Option<u32>,
    pub distractor_text: Option<String>,
    pub corrupted: Option<String>,
    pub corrupted_ids: Option<Vec<u32>>,
    pub corrupted_tokens: Option<Vec<String>>,
    /// Positions of the subject's tokens in `ids` (causal tracing corrupts these).
    pub subject_positions: Option<Vec<usize>>,
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn last(&self) -> usize {
        self.ids.len() - 1
    }

    pub fn require_distractor(&self) -> Result<u32> {
        self.distractor.ok_or_else(|| {
            ExperimentError::Input(format!(
                "item '{}': the logit-difference metric needs a distractor (--distractor)",
                self.id
            ))
        })
    }

    pub fn require_corrupted(&self) -> Result<&[u32]> {
        self.corrupted_ids.as_deref().ok_or_else(|| {
            ExperimentError::Input(format!(
                "item '{}': activation patching needs a corrupted prompt (--corrupted)",
                self.id
            ))
        })
    }

    pub fn require_subject(&self) -> Result<&[usize]> {
        self.subject_positions.as_deref().ok_or_else(|| {
            ExperimentError::Input(format!(
                "item '{}': causal tracing needs a subject (a substring of the prompt, --subject)",
                self.id
            ))
        })
    }
}

fn show_tokens(tok: &Tokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&i| format!("{:?}", tok.token(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tokenizes and validates one item.
pub fn prepare(model: &Model, item: &Item) -> Result<Prepared> {
    let tok = model.tokenizer()?;
    let name = if item.id.is_empty() {
        format!("{:?}", item.prompt)
    } else {
        format!("'{}'", item.id)
    };
    let ids = tok.encode(&item.prompt)?;
    if ids.is_empty() {
        return input(format!("item {name}: the prompt has no tokens"));
    }
    let single = |text: &str, what: &str| -> Result<u32> {
        tok.single_token(text)
            .map_err(|e| ExperimentError::Input(format!("item {name}: {what}: {e}")))
    };
    let target = single(&item.target, "target")?;
    let distractor = item
        .distractor
        .as_deref()
        .map(|d| single(d, "distractor"))
        .transpose()?;
    let corrupted_ids = match &item.corrupted {
        Some(c) => {
            let cids = tok.encode(c)?;
            if cids.len() != ids.len() {
                return input(format!(
                    "item {name}: clean and corrupted prompts must have the same number of tokens;\n  \
                     clean     ({} tokens): {}\n  corrupted ({} tokens): {}",
                    ids.len(),
                    show_tokens(tok, &ids),
                    cids.len(),
                    show_tokens(tok, &cids)
                ));
            }
            Some(cids)
        }
        None => None,
    };
    let subject_positions = match &item.subject {
        Some(s) => Some(
            subject_positions(tok, &item.prompt, s)
                .map_err(|e| ExperimentError::Input(format!("item {name}: {e}")))?,
        ),
        None => None,
    };
    Ok(Prepared {
        id: item.id.clone(),
        prompt: item.prompt.clone(),
        tokens: ids.iter().map(|&i| tok.token(i)).collect(),
        ids,
        target,
        target_text: item.target.clone(),
        distractor,
        distractor_text: item.distractor.clone(),
        corrupted: item.corrupted.clone(),
        corrupted_tokens: corrupted_ids
            .as_ref()
            .map(|c| c.iter().map(|&i| tok.token(i)).collect()),
        corrupted_ids,
        subject_positions,
    })
}

/// Tokenizes every item; errors name the item.
pub fn prepare_all(model: &Model, items: &[Item]) -> Result<Vec<Prepared>> {
    if items.is_empty() {
        return input("no items given");
    }
    items.iter().map(|it| prepare(model, it)).collect()
}

/// Positions of the tokens overlapping the (last) occurrence of `subject` in `prompt`.
fn subject_positions(tok: &Tokenizer, prompt: &str, subject: &str) -> Result<Vec<usize>> {
    let start = prompt.rfind(subject).ok_or_else(|| {
        ExperimentError::Input(format!(
            "subject {subject:?} does not occur in the prompt {prompt:?}"
        ))
    })?;
    let end = start + subject.len();
    let enc = tok
        .inner()
        .encode(prompt, true)
        .map_err(|e| ExperimentError::Input(format!("cannot tokenize {prompt:?}: {e}")))?;
    let special = enc.get_special_tokens_mask();
    let positions: Vec<usize> = enc
        .get_offsets()
        .iter()
        .enumerate()
        .filter(|(i, (s, e))| special.get(*i) != Some(&1) && e > s && *s < end && *e > start)
        .map(|(i, _)| i)
        .collect();
    if positions.is_empty() {
        return input(format!("subject {subject:?}: no token of the prompt covers it"));
    }
    Ok(positions)
}
