//! Hook points (TransformerLens names), the activation cache and interventions.
//!
//! A hook point is a value ([`HookPoint::ResidPre(3)`]); its TransformerLens name is used only at
//! the edges (CLI, saved files). The decoder offers every activation to a [`Hook`], which may
//! record it or return a replacement.

use candle_core::{DType, Tensor};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::error::{ModelError, Result};

/// Activation sites of the hooked decoder. See `docs/hooks.md` for what each one holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    Embed,
    PosEmbed,
    ResidPre(usize),
    Ln1(usize),
    Q(usize),
    K(usize),
    V(usize),
    AttnScores(usize),
    Pattern(usize),
    Z(usize),
    AttnOut(usize),
    ResidMid(usize),
    Ln2(usize),
    MlpPre(usize),
    MlpPost(usize),
    MlpOut(usize),
    ResidPost(usize),
    LnFinal,
    Logits,
}

/// Builds a per-block hook point from its layer.
type BlockHook = fn(usize) -> HookPoint;

/// Per-block hook names, in forward order, with their constructors.
const BLOCK_HOOKS: &[(&str, BlockHook)] = &[
    ("hook_resid_pre", HookPoint::ResidPre),
    ("ln1.hook_normalized", HookPoint::Ln1),
    ("attn.hook_q", HookPoint::Q),
    ("attn.hook_k", HookPoint::K),
    ("attn.hook_v", HookPoint::V),
    ("attn.hook_attn_scores", HookPoint::AttnScores),
    ("attn.hook_pattern", HookPoint::Pattern),
    ("attn.hook_z", HookPoint::Z),
    ("hook_attn_out", HookPoint::AttnOut),
    ("hook_resid_mid", HookPoint::ResidMid),
    ("ln2.hook_normalized", HookPoint::Ln2),
    ("mlp.hook_pre", HookPoint::MlpPre),
    ("mlp.hook_post", HookPoint::MlpPost),
    ("hook_mlp_out", HookPoint::MlpOut),
    ("hook_resid_post", HookPoint::ResidPost),
];

/// Which axes of a hook's tensor are positions and heads (for restricted interventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axes {
    pub position: usize,
    pub head: Option<usize>,
}

impl HookPoint {
    pub fn layer(self) -> Option<usize> {
        use HookPoint::*;
        match self {
            ResidPre(l) | Ln1(l) | Q(l) | K(l) | V(l) | AttnScores(l) | Pattern(l) | Z(l) | AttnOut(l)
            | ResidMid(l) | Ln2(l) | MlpPre(l) | MlpPost(l) | MlpOut(l) | ResidPost(l) => Some(l),
            Embed | PosEmbed | LnFinal | Logits => None,
        }
    }

    /// Axes of positions (query positions for scores/patterns) and heads.
    pub fn axes(self) -> Axes {
        use HookPoint::*;
        match self {
            Q(_) | K(_) | V(_) | Z(_) => Axes {
                position: 1,
                head: Some(2),
            },
            AttnScores(_) | Pattern(_) => Axes {
                position: 2,
                head: Some(1),
            },
            _ => Axes {
                position: 1,
                head: None,
            },
        }
    }

    /// Every hook point of a model with `n_layers` blocks, in forward order.
    pub fn all(n_layers: usize, learned_positions: bool) -> Vec<HookPoint> {
        let mut out = vec![HookPoint::Embed];
        if learned_positions {
            out.push(HookPoint::PosEmbed);
        }
        for l in 0..n_layers {
            out.extend(BLOCK_HOOKS.iter().map(|(_, make)| make(l)));
        }
        out.extend([HookPoint::LnFinal, HookPoint::Logits]);
        out
    }

    fn block_suffix(self) -> Option<&'static str> {
        let l = self.layer()?;
        BLOCK_HOOKS
            .iter()
            .find(|(_, make)| make(l) == self)
            .map(|(name, _)| *name)
    }

    /// Parses a name, suggesting the closest valid names of this model when it is unknown or
    /// names what this model does not have.
    pub fn parse_for(name: &str, n_layers: usize, learned_positions: bool) -> Result<HookPoint> {
        match name.parse::<HookPoint>() {
            Ok(HookPoint::PosEmbed) if !learned_positions => Err(ModelError::UnknownHook {
                name: name.to_string(),
                suggestion: ": this model has no learned position embeddings (its positions are \
                             rotary, applied to queries and keys inside attention)"
                    .to_string(),
            }),
            Ok(p) if p.layer().is_none_or(|l| l < n_layers) => Ok(p),
            _ => {
                let all = HookPoint::all(n_layers, learned_positions);
                let mut scored: Vec<(usize, String)> = all
                    .iter()
                    .map(|p| (edit_distance(name, &p.to_string()), p.to_string()))
                    .collect();
                scored.sort();
                let best: Vec<String> = scored.into_iter().take(3).map(|(_, n)| n).collect();
                Err(ModelError::UnknownHook {
                    name: name.to_string(),
                    suggestion: format!(
                        " (this model has {n_layers} blocks); did you mean: {}?",
                        best.join(", ")
                    ),
                })
            }
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => f.write_str("hook_embed"),
            HookPoint::PosEmbed => f.write_str("hook_pos_embed"),
            HookPoint::LnFinal => f.write_str("ln_final.hook_normalized"),
            HookPoint::Logits => f.write_str("logits"),
            p => write!(
                f,
                "blocks.{}.{}",
                p.layer().unwrap_or(0),
                p.block_suffix().unwrap_or("?")
            ),
        }
    }
}

impl FromStr for HookPoint {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self> {
        let unknown = || ModelError::UnknownHook {
            name: name.to_string(),
            suggestion: String::new(),
        };
        match name {
            "hook_embed" => return Ok(HookPoint::Embed),
            "hook_pos_embed" => return Ok(HookPoint::PosEmbed),
            "ln_final.hook_normalized" => return Ok(HookPoint::LnFinal),
            "logits" => return Ok(HookPoint::Logits),
            _ => {}
        }
        let rest = name.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, suffix) = rest.split_once('.').ok_or_else(unknown)?;
        let layer: usize = layer.parse().map_err(|_| unknown())?;
        BLOCK_HOOKS
            .iter()
            .find(|(n, _)| *n == suffix)
            .map(|(_, make)| make(layer))
            .ok_or_else(unknown)
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Something the decoder shows every activation to.
pub trait Hook {
    /// Whether `point` is of interest; the decoder skips the call otherwise.
    fn wants(&self, point: HookPoint) -> bool;
    /// Sees the activation and returns the tensor the forward continues with.
    fn visit(&mut self, point: HookPoint, act: Tensor) -> Result<Tensor>;
}

/// No hooks: the plain forward.
pub struct NoHooks;

impl Hook for NoHooks {
    fn wants(&self, _: HookPoint) -> bool {
        false
    }
    fn visit(&mut self, _: HookPoint, act: Tensor) -> Result<Tensor> {
        Ok(act)
    }
}

/// Keeps the activations a filter selects (as TransformerLens' `run_with_cache(names_filter=...)`).
pub struct ActivationCache {
    filter: Box<dyn Fn(HookPoint) -> bool>,
    pub activations: BTreeMap<HookPoint, Tensor>,
}

impl ActivationCache {
    pub fn new(filter: impl Fn(HookPoint) -> bool + 'static) -> Self {
        ActivationCache {
            filter: Box::new(filter),
            activations: BTreeMap::new(),
        }
    }

    pub fn of(points: impl IntoIterator<Item = HookPoint>) -> Self {
        let set: HashSet<HookPoint> = points.into_iter().collect();
        Self::new(move |p| set.contains(&p))
    }

    pub fn get(&self, point: HookPoint) -> Result<&Tensor> {
        self.activations
            .get(&point)
            .ok_or_else(|| ModelError::Input(format!("activation {point} was not cached")))
    }
}

impl Hook for ActivationCache {
    fn wants(&self, point: HookPoint) -> bool {
        (self.filter)(point)
    }
    fn visit(&mut self, point: HookPoint, act: Tensor) -> Result<Tensor> {
        self.activations.insert(point, act.clone());
        Ok(act)
    }
}

/// What an intervention does to the selected slice of an activation.
#[derive(Debug, Clone)]
pub enum Edit {
    Zero,
    /// Replace with this tensor, broadcast to the slice's shape.
    Set(Tensor),
    Add(Tensor),
    Scale(f64),
}

/// An edit of one hook point, optionally restricted to some positions and heads (all batch rows).
#[derive(Debug, Clone)]
pub struct Intervention {
    pub point: HookPoint,
    pub positions: Option<Vec<usize>>,
    pub heads: Option<Vec<usize>>,
    pub edit: Edit,
}

impl Intervention {
    pub fn new(point: HookPoint, edit: Edit) -> Self {
        Intervention {
            point,
            positions: None,
            heads: None,
            edit,
        }
    }

    pub fn at_positions(mut self, positions: Vec<usize>) -> Self {
        self.positions = Some(positions);
        self
    }

    pub fn at_heads(mut self, heads: Vec<usize>) -> Self {
        self.heads = Some(heads);
        self
    }

    /// Applies the edit with a 0/1 selection mask so that unselected entries are left bit-exact.
    pub fn apply(&self, act: &Tensor) -> Result<Tensor> {
        let edited = match &self.edit {
            Edit::Zero => act.zeros_like()?,
            Edit::Set(t) => t.to_dtype(act.dtype())?.broadcast_as(act.shape())?.contiguous()?,
            Edit::Add(t) => act.broadcast_add(&t.to_dtype(act.dtype())?)?,
            Edit::Scale(s) => (act * *s)?,
        };
        if self.positions.is_none() && self.heads.is_none() {
            return Ok(edited);
        }
        let mask = self.selection_mask(act)?;
        Ok(mask.where_cond(&edited, act)?)
    }

    /// u8 mask broadcastable to `act`, 1 where the intervention applies.
    fn selection_mask(&self, act: &Tensor) -> Result<Tensor> {
        let axes = self.point.axes();
        let dims = act.dims();
        let device = act.device();
        let axis_mask = |axis: usize, chosen: &Option<Vec<usize>>| -> Result<Tensor> {
            let n = dims[axis];
            let mut v = vec![0u8; n];
            match chosen {
                None => v.iter_mut().for_each(|x| *x = 1),
                Some(list) => {
                    for &i in list {
                        if i >= n {
                            return Err(ModelError::Input(format!(
                                "intervention on {}: index {i} out of range (axis has {n})",
                                self.point
                            )));
                        }
                        v[i] = 1;
                    }
                }
            }
            let mut shape = vec![1usize; dims.len()];
            shape[axis] = n;
            Ok(Tensor::from_vec(v, shape, device)?)
        };
        let mut mask = axis_mask(axes.position, &self.positions)?;
        if self.heads.is_some() {
            let head_axis = axes.head.ok_or_else(|| {
                ModelError::Input(format!(
                    "{} has no head axis; heads can only be chosen on q/k/v/z/scores/pattern",
                    self.point
                ))
            })?;
            mask = mask.broadcast_mul(&axis_mask(head_axis, &self.heads)?)?;
        }
        Ok(mask.broadcast_as(act.shape())?.contiguous()?)
    }
}

/// A cache plus a list of interventions: the usual hook of experiments.
pub struct HookSet {
    pub cache: Option<ActivationCache>,
    pub interventions: Vec<Intervention>,
    /// Fail at the first hook point whose activation holds NaN or ±Inf.
    pub check_finite: bool,
}

impl HookSet {
    pub fn new() -> Self {
        HookSet {
            cache: None,
            interventions: Vec::new(),
            check_finite: false,
        }
    }

    /// Stop with an error naming the first hook point where NaN or Inf appears.
    pub fn checking_finite(mut self) -> Self {
        self.check_finite = true;
        self
    }

    pub fn caching(mut self, cache: ActivationCache) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn with(mut self, intervention: Intervention) -> Self {
        self.interventions.push(intervention);
        self
    }
}

impl Default for HookSet {
    fn default() -> Self {
        Self::new()
    }
}

impl Hook for HookSet {
    fn wants(&self, point: HookPoint) -> bool {
        self.check_finite
            || self.interventions.iter().any(|i| i.point == point)
            || self.cache.as_ref().is_some_and(|c| c.wants(point))
    }

    /// Interventions first, then the cache records what the forward continues with.
    fn visit(&mut self, point: HookPoint, mut act: Tensor) -> Result<Tensor> {
        for i in self.interventions.iter().filter(|i| i.point == point) {
            act = i.apply(&act)?;
        }
        if self.check_finite {
            if let Some(index) = first_non_finite(point, &act)? {
                return Err(ModelError::NonFinite {
                    point: point.to_string(),
                    index,
                    shape: act.dims().to_vec(),
                });
            }
        }
        if let Some(cache) = self.cache.as_mut().filter(|c| c.wants(point)) {
            cache.visit(point, act.clone())?;
        }
        Ok(act)
    }
}

/// Flat index of the first NaN/Inf of an activation (masked attention scores are -inf by design).
pub fn first_non_finite(point: HookPoint, act: &Tensor) -> Result<Option<usize>> {
    let values = act.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let masked_ok = matches!(point, HookPoint::AttnScores(_));
    Ok(values
        .iter()
        .position(|v| !(v.is_finite() || masked_ok && *v == f32::NEG_INFINITY)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names_round_trip() {
        for p in HookPoint::all(3, true) {
            let name = p.to_string();
            assert_eq!(name.parse::<HookPoint>().unwrap(), p, "{name}");
        }
        assert_eq!(HookPoint::Z(2).to_string(), "blocks.2.attn.hook_z");
        assert_eq!(HookPoint::all(2, false).len(), 1 + 2 * 15 + 2);
    }

    #[test]
    fn unknown_hook_suggests_closest() {
        let err = HookPoint::parse_for("blocks.1.hook_resid_psot", 4, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocks.1.hook_resid_post"), "{err}");
        let err = HookPoint::parse_for("blocks.9.hook_resid_pre", 4, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("4 blocks"), "{err}");
        let err = HookPoint::parse_for("hook_pos_embed", 4, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no learned position embeddings"), "{err}");
        assert_eq!(
            HookPoint::parse_for("hook_pos_embed", 4, true).unwrap(),
            HookPoint::PosEmbed
        );
    }

    #[test]
    fn restricted_edit_touches_only_selection() {
        let dev = Device::Cpu;
        let act = Tensor::arange(1f32, 25., &dev)
            .unwrap()
            .reshape((1, 3, 2, 4))
            .unwrap();
        let iv = Intervention::new(HookPoint::Z(0), Edit::Zero)
            .at_positions(vec![1])
            .at_heads(vec![0]);
        let out = iv
            .apply(&act)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let inp = act.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (o, x)) in out.iter().zip(&inp).enumerate() {
            let (pos, head) = ((i / 8) % 3, (i / 4) % 2);
            if pos == 1 && head == 0 {
                assert_eq!(*o, 0.0);
            } else {
                assert_eq!(o, x);
            }
        }
    }
}
