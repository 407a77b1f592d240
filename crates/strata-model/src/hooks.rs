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
    QInput(usize),
    KInput(usize),
    VInput(usize),
    Ln1Scale(usize),
    Ln1(usize),
    Q(usize),
    K(usize),
    V(usize),
    RotQ(usize),
    RotK(usize),
    AttnScores(usize),
    Pattern(usize),
    Z(usize),
    HeadResult(usize),
    AttnOut(usize),
    ResidMid(usize),
    Ln2Scale(usize),
    Ln2(usize),
    MlpPre(usize),
    MlpPreLinear(usize),
    MlpPost(usize),
    MlpOut(usize),
    ResidPost(usize),
    MlpIn(usize),
    LnFinalScale,
    LnFinal,
    Logits,
}

/// Builds a per-block hook point from its layer.
type BlockHook = fn(usize) -> HookPoint;

/// Which hook points a model has. Every block has the common ones; learned position embeddings
/// (GPT-2), rotated queries and keys (rotary models) and the linear half of a gated MLP exist
/// only where the model has them, as in TransformerLens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookLayout {
    pub n_layers: usize,
    pub learned_positions: bool,
    pub rotary: bool,
    pub gated_mlp: bool,
}

impl From<&crate::config::ModelConfig> for HookLayout {
    fn from(c: &crate::config::ModelConfig) -> Self {
        HookLayout {
            n_layers: c.n_layers,
            learned_positions: c.positional_scheme() == "learned",
            rotary: c.positional_scheme() == "rotary",
            gated_mlp: c.gated_mlp,
        }
    }
}

/// What a per-block hook point needs of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Rotary,
    GatedMlp,
    /// Every model has it, but only a hook that names it makes it exist (TransformerLens' split
    /// inputs, which it adds with `use_split_qkv_input` / `use_hook_mlp_in`): left out of
    /// [`HookPoint::all`], so caching every hook point keeps the plain forward.
    Request,
}

impl Needs {
    fn met_by(self, layout: &HookLayout) -> bool {
        match self {
            Needs::Nothing | Needs::Request => true,
            Needs::Rotary => layout.rotary,
            Needs::GatedMlp => layout.gated_mlp,
        }
    }
}

/// Per-block hook names, in forward order, with their constructors and what they need.
const BLOCK_HOOKS: &[(&str, BlockHook, Needs)] = &[
    ("hook_resid_pre", HookPoint::ResidPre, Needs::Nothing),
    ("hook_q_input", HookPoint::QInput, Needs::Request),
    ("hook_k_input", HookPoint::KInput, Needs::Request),
    ("hook_v_input", HookPoint::VInput, Needs::Request),
    ("ln1.hook_scale", HookPoint::Ln1Scale, Needs::Nothing),
    ("ln1.hook_normalized", HookPoint::Ln1, Needs::Nothing),
    ("attn.hook_q", HookPoint::Q, Needs::Nothing),
    ("attn.hook_k", HookPoint::K, Needs::Nothing),
    ("attn.hook_v", HookPoint::V, Needs::Nothing),
    ("attn.hook_rot_q", HookPoint::RotQ, Needs::Rotary),
    ("attn.hook_rot_k", HookPoint::RotK, Needs::Rotary),
    ("attn.hook_attn_scores", HookPoint::AttnScores, Needs::Nothing),
    ("attn.hook_pattern", HookPoint::Pattern, Needs::Nothing),
    ("attn.hook_z", HookPoint::Z, Needs::Nothing),
    ("attn.hook_result", HookPoint::HeadResult, Needs::Nothing),
    ("hook_attn_out", HookPoint::AttnOut, Needs::Nothing),
    ("hook_resid_mid", HookPoint::ResidMid, Needs::Nothing),
    ("hook_mlp_in", HookPoint::MlpIn, Needs::Request),
    ("ln2.hook_scale", HookPoint::Ln2Scale, Needs::Nothing),
    ("ln2.hook_normalized", HookPoint::Ln2, Needs::Nothing),
    ("mlp.hook_pre", HookPoint::MlpPre, Needs::Nothing),
    ("mlp.hook_pre_linear", HookPoint::MlpPreLinear, Needs::GatedMlp),
    ("mlp.hook_post", HookPoint::MlpPost, Needs::Nothing),
    ("hook_mlp_out", HookPoint::MlpOut, Needs::Nothing),
    ("hook_resid_post", HookPoint::ResidPost, Needs::Nothing),
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
            ResidPre(l) | QInput(l) | KInput(l) | VInput(l) | Ln1Scale(l) | Ln1(l) | Q(l) | K(l) | V(l)
            | RotQ(l) | RotK(l) | AttnScores(l) | Pattern(l) | Z(l) | HeadResult(l) | AttnOut(l)
            | ResidMid(l) | MlpIn(l) | Ln2Scale(l) | Ln2(l) | MlpPre(l) | MlpPreLinear(l) | MlpPost(l)
            | MlpOut(l) | ResidPost(l) => Some(l),
            Embed | PosEmbed | LnFinalScale | LnFinal | Logits => None,
        }
    }

    /// Axes of positions (query positions for scores/patterns) and heads.
    pub fn axes(self) -> Axes {
        use HookPoint::*;
        match self {
            QInput(_) | KInput(_) | VInput(_) | Q(_) | K(_) | V(_) | RotQ(_) | RotK(_) | Z(_)
            | HeadResult(_) => Axes {
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

    /// Hook points held only between the steps that a fused kernel does in one pass (a norm's
    /// scale, heads split and rotated, scores and pattern, a gated MLP's two halves): the decoder
    /// leaves that kernel's path for a forward whose hooks read or edit one of them.
    pub fn inside_fused_kernels(self) -> bool {
        use HookPoint::*;
        matches!(
            self,
            Ln1Scale(_)
                | Ln2Scale(_)
                | LnFinalScale
                | Q(_)
                | K(_)
                | V(_)
                | RotQ(_)
                | RotK(_)
                | AttnScores(_)
                | Pattern(_)
                | MlpPre(_)
                | MlpPreLinear(_)
        )
    }

    /// Every hook point of a model, in forward order, except those that exist only on request
    /// ([`Self::on_request`]).
    pub fn all(layout: HookLayout) -> Vec<HookPoint> {
        let mut out = vec![HookPoint::Embed];
        if layout.learned_positions {
            out.push(HookPoint::PosEmbed);
        }
        for l in 0..layout.n_layers {
            out.extend(
                BLOCK_HOOKS
                    .iter()
                    .filter(|(_, _, needs)| *needs != Needs::Request && needs.met_by(&layout))
                    .map(|(_, make, _)| make(l)),
            );
        }
        out.extend([HookPoint::LnFinalScale, HookPoint::LnFinal, HookPoint::Logits]);
        out
    }

    /// Hook points that exist only when a hook names them: TransformerLens' split inputs
    /// (`hook_q_input`, `hook_k_input`, `hook_v_input`: per-head copies of the residual stream
    /// that the block's first norm and that head's projection read; `hook_mlp_in`: what the norm
    /// before the MLP reads), in forward order.
    pub fn on_request(layout: HookLayout) -> Vec<HookPoint> {
        (0..layout.n_layers)
            .flat_map(|l| {
                BLOCK_HOOKS
                    .iter()
                    .filter(|(_, _, needs)| *needs == Needs::Request)
                    .map(move |(_, make, _)| make(l))
            })
            .collect()
    }

    /// Whether this point exists only when a hook names it ([`Self::on_request`]): caches by
    /// filter ([`ActivationCache::new`]) and the finiteness check pass it by.
    pub fn is_on_request(self) -> bool {
        self.block_entry()
            .is_some_and(|(_, _, needs)| *needs == Needs::Request)
    }

    fn block_entry(self) -> Option<&'static (&'static str, BlockHook, Needs)> {
        let l = self.layer()?;
        BLOCK_HOOKS.iter().find(|(_, make, _)| make(l) == self)
    }

    /// What keeps a model from having this hook point, if anything.
    fn missing_from(self, layout: &HookLayout) -> Option<&'static str> {
        match self {
            HookPoint::PosEmbed if !layout.learned_positions => Some(
                "this model has no learned position embeddings (its positions are rotary, applied \
                 to queries and keys inside attention)",
            ),
            p => match p.block_entry().map(|(_, _, needs)| *needs) {
                Some(Needs::Rotary) if !layout.rotary => {
                    Some("this model has no rotary embeddings: use attn.hook_q / attn.hook_k")
                }
                Some(Needs::GatedMlp) if !layout.gated_mlp => {
                    Some("this model's MLP is not gated: its one input projection is mlp.hook_pre")
                }
                _ => None,
            },
        }
    }

    /// Parses a name, suggesting the closest valid names of this model when it is unknown or
    /// names what this model does not have.
    pub fn parse_for(name: &str, layout: HookLayout) -> Result<HookPoint> {
        let unknown = |suggestion: String| ModelError::UnknownHook {
            name: name.to_string(),
            suggestion,
        };
        if let Ok(p) = name.parse::<HookPoint>() {
            if let Some(why) = p.missing_from(&layout) {
                return Err(unknown(format!(": {why}")));
            }
            if p.layer().is_none_or(|l| l < layout.n_layers) {
                return Ok(p);
            }
        }
        let mut scored: Vec<(usize, String)> = HookPoint::all(layout)
            .into_iter()
            .chain(HookPoint::on_request(layout))
            .map(|p| (edit_distance(name, &p.to_string()), p.to_string()))
            .collect();
        scored.sort();
        let best: Vec<String> = scored.into_iter().take(3).map(|(_, n)| n).collect();
        Err(unknown(format!(
            " (this model has {} blocks); did you mean: {}?",
            layout.n_layers,
            best.join(", ")
        )))
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => f.write_str("hook_embed"),
            HookPoint::PosEmbed => f.write_str("hook_pos_embed"),
            HookPoint::LnFinalScale => f.write_str("ln_final.hook_scale"),
            HookPoint::LnFinal => f.write_str("ln_final.hook_normalized"),
            HookPoint::Logits => f.write_str("logits"),
            p => write!(
                f,
                "blocks.{}.{}",
                p.layer().unwrap_or(0),
                p.block_entry().map_or("?", |(name, _, _)| *name)
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
            "ln_final.hook_scale" => return Ok(HookPoint::LnFinalScale),
            "ln_final.hook_normalized" => return Ok(HookPoint::LnFinal),
            "logits" => return Ok(HookPoint::Logits),
            _ => {}
        }
        let rest = name.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, suffix) = rest.split_once('.').ok_or_else(unknown)?;
        let layer: usize = layer.parse().map_err(|_| unknown())?;
        BLOCK_HOOKS
            .iter()
            .find(|(n, _, _)| *n == suffix)
            .map(|(_, make, _)| make(layer))
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
    /// Whether the points were named one by one ([`Self::of`]), so that points that exist only
    /// on request are cached too.
    named: bool,
    pub activations: BTreeMap<HookPoint, Tensor>,
}

impl ActivationCache {
    /// The hook points `filter` selects among those every forward has: a filter such as `|_| true`
    /// caches the plain forward, without the split inputs that exist only on request.
    pub fn new(filter: impl Fn(HookPoint) -> bool + 'static) -> Self {
        ActivationCache {
            filter: Box::new(filter),
            named: false,
            activations: BTreeMap::new(),
        }
    }

    /// Exactly these hook points, on-request ones included.
    pub fn of(points: impl IntoIterator<Item = HookPoint>) -> Self {
        let set: HashSet<HookPoint> = points.into_iter().collect();
        ActivationCache {
            named: true,
            ..Self::new(move |p| set.contains(&p))
        }
    }

    pub fn get(&self, point: HookPoint) -> Result<&Tensor> {
        self.activations
            .get(&point)
            .ok_or_else(|| ModelError::Input(format!("activation {point} was not cached")))
    }
}

impl Hook for ActivationCache {
    fn wants(&self, point: HookPoint) -> bool {
        (self.named || !point.is_on_request()) && (self.filter)(point)
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
        self.check_finite && !point.is_on_request()
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

    /// GPT-2's kind of model (learned positions, ungated MLP) and Llama's (rotary, gated MLP).
    const GPT2ISH: HookLayout = HookLayout {
        n_layers: 2,
        learned_positions: true,
        rotary: false,
        gated_mlp: false,
    };
    const LLAMAISH: HookLayout = HookLayout {
        n_layers: 4,
        learned_positions: false,
        rotary: true,
        gated_mlp: true,
    };

    #[test]
    fn names_round_trip() {
        for layout in [GPT2ISH, LLAMAISH] {
            for p in HookPoint::all(layout) {
                let name = p.to_string();
                assert_eq!(name.parse::<HookPoint>().unwrap(), p, "{name}");
                assert_eq!(HookPoint::parse_for(&name, layout).unwrap(), p, "{name}");
            }
        }
        assert_eq!(HookPoint::Z(2).to_string(), "blocks.2.attn.hook_z");
        assert_eq!(HookPoint::RotQ(1).to_string(), "blocks.1.attn.hook_rot_q");
        assert_eq!(
            HookPoint::MlpPreLinear(0).to_string(),
            "blocks.0.mlp.hook_pre_linear"
        );
        // embed + pos_embed, 18 per block, ln_final's scale + output and logits; rotary and gated
        // MLPs add 3 per block
        assert_eq!(HookPoint::all(GPT2ISH).len(), 2 + 2 * 18 + 3);
        assert_eq!(HookPoint::all(LLAMAISH).len(), 1 + 4 * 21 + 3);
    }

    #[test]
    fn unknown_hook_suggests_closest() {
        let err = HookPoint::parse_for("blocks.1.hook_resid_psot", LLAMAISH)
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocks.1.hook_resid_post"), "{err}");
        let err = HookPoint::parse_for("blocks.9.hook_resid_pre", LLAMAISH)
            .unwrap_err()
            .to_string();
        assert!(err.contains("4 blocks"), "{err}");
    }

    #[test]
    fn hooks_a_model_lacks_say_why() {
        for (name, why) in [
            ("hook_pos_embed", "no learned position embeddings"),
            ("blocks.0.attn.hook_rot_q", "no rotary embeddings"),
            ("blocks.1.attn.hook_rot_k", "no rotary embeddings"),
            ("blocks.1.mlp.hook_pre_linear", "not gated"),
        ] {
            let layout = if name == "hook_pos_embed" {
                LLAMAISH
            } else {
                GPT2ISH
            };
            let err = HookPoint::parse_for(name, layout).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(why), "{err}");
        }
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

    /// Split inputs exist only when named: not in `all`, listed by `on_request`, parsed by name,
    /// cached by `ActivationCache::of` but not by a filter that takes everything, and passed by
    /// the finiteness check.
    #[test]
    fn split_inputs_exist_only_on_request() {
        let on_request = HookPoint::on_request(LLAMAISH);
        assert_eq!(on_request.len(), 4 * LLAMAISH.n_layers);
        for p in &on_request {
            assert!(p.is_on_request());
            assert!(!HookPoint::all(LLAMAISH).contains(p), "{p}");
            assert_eq!(HookPoint::parse_for(&p.to_string(), LLAMAISH).unwrap(), *p);
        }
        assert_eq!(HookPoint::QInput(1).to_string(), "blocks.1.hook_q_input");
        assert_eq!(HookPoint::MlpIn(0).to_string(), "blocks.0.hook_mlp_in");
        assert_eq!(HookPoint::KInput(0).axes().head, Some(2));
        assert!(!ActivationCache::new(|_| true).wants(HookPoint::QInput(0)));
        assert!(ActivationCache::new(|_| true).wants(HookPoint::Ln1(0)));
        assert!(ActivationCache::of([HookPoint::QInput(0)]).wants(HookPoint::QInput(0)));
        let checking = HookSet::new().checking_finite();
        assert!(!checking.wants(HookPoint::MlpIn(0)) && checking.wants(HookPoint::ResidMid(0)));
    }
}
