//! Batches of token sequences, padded left or right, with their attention mask and positions.

use candle_core::{Device, Tensor};

use crate::error::{ModelError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    #[default]
    Right,
    Left,
}

/// Token ids of one or more prompts, padded to a common length.
///
/// Positions count from each prompt's first real token, so a padded prompt gives exactly the
/// result it gives alone (rotary and learned positions alike).
#[derive(Debug, Clone)]
pub struct TokenBatch {
    pub ids: Vec<Vec<u32>>,
    /// `true` for real tokens.
    pub mask: Vec<Vec<bool>>,
    pub positions: Vec<Vec<u32>>,
}

impl TokenBatch {
    /// One unpadded prompt.
    pub fn single(ids: Vec<u32>) -> Result<Self> {
        Self::padded(&[ids], Padding::Right, 0)
    }

    /// Pads prompts to the longest with `pad_id`.
    pub fn padded(prompts: &[Vec<u32>], padding: Padding, pad_id: u32) -> Result<Self> {
        if prompts.is_empty() {
            return Err(ModelError::Input("no prompts given".into()));
        }
        if let Some(i) = prompts.iter().position(|p| p.is_empty()) {
            return Err(ModelError::Input(format!("prompt {i} has no tokens")));
        }
        let len = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let mut batch = TokenBatch {
            ids: Vec::new(),
            mask: Vec::new(),
            positions: Vec::new(),
        };
        for p in prompts {
            let pad = len - p.len();
            let (ids, mask): (Vec<u32>, Vec<bool>) = match padding {
                Padding::Right => (
                    p.iter()
                        .copied()
                        .chain(std::iter::repeat_n(pad_id, pad))
                        .collect(),
                    (0..len).map(|i| i < p.len()).collect(),
                ),
                Padding::Left => (
                    std::iter::repeat_n(pad_id, pad)
                        .chain(p.iter().copied())
                        .collect(),
                    (0..len).map(|i| i >= pad).collect(),
                ),
            };
            batch.ids.push(ids);
            batch.mask.push(mask);
        }
        batch.positions = batch.mask.iter().map(|m| positions_from_mask(m)).collect();
        Ok(batch)
    }

    /// A batch from ids and an explicit mask (1 = real token), e.g. as a tokenizer returns them.
    pub fn from_mask(ids: Vec<Vec<u32>>, mask: Vec<Vec<bool>>) -> Result<Self> {
        if ids.is_empty() || ids.iter().any(|r| r.len() != ids[0].len()) || mask.len() != ids.len() {
            return Err(ModelError::Input(
                "ids must be a non-empty rectangle with a mask of the same shape".into(),
            ));
        }
        if mask
            .iter()
            .zip(&ids)
            .any(|(m, r)| m.len() != r.len() || !m.iter().any(|&x| x))
        {
            return Err(ModelError::Input(
                "each mask row must match its ids and hold a real token".into(),
            ));
        }
        let positions = mask.iter().map(|m| positions_from_mask(m)).collect();
        Ok(TokenBatch { ids, mask, positions })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn seq_len(&self) -> usize {
        self.ids[0].len()
    }

    /// Index of the last real token of row `b`.
    pub fn last_position(&self, b: usize) -> usize {
        self.mask[b].iter().rposition(|&m| m).unwrap_or(0)
    }

    pub fn ids_tensor(&self, device: &Device) -> Result<Tensor> {
        let flat: Vec<u32> = self.ids.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(flat, (self.len(), self.seq_len()), device)?)
    }

    pub fn positions_tensor(&self, device: &Device) -> Result<Tensor> {
        let flat: Vec<u32> = self.positions.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(flat, (self.len(), self.seq_len()), device)?)
    }

    /// Additive f32 attention bias `[b, 1, q, k]`: 0 where query q may attend key k, -inf
    /// elsewhere (causal, padding, sliding window). A padding query attends to itself only, so
    /// no row is empty and no NaN can arise. When every row has the same padding (none, as a
    /// rule) the bias is `[1, 1, q, k]`, broadcast over the batch: one row built and copied to
    /// the device instead of `b`.
    pub fn attention_bias(&self, window: Option<usize>, device: &Device) -> Result<Tensor> {
        let p = self.seq_len();
        let rows: &[Vec<bool>] = if self.mask.iter().all(|m| *m == self.mask[0]) {
            &self.mask[..1]
        } else {
            &self.mask
        };
        let mut bias = vec![f32::NEG_INFINITY; rows.len() * p * p];
        for (r, mask) in rows.iter().enumerate() {
            for q in 0..p {
                let row = &mut bias[(r * p + q) * p..(r * p + q + 1) * p];
                if !mask[q] {
                    row[q] = 0.0;
                    continue;
                }
                for (k, slot) in row.iter_mut().enumerate().take(q + 1) {
                    let in_window = window.is_none_or(|w| q - k < w);
                    if mask[k] && in_window {
                        *slot = 0.0;
                    }
                }
            }
        }
        Ok(Tensor::from_vec(bias, (rows.len(), 1, p, p), device)?)
    }
}

fn positions_from_mask(mask: &[bool]) -> Vec<u32> {
    let mut next = 0u32;
    mask.iter()
        .map(|&real| {
            let pos = next;
            if real {
                next += 1;
            }
            pos
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_positions_start_at_first_real_token() {
        let b = TokenBatch::padded(&[vec![5, 6], vec![1, 2, 3, 4]], Padding::Left, 0).unwrap();
        assert_eq!(b.ids[0], vec![0, 0, 5, 6]);
        assert_eq!(b.positions[0], vec![0, 0, 0, 1]);
        assert_eq!(b.positions[1], vec![0, 1, 2, 3]);
        assert_eq!(b.last_position(0), 3);
    }

    #[test]
    fn sliding_window_includes_the_query() {
        let b = TokenBatch::single(vec![1, 2, 3, 4]).unwrap();
        let bias = b.attention_bias(Some(2), &Device::Cpu).unwrap();
        let row3 = bias.flatten_all().unwrap().to_vec1::<f32>().unwrap()[12..16].to_vec();
        assert_eq!(row3, vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, 0.0]);
    }

    /// Rows with the same padding share one bias row; rows padded differently get their own.
    #[test]
    fn attention_bias_is_per_row_only_when_padding_differs() {
        let same = TokenBatch::padded(&[vec![1, 2, 3], vec![4, 5, 6]], Padding::Left, 0).unwrap();
        assert_eq!(
            same.attention_bias(None, &Device::Cpu).unwrap().dims(),
            [1, 1, 3, 3]
        );
        let padded = TokenBatch::padded(&[vec![1, 2], vec![4, 5, 6]], Padding::Left, 0).unwrap();
        let bias = padded.attention_bias(None, &Device::Cpu).unwrap();
        assert_eq!(bias.dims(), [2, 1, 3, 3]);
        let v = bias.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // row 0's last query sees its two real tokens, not the padding at key 0
        assert_eq!(v[6..9], [f32::NEG_INFINITY, 0.0, 0.0]);
        assert_eq!(v[15..18], [0.0, 0.0, 0.0]);
    }
}
