//! Text ↔ token ids: a `tokenizers::Tokenizer` from tokenizer.json or rebuilt from GGUF metadata.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl Tokenizer {
    pub fn new(inner: tokenizers::Tokenizer, path: PathBuf) -> Self {
        Tokenizer { inner, path }
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| ModelError::file(path, format!("not a valid tokenizer.json: {e}")))?;
        Ok(Tokenizer {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Where the tokenizer came from (tokenizer.json or the GGUF file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids of `text`, with the model's special tokens (e.g. BOS) where its tokenizer adds them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ModelError::Input(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids of `text` without special tokens (for targets such as " Paris").
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Input(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The single id of a target string, or an error listing its tokens.
    pub fn single_token(&self, text: &str) -> Result<u32> {
        let ids = self.encode_plain(text)?;
        match ids.as_slice() {
            [id] => Ok(*id),
            _ => Err(ModelError::Input(format!(
                "target {text:?} is {} tokens ({}), not one; choose a single-token target",
                ids.len(),
                ids.iter()
                    .map(|&i| format!("{:?}", self.token(i)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }

    /// Decoded text of one token.
    pub fn token(&self, id: u32) -> String {
        self.inner
            .decode(&[id], false)
            .unwrap_or_else(|_| format!("<{id}>"))
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }
}
