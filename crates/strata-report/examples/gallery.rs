//! Renders one of each figure into a directory (default `target/report-gallery`), to look at.
//!
//! cargo run -p strata-report --example gallery -- [DIR]

use strata_report::*;

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/report-gallery".to_string());
    std::fs::create_dir_all(&dir).map_err(|e| ReportError::Draw(e.to_string()))?;
    let dir = std::path::Path::new(&dir);
    let mut report = html::Report::new("strata figure gallery");
    report
        .section("Figures")
        .paragraph("One of each figure type, rendered from synthetic data.");
    for (name, fig) in examples() {
        let files = fig.save(dir.join(name))?;
        println!("{}  {}", files.png.display(), files.svg.display());
        report.figure(name, &fig)?;
    }
    report.section("A table").table(
        &["layer", "target rank", "p(target)"],
        vec![
            vec!["0".into(), "20000".into(), "0.0000".into()],
            vec!["30".into(), "0".into(), "0.93".into()],
        ],
    );
    report.write(dir.join("gallery.html"))?;
    println!("{}", dir.join("gallery.html").display());
    Ok(())
}

fn examples() -> Vec<(&'static str, Figure)> {
    let tokens = ["<|im_start|>", "The", " capital", " of", " France", " is"];
    let layers = 31;
    let mut values = Vec::new();
    let mut ann = Vec::new();
    for l in 0..layers {
        let mut row = Vec::new();
        let mut arow = Vec::new();
        for (p, _) in tokens.iter().enumerate() {
            let x = l as f64 / (layers - 1) as f64;
            let v = if p == tokens.len() - 1 {
                (x * x * x).min(1.0) * 0.93
            } else {
                0.05 + 0.4 * x * (p as f64 / 6.0)
            };
            row.push(if l == 3 && p == 0 { f64::NAN } else { v });
            arow.push(
                match (p, l) {
                    (5, l) if l > 20 => " Paris",
                    (5, l) if l > 12 => " France",
                    (4, _) => ",",
                    (0, _) => "\n",
                    (3, _) => " the",
                    _ => " ",
                }
                .to_string(),
            );
        }
        values.push(row);
        ann.push(arow.iter().map(|s| token_label(s)).collect());
    }
    let lens = Heatmap {
        title: "Logit lens: SmolLM2-135M, \"The capital of France is\"".into(),
        values,
        row_labels: (0..layers).map(|l| l.to_string()).collect(),
        col_labels: tokens.iter().map(|t| token_label(t)).collect(),
        x_label: "position (input token)".into(),
        y_label: "layer".into(),
        annotations: Some(ann),
        scale: Scale::Sequential,
        limits: Some((0.0, 1.0)),
        colorbar_label: "p(top token)".into(),
        rows_bottom_up: true,
    };
    let heads = 9;
    let patch = Heatmap {
        title: "Activation patching (per head z), normalized logit difference".into(),
        values: (0..30)
            .map(|l| {
                (0..heads)
                    .map(|h| {
                        let v = ((l * 7 + h * 13) % 17) as f64 / 17.0 - 0.5;
                        if l == 20 && h == 4 {
                            0.9
                        } else if l == 11 && h == 2 {
                            -0.35
                        } else {
                            v * 0.2
                        }
                    })
                    .collect()
            })
            .collect(),
        row_labels: (0..30).map(|l| format!("L{l}")).collect(),
        col_labels: (0..heads).map(|h| format!("H{h}")).collect(),
        x_label: "head".into(),
        y_label: "layer".into(),
        annotations: None,
        scale: Scale::Diverging { center: 0.0 },
        limits: None,
        colorbar_label: "normalized logit diff".into(),
        rows_bottom_up: false,
    };
    let feats = [
        "n_layers",
        "d_model",
        "d_ffn",
        "n_heads",
        "n_kv_heads",
        "vocab",
        "context",
    ];
    let benches = ["ARC-C", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K", "MMLU"];
    let corr = Heatmap {
        title: "Spearman correlation, structure × benchmark".into(),
        values: feats
            .iter()
            .enumerate()
            .map(|(i, _)| {
                benches
                    .iter()
                    .enumerate()
                    .map(|(j, _)| (i as f64 * 1.3 + j as f64 * 0.7).sin() * 0.8)
                    .collect()
            })
            .collect(),
        row_labels: feats.iter().map(|s| s.to_string()).collect(),
        col_labels: benches.iter().map(|s| s.to_string()).collect(),
        annotations: Some(
            feats
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    benches
                        .iter()
                        .enumerate()
                        .map(|(j, _)| format!("{:.2}", (i as f64 * 1.3 + j as f64 * 0.7).sin() * 0.8))
                        .collect()
                })
                .collect(),
        ),
        scale: Scale::Diverging { center: 0.0 },
        limits: Some((-1.0, 1.0)),
        colorbar_label: "ρ".into(),
        ..Default::default()
    };
    let abl = Bars {
        title: "Ablation: logit difference (\" Paris\" − \" London\") per layer".into(),
        categories: (0..30).map(|l| l.to_string()).collect(),
        series: vec![
            (
                "attention out",
                (0..30)
                    .map(|l| -((l as f64 * 0.7).sin()) * 0.8 - 0.1)
                    .collect::<Vec<_>>(),
            )
                .into(),
            (
                "MLP out",
                (0..30)
                    .map(|l| {
                        if l == 0 {
                            -6.0
                        } else {
                            -(l as f64 / 30.0) * 2.0 + 0.3
                        }
                    })
                    .collect::<Vec<_>>(),
            )
                .into(),
        ],
        x_label: "layer".into(),
        y_label: "Δ logit difference".into(),
        ..Default::default()
    };
    let rank = Lines {
        title: "Target \" Paris\": rank + 1 per layer".into(),
        x_label: "layer".into(),
        y_label: "rank + 1 (log)".into(),
        series: vec![LineSeries::new(
            "SmolLM2-135M",
            (0..31)
                .map(|l| (l as f64, (20000.0 * (-(l as f64) / 3.5).exp()).max(1.0)))
                .collect(),
        )],
        y_log: true,
        ..Default::default()
    };
    let profiles = Lines {
        title: "Target probability by relative depth".into(),
        x_label: "relative depth".into(),
        y_label: "p(target)".into(),
        series: vec![
            LineSeries::new(
                "SmolLM2-135M",
                (0..31)
                    .map(|l| (l as f64 / 30.0, (l as f64 / 30.0).powi(4) * 0.6))
                    .collect(),
            ),
            LineSeries::new(
                "gemma-3-270m",
                (0..19)
                    .map(|l| (l as f64 / 18.0, (l as f64 / 18.0).powi(3) * 0.45))
                    .collect(),
            ),
        ],
        x_range: Some((0.0, 1.0)),
        ..Default::default()
    };
    let imp = |b: &str, k: usize| -> Figure {
        Bars {
            title: b.to_string(),
            categories: feats.iter().map(|s| s.to_string()).collect(),
            series: vec![BarSeries {
                name: "permutation importance".into(),
                values: feats
                    .iter()
                    .enumerate()
                    .map(|(i, _)| (((i + k) * 37) % 11) as f64 / 40.0)
                    .collect(),
                errors: Some(vec![0.02; feats.len()]),
            }],
            x_label: "mean decrease in R²".into(),
            horizontal: true,
            value_range: Some((0.0, 0.3)),
            ..Default::default()
        }
        .into()
    };
    let panels_fig = Panels {
        title: "Random-forest permutation importance per benchmark".into(),
        panels: benches.iter().enumerate().map(|(k, b)| imp(b, k)).collect(),
        columns: 3,
    };
    vec![
        ("lens", lens.into()),
        ("patch_heads", patch.into()),
        ("correlation", corr.into()),
        ("ablation_bars", abl.into()),
        ("rank", rank.into()),
        ("profiles", profiles.into()),
        ("importance_panels", panels_fig.into()),
    ]
}
