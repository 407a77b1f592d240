//! Experiment results → figures (strata-report's generic Heatmap / Bars / Lines), written as
//! PNG + SVG. Used by `strata lens | ablate | patch | trace` (figures next to their result files)
//! and by `strata report` (which also embeds them in its HTML file).
use anyhow::{Context, Result};
use std::path::Path;
use strata_experiments::ablate::{AblateResult, AblationKind};
use strata_experiments::lens::LensResult;
use strata_experiments::patch::{Direction, PatchResult};
use strata_experiments::results::SweepRow;
use strata_experiments::trace::{TraceKind, TraceResult};
use strata_experiments::Metric;
use strata_report::{token_label, BarSeries, Bars, Figure, FigureFiles, Heatmap, LineSeries, Lines, Scale};

/// A figure written to disk (`files`) with the caption a report shows under it.
pub struct Saved {
    pub caption: String,
    pub files: FigureFiles,
}

/// Writes `fig` as `dir/stem.png` and `dir/stem.svg`.
pub fn save(dir: &Path, stem: &str, caption: impl Into<String>, fig: impl Into<Figure>) -> Result<Saved> {
    let figure = fig.into();
    let files = figure
        .save(dir.join(stem))
        .with_context(|| format!("writing figure {}", dir.join(stem).display()))?;
    Ok(Saved {
        caption: caption.into(),
        files,
    })
}

/// A file-name-safe version of an item id.
pub fn slug(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "item".into()
    } else {
        s
    }
}

/// The model's short name for titles: a path's file stem, a repo id's last part.
pub fn short_model(name: &str) -> String {
    let p = Path::new(name.trim_end_matches('/'));
    let stem = if name.ends_with(".gguf") {
        p.file_stem()
    } else {
        p.file_name()
    };
    stem.map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| name.to_string())
}

fn metric_label(metric: Metric) -> &'static str {
    match metric {
        Metric::LogitDiff => "logit difference",
        Metric::TargetProb => "p(target)",
        Metric::Loss => "loss",
        Metric::Kl => "KL(clean ‖ run)",
    }
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\n', "\\n"))
}

/// The last position of a lens result (the one that predicts the target).
fn last_position(r: &LensResult) -> usize {
    r.tokens.len().saturating_sub(1)
}

// ---------------------------------------------------------------------------------------------
// Logit lens

/// Layer × position heatmap of one prompt: colour = probability of the lens's top-1 token, cell
/// text = that token (nostalgebraist's logit-lens plot). Layer 0 (the embeddings) at the bottom.
pub fn lens_heatmap(r: &LensResult) -> Heatmap {
    let layers: Vec<usize> = {
        let mut l: Vec<usize> = r.rows.iter().map(|x| x.layer).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    let positions: Vec<usize> = {
        let mut p: Vec<usize> = r.rows.iter().map(|x| x.position).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut values = Vec::new();
    let mut ann = Vec::new();
    for &l in &layers {
        let mut vrow = Vec::new();
        let mut arow = Vec::new();
        for &p in &positions {
            match r.row(l, p).and_then(|row| row.top.first()) {
                Some(t) => {
                    vrow.push(t.prob);
                    arow.push(token_label(&t.token));
                }
                None => {
                    vrow.push(f64::NAN);
                    arow.push(String::new());
                }
            }
        }
        values.push(vrow);
        ann.push(arow);
    }
    let source = match r.source.name() {
        "resid" => String::new(),
        s => format!(" ({s})"),
    };
    Heatmap {
        title: format!(
            "Logit lens{source}: {}, {} → {}",
            short_model(&r.model),
            quoted(&r.prompt),
            quoted(&r.target)
        ),
        values,
        row_labels: layers.iter().map(|l| l.to_string()).collect(),
        col_labels: positions
            .iter()
            .map(|&p| token_label(r.tokens.get(p).map(String::as_str).unwrap_or("?")))
            .collect(),
        x_label: "input token (the cell predicts the next token)".into(),
        y_label: if r.source.name() == "resid" {
            "layer (0 = embeddings)".into()
        } else {
            "block".into()
        },
        annotations: Some(ann),
        scale: Scale::Sequential,
        limits: Some((0.0, 1.0)),
        colorbar_label: "p(top-1 token)".into(),
        rows_bottom_up: true,
    }
}

/// Per layer at each prompt's last position: (layer, [value per item]).
fn lens_by_layer(
    results: &[LensResult],
    f: impl Fn(&strata_experiments::LensRow) -> f64,
) -> Vec<(usize, Vec<f64>)> {
    let max_layer = results
        .iter()
        .flat_map(|r| r.rows.iter().map(|x| x.layer))
        .max()
        .unwrap_or(0);
    (0..=max_layer)
        .map(|l| {
            let vals = results
                .iter()
                .filter_map(|r| r.row(l, last_position(r)).map(&f))
                .collect();
            (l, vals)
        })
        .filter(|(_, v): &(usize, Vec<f64>)| !v.is_empty())
        .collect()
}

/// Per-layer lines over the items: the `centre` statistic (named after the item when there is
/// one) and, with several items, the smallest and largest values named by `extremes`.
fn spread_series(
    results: &[LensResult],
    by: &[(usize, Vec<f64>)],
    (centre_name, centre): (&str, fn(&[f64]) -> f64),
    extremes: [&str; 2],
) -> Vec<LineSeries> {
    let n = results.len();
    let line = |f: &dyn Fn(&[f64]) -> f64| by.iter().map(|(l, v)| (*l as f64, f(v))).collect();
    let mut series = vec![LineSeries::new(
        if n == 1 {
            results[0].id.clone()
        } else {
            format!("{centre_name} (n = {n})")
        },
        line(&centre),
    )];
    if n > 1 {
        let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        series.push(LineSeries::new(extremes[0], line(&min)));
        series.push(LineSeries::new(extremes[1], line(&max)));
    }
    series
}

fn target_names(results: &[LensResult]) -> String {
    match results {
        [r] => format!("target {}", quoted(&r.target)),
        _ => format!("targets of {} items", results.len()),
    }
}

/// Rank of the target + 1 per layer (log axis) at the last position: the geometric mean over
/// the items, and the min and max when there are several.
pub fn lens_rank_lines(results: &[LensResult]) -> Lines {
    let by = lens_by_layer(results, |x| x.target_rank as f64 + 1.0);
    let geometric_mean = |v: &[f64]| (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp();
    let series = spread_series(
        results,
        &by,
        ("geometric mean", geometric_mean),
        ["best item", "worst item"],
    );
    Lines {
        title: format!(
            "Logit lens: rank of the {} per layer (last position), {}",
            target_names(results),
            short_model(&results[0].model)
        ),
        x_label: "layer (0 = embeddings)".into(),
        y_label: "target rank + 1 (log; 1 = top-1)".into(),
        series,
        y_log: true,
        ..Default::default()
    }
}

/// Probability of the target per layer at the last position: mean, min and max over items.
pub fn lens_prob_lines(results: &[LensResult]) -> Lines {
    let by = lens_by_layer(results, |x| x.target_prob);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let series = spread_series(results, &by, ("mean", mean), ["min", "max"]);
    Lines {
        title: format!(
            "Logit lens: probability of the {} per layer (last position), {}",
            target_names(results),
            short_model(&results[0].model)
        ),
        x_label: "layer (0 = embeddings)".into(),
        y_label: "p(target)".into(),
        series,
        y_range: Some((0.0, 1.0)),
        ..Default::default()
    }
}

/// Lens figures: rank and probability lines over all items, one heatmap per item (at most
/// `max_heatmaps`), as `dir/lens_rank`, `dir/lens_prob`, `dir/lens_<id>`.
pub fn lens_figures(results: &[LensResult], dir: &Path, max_heatmaps: usize) -> Result<Vec<Saved>> {
    let mut out = Vec::new();
    if results.is_empty() {
        return Ok(out);
    }
    let n = results.len();
    let avg = if n == 1 {
        String::new()
    } else {
        format!(" Geometric mean, best and worst over n = {n} items.")
    };
    out.push(save(
        dir,
        "lens_rank",
        format!(
            "Rank of the target token (+1, log scale) under the logit lens at the last position, per \
             layer; layer 0 is the embeddings, the last layer is the model's output.{avg}"
        ),
        lens_rank_lines(results),
    )?);
    let avg = if n == 1 {
        String::new()
    } else {
        format!(" Mean, min and max over n = {n} items.")
    };
    out.push(save(
        dir,
        "lens_prob",
        format!("Probability of the target token under the logit lens at the last position, per layer.{avg}"),
        lens_prob_lines(results),
    )?);
    for r in results.iter().take(max_heatmaps) {
        out.push(save(
            dir,
            &format!("lens_{}", slug(&r.id)),
            format!(
                "Logit lens of item {}: the top-1 token at every layer and position (colour: its \
                 probability). Target {} at the last position.",
                r.id,
                quoted(&r.target)
            ),
            lens_heatmap(r),
        )?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Layer maps shared by ablation and patching

/// A layer × `cols` heatmap (layer 0 at the bottom) of `value` over `rows`, `col_of` placing a
/// row in its column; NaN where no row lands. Blue–white–red, white at 0.
fn layer_heatmap(
    rows: &[&SweepRow],
    n_layers: usize,
    (title, x_label, colorbar_label): (String, &str, &str),
    cols: Vec<String>,
    col_of: &dyn Fn(&SweepRow) -> Option<usize>,
    value: &dyn Fn(&SweepRow) -> f64,
) -> Heatmap {
    let mut values = vec![vec![f64::NAN; cols.len()]; n_layers];
    for r in rows {
        if let Some(c) = col_of(r).filter(|&c| c < cols.len() && r.layer < n_layers) {
            values[r.layer][c] = value(r);
        }
    }
    Heatmap {
        title,
        values,
        row_labels: (0..n_layers).map(|l| l.to_string()).collect(),
        col_labels: cols,
        x_label: x_label.into(),
        y_label: "layer".into(),
        annotations: None,
        scale: Scale::Diverging { center: 0.0 },
        limits: None,
        colorbar_label: colorbar_label.into(),
        rows_bottom_up: true,
    }
}

fn head_labels(n_heads: usize) -> Vec<String> {
    (0..n_heads).map(|h| format!("H{h}")).collect()
}

/// Per-head rows swept one position at a time: a layer × head panel per position (titled with
/// its entry of `positions`), all on one colour scale symmetric about 0.
fn head_panels_by_position(
    rows: &[&SweepRow],
    (n_layers, n_heads): (usize, usize),
    positions: &[String],
    (title, colorbar_label): (String, &str),
    value: &dyn Fn(&SweepRow) -> f64,
) -> strata_report::Panels {
    let reach = rows
        .iter()
        .map(|r| value(r))
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let panels = positions
        .iter()
        .enumerate()
        .map(|(p, token)| {
            let at: Vec<&SweepRow> = rows.iter().copied().filter(|r| r.position == Some(p)).collect();
            let label = (format!("position {p}: {token}"), "head", colorbar_label);
            let mut h = layer_heatmap(&at, n_layers, label, head_labels(n_heads), &|r| r.head, value);
            h.limits = Some((-reach, reach)).filter(|_| reach > 0.0);
            h.into()
        })
        .collect();
    strata_report::Panels {
        title,
        panels,
        columns: 5,
    }
}

// ---------------------------------------------------------------------------------------------
// Ablation

/// Rows to plot: the suite mean when there are several items, else the item's rows.
fn shown_rows<'a>(rows: &'a [SweepRow], summary: &'a [SweepRow]) -> &'a [SweepRow] {
    if summary.is_empty() {
        rows
    } else {
        summary
    }
}

fn kind_name(kind: AblationKind) -> &'static str {
    match kind {
        AblationKind::Zero => "zero",
        AblationKind::Mean => "mean",
        AblationKind::Resample => "resample",
    }
}

fn component_title(c: &str) -> &str {
    match c {
        "block" => "whole block",
        "attn_out" => "attention out",
        "mlp_out" => "MLP out",
        "resid_pre" => "residual stream (resid_pre)",
        "resid_mid" => "residual stream (resid_mid)",
        "resid_post" => "residual stream (resid_post)",
        "z" => "attention heads (z)",
        "q" => "attention heads' queries (q)",
        "k" => "attention heads' keys (k)",
        "v" => "attention heads' values (v)",
        "pattern" => "attention heads' patterns",
        "head" => "attention heads",
        c => c,
    }
}

/// Effect of ablating each layer's components: bars of (ablated − clean) metric per layer,
/// one series per non-head component (all positions ablated at once). `None` when the result
/// has no such rows (e.g. heads only, or per-position ablation).
pub fn ablate_bars(res: &AblateResult, value_range: Option<(f64, f64)>) -> Option<Bars> {
    let rows = shown_rows(&res.rows, &res.summary);
    let comps: Vec<&str> = res
        .components
        .iter()
        .map(|c| c.name())
        .filter(|c| *c != "head")
        .collect();
    let layers = res.n_layers;
    let mut series = Vec::new();
    for c in comps {
        let mut vals = vec![f64::NAN; layers];
        let mut any = false;
        for r in rows
            .iter()
            .filter(|r| r.component == c && r.position.is_none() && r.head.is_none())
        {
            if r.layer < layers {
                vals[r.layer] = r.value - res.clean;
                any = true;
            }
        }
        if any {
            series.push(BarSeries::new(component_title(c), vals));
        }
    }
    if series.is_empty() {
        return None;
    }
    let n = res.items.len();
    let over = if n > 1 {
        format!(", mean over {n} items")
    } else {
        format!(", {}", res.items[0].id)
    };
    Some(Bars {
        title: format!(
            "{} ablation per layer: change in {} (clean {:.3}){over}",
            kind_name(res.kind),
            metric_label(res.metric),
            res.clean
        ),
        categories: (0..layers).map(|l| l.to_string()).collect(),
        series,
        x_label: "layer".into(),
        y_label: format!("Δ {} (ablated − clean)", metric_label(res.metric)),
        value_range,
        ..Default::default()
    })
}

/// Range of (value − clean) over the non-head, all-position rows of several ablation results,
/// so their bar charts share an axis.
pub fn ablate_delta_range(results: &[&AblateResult]) -> Option<(f64, f64)> {
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    let mut any = false;
    for res in results {
        for r in shown_rows(&res.rows, &res.summary)
            .iter()
            .filter(|r| r.head.is_none() && r.position.is_none())
        {
            let d = r.value - res.clean;
            if d.is_finite() {
                lo = lo.min(d);
                hi = hi.max(d);
                any = true;
            }
        }
    }
    any.then(|| {
        let pad = 0.05 * (hi - lo).max(1e-9);
        (
            if lo < 0.0 { lo - pad } else { 0.0 },
            if hi > 0.0 { hi + pad } else { 0.0 },
        )
    })
}

/// Layer × head heatmap of (ablated − clean) metric for head ablation; white at 0.
pub fn ablate_head_heatmap(res: &AblateResult) -> Option<Heatmap> {
    let rows = shown_rows(&res.rows, &res.summary);
    let heads: Vec<&SweepRow> = rows
        .iter()
        .filter(|r| r.head.is_some() && r.position.is_none())
        .collect();
    if heads.is_empty() {
        return None;
    }
    let n = res.items.len();
    let over = if n > 1 {
        format!("mean over {n} items")
    } else {
        res.items[0].id.clone()
    };
    let title = format!(
        "{} ablation of single heads: change in {} (clean {:.3}), {over}",
        kind_name(res.kind),
        metric_label(res.metric),
        res.clean
    );
    let colorbar = format!("Δ {}", metric_label(res.metric));
    Some(layer_heatmap(
        &heads,
        res.n_layers,
        (title, "head", &colorbar),
        head_labels(res.n_heads),
        &|r| r.head,
        &|r| r.value - res.clean,
    ))
}

/// Ablation one position at a time, for the first `max_items` items: per component a layer ×
/// position heatmap of (ablated − clean) metric, and for heads a layer × head panel per
/// position. Stems are `<component>_<item>`.
pub fn ablate_position_plots(res: &AblateResult, max_items: usize) -> Vec<(String, String, Figure)> {
    let metric = metric_label(res.metric);
    let kind = kind_name(res.kind);
    let colorbar = format!("Δ {metric}");
    let mut out = Vec::new();
    for item in res.items.iter().take(max_items) {
        let tokens: Vec<String> = item.tokens.iter().map(|t| token_label(t)).collect();
        let delta = |r: &SweepRow| r.value - item.clean;
        let prompt = quoted(&item.prompt);
        for comp in &res.components {
            let name = comp.name();
            let rows: Vec<&SweepRow> = res
                .rows
                .iter()
                .filter(|r| r.item == item.id && r.component == name && r.position.is_some())
                .collect();
            if rows.is_empty() {
                continue;
            }
            let caption = format!(
                "{kind} ablation of {} one position at a time, item {}: change of the {metric} \
                 relative to the clean run ({:.4}); blue = what was ablated helps the prediction.",
                component_title(name),
                item.id,
                item.clean
            );
            let figure: Figure = if name == "head" {
                let title = format!("{kind} ablation of single heads per position: {prompt}");
                let shape = (res.n_layers, res.n_heads);
                head_panels_by_position(&rows, shape, &tokens, (title, &colorbar), &delta).into()
            } else {
                let title = format!("{kind} ablation of {name} per position: {prompt}");
                let label = (title, "position", colorbar.as_str());
                layer_heatmap(
                    &rows,
                    res.n_layers,
                    label,
                    tokens.clone(),
                    &|r| r.position,
                    &delta,
                )
                .into()
            };
            out.push((format!("{name}_{}", slug(&item.id)), caption, figure));
        }
    }
    out
}

/// How many items of a per-position ablation get figures (one set per item).
const POSITION_FIGURE_ITEMS: usize = 4;

/// Ablation figures as `dir/<prefix>_bars` and `dir/<prefix>_heads` (all positions at once), and
/// `dir/<prefix>_<component>_<item>` for the first items of a per-position ablation.
pub fn ablate_figures(
    res: &AblateResult,
    dir: &Path,
    prefix: &str,
    value_range: Option<(f64, f64)>,
) -> Result<Vec<Saved>> {
    let mut out = Vec::new();
    if let Some(b) = ablate_bars(res, value_range) {
        out.push(save(
            dir,
            &format!("{prefix}_bars"),
            format!(
                "{} ablation of each layer's components (all positions at once): change of the {} \
                 at the last position relative to the clean run ({:.4}); negative = the component \
                 helps the prediction.",
                kind_name(res.kind),
                metric_label(res.metric),
                res.clean
            ),
            b,
        )?);
    }
    if let Some(h) = ablate_head_heatmap(res) {
        out.push(save(
            dir,
            &format!("{prefix}_heads"),
            format!(
                "{} ablation of single attention heads (all positions): change of the {} relative \
                 to the clean run ({:.4}); blue = the head helps, red = it hurts; white = no effect.",
                kind_name(res.kind),
                metric_label(res.metric),
                res.clean
            ),
            h,
        )?);
    }
    out.extend(save_plots(
        dir,
        prefix,
        ablate_position_plots(res, POSITION_FIGURE_ITEMS),
    )?);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Activation patching

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Denoising => "denoising",
        Direction::Noising => "noising",
    }
}

/// The patching figures of the first `max_items` items as (stem, caption, figure), the
/// normalized metric on a blue–white–red scale, white at 0:
/// * a component patched per position: layer × position (columns: clean/corrupted token);
/// * z patched over all positions: layer × head;
/// * z patched per position: one layer × head panel per position, all on one colour scale;
/// * the other components patched over all positions: one layer × component heatmap.
///
/// Stems are `<component>_<item>`, and `all_positions_<item>` for the last kind.
pub fn patch_plots(res: &PatchResult, max_items: usize) -> Vec<(String, String, Figure)> {
    let mut out: Vec<(String, String, Figure)> = Vec::new();
    let metric = metric_label(res.metric);
    let dir = direction_name(res.direction);
    let colorbar = format!("normalized {metric}");
    let normalized = |r: &SweepRow| r.normalized.unwrap_or(f64::NAN);
    for item in res.items.iter().take(max_items) {
        let rows: Vec<&SweepRow> = res.rows.iter().filter(|r| r.item == item.id).collect();
        let tokens: Vec<String> = (0..item.tokens.len())
            .map(|p| {
                let clean = token_label(&item.tokens[p]);
                match item.corrupted_tokens.as_ref().and_then(|c| c.get(p)) {
                    Some(c) if *c != item.tokens[p] => format!("{clean}/{}", token_label(c)),
                    _ => clean,
                }
            })
            .collect();
        let corrupt = item.corrupted_prompt.as_deref().map(quoted).unwrap_or_default();
        let pair = format!("{} → {corrupt}", quoted(&item.prompt));
        let about = format!(
            "item {}: clean {} vs corrupted {corrupt}",
            item.id,
            quoted(&item.prompt)
        );
        let effect =
            "1 = the clean behaviour restored, 0 = no effect (white), negative = pushed the other way";
        let mut whole: Vec<&str> = Vec::new();
        for comp in &res.components {
            let name = comp.name();
            let crow: Vec<&SweepRow> = rows.iter().copied().filter(|r| r.component == name).collect();
            if crow.is_empty() {
                continue;
            }
            // Per-head components: as many heads as the rows name (key/value heads for k, v).
            let heads = crow.iter().filter_map(|r| r.head).max().map(|h| h + 1);
            let (caption, figure): (String, Figure) = match (heads, res.per_position) {
                (Some(n_heads), false) => (
                    format!(
                        "Activation patching ({dir}) of each of the {} (all positions), {about}. \
                         Normalized {metric}: {effect}.",
                        component_title(name)
                    ),
                    layer_heatmap(
                        &crow,
                        res.n_layers,
                        (
                            format!("Patching heads ({name}), {dir}: {pair}"),
                            "head",
                            &colorbar,
                        ),
                        head_labels(n_heads),
                        &|r| r.head,
                        &normalized,
                    )
                    .into(),
                ),
                (Some(n_heads), true) => (
                    format!(
                        "Activation patching ({dir}) of each of the {}, one position at a time, \
                         {about}: a panel per position (clean/corrupted token), all on one \
                         colour scale. Normalized {metric}: {effect}.",
                        component_title(name)
                    ),
                    head_panels_by_position(
                        &crow,
                        (res.n_layers, n_heads),
                        &tokens,
                        (
                            format!("Patching heads ({name}) per position, {dir}: {pair}"),
                            &colorbar,
                        ),
                        &normalized,
                    )
                    .into(),
                ),
                (None, true) => (
                    format!(
                        "Activation patching ({dir}) of {} per layer and position, {about} (columns: \
                         clean/corrupted token where they differ). Normalized {metric}: {effect}.",
                        component_title(name)
                    ),
                    layer_heatmap(
                        &crow,
                        res.n_layers,
                        (
                            format!("Patching {name}, {dir}: {pair}"),
                            "position (clean/corrupted token)",
                            &colorbar,
                        ),
                        tokens.clone(),
                        &|r| r.position,
                        &normalized,
                    )
                    .into(),
                ),
                (None, false) => {
                    whole.push(name);
                    continue;
                }
            };
            out.push((format!("{name}_{}", slug(&item.id)), caption, figure));
        }
        if !whole.is_empty() {
            let at_once: Vec<&SweepRow> = rows
                .iter()
                .copied()
                .filter(|r| whole.contains(&r.component.as_str()))
                .collect();
            let names: Vec<&str> = whole.iter().map(|c| component_title(c)).collect();
            let figure = layer_heatmap(
                &at_once,
                res.n_layers,
                (
                    format!("Patching at all positions, {dir}: {pair}"),
                    "component",
                    &colorbar,
                ),
                whole.iter().map(|c| c.to_string()).collect(),
                &|r| whole.iter().position(|c| *c == r.component),
                &normalized,
            );
            out.push((
                format!("all_positions_{}", slug(&item.id)),
                format!(
                    "Activation patching ({dir}) of {} per layer, at every position at once, \
                     {about}. Normalized {metric}: {effect}.",
                    names.join(", ")
                ),
                figure.into(),
            ));
        }
    }
    out
}

/// Patching figures as `dir/<prefix>_<stem>` for the first `max_items` items.
pub fn patch_figures(res: &PatchResult, dir: &Path, prefix: &str, max_items: usize) -> Result<Vec<Saved>> {
    save_plots(dir, prefix, patch_plots(res, max_items))
}

/// Writes (stem, caption, figure) triples as `dir/<prefix>_<stem>`.
fn save_plots(dir: &Path, prefix: &str, plots: Vec<(String, String, Figure)>) -> Result<Vec<Saved>> {
    plots
        .into_iter()
        .map(|(stem, caption, fig)| save(dir, &format!("{prefix}_{stem}"), caption, fig))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Causal tracing

/// The three ROME heatmaps of one item: token × layer of the metric after restoring the hidden
/// state / MLP window / attention window at (token, layer) in the subject-noised run. Subject
/// tokens are marked with `*`.
pub fn trace_heatmaps(r: &TraceResult) -> Vec<(TraceKind, Heatmap)> {
    let mut out = Vec::new();
    let ntok = r.tokens.len();
    let row_labels: Vec<String> = (0..ntok)
        .map(|p| {
            let t = token_label(&r.tokens[p]);
            if r.subject_positions.contains(&p) {
                format!("{t}*")
            } else {
                t
            }
        })
        .collect();
    for kind in TraceKind::ALL {
        let rows: Vec<_> = r.rows.iter().filter(|x| x.kind == kind).collect();
        if rows.is_empty() {
            continue;
        }
        let mut values = vec![vec![f64::NAN; r.n_layers]; ntok];
        for x in rows {
            if x.position < ntok && x.layer < r.n_layers {
                values[x.position][x.layer] = x.value;
            }
        }
        let what = match kind {
            TraceKind::Hidden => "single restored layer (hidden state)".to_string(),
            TraceKind::Mlp => format!("restored MLP, window {}", r.window),
            TraceKind::Attn => format!("restored attention, window {}", r.window),
        };
        out.push((
            kind,
            Heatmap {
                title: format!(
                    "Causal trace, {what}: {} → {}",
                    quoted(&r.prompt),
                    quoted(&r.target)
                ),
                values,
                row_labels: row_labels.clone(),
                col_labels: (0..r.n_layers).map(|l| l.to_string()).collect(),
                x_label: if kind == TraceKind::Hidden {
                    "restored layer".into()
                } else {
                    "centre of the restored window of layers".into()
                },
                y_label: "token (* = noised subject)".into(),
                annotations: None,
                scale: Scale::Sequential,
                limits: None,
                colorbar_label: metric_label(r.metric).into(),
                rows_bottom_up: false,
            },
        ));
    }
    out
}

/// Causal tracing figures as `dir/trace_<kind>_<item>` for the first `max_items` items.
pub fn trace_figures(results: &[TraceResult], dir: &Path, max_items: usize) -> Result<Vec<Saved>> {
    let mut out = Vec::new();
    for r in results.iter().take(max_items) {
        for (kind, h) in trace_heatmaps(r) {
            let caption = format!(
                "Causal tracing ({} restoration), item {}: the subject's embeddings are noised \
                 (std {:.4}, {} samples, seed {}); colour = {} of {} after restoring the clean {} at \
                 one token and layer. Clean run {:.4}, noised run {:.4}.",
                kind.name(),
                r.id,
                r.noise_std,
                r.samples,
                r.seed,
                metric_label(r.metric),
                quoted(&r.target),
                match kind {
                    TraceKind::Hidden => "hidden state".to_string(),
                    TraceKind::Mlp => format!("MLP outputs of {} layers around it", r.window),
                    TraceKind::Attn => format!("attention outputs of {} layers around it", r.window),
                },
                r.clean,
                r.corrupted
            );
            out.push(save(
                dir,
                &format!("trace_{}_{}", kind.name(), slug(&r.id)),
                caption,
                h,
            )?);
        }
    }
    Ok(out)
}
