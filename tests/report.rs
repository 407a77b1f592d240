//! `strata report` end to end on the tiny llama fixture: every section, inline figures, result
//! files.

mod common;

use common::{fixture_model, scratch};
use std::path::Path;
use std::process::Command;

fn strata(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "strata {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

// Words of the fixture tokenizer's training text: "The", " king", " had", " was", " the",
// " time", " tea" are single tokens, so every prompt below has 4 tokens.
const PROBE: &str = r#"# tiny suite for the llama fixture
{"id": "king-had", "prompt": "The king had the", "target": " time", "distractor": " tea", "corrupted": "The tea had the", "subject": "king"}
{"id": "king-was", "prompt": "The king was the", "target": " time", "distractor": " king", "corrupted": "The tea was the", "subject": "king"}
{"id": "tea-had", "prompt": "The tea had the", "target": " king", "distractor": " time", "corrupted": "The king had the", "subject": "tea"}
"#;

fn assert_files(dir: &Path, names: &[&str]) {
    for n in names {
        let p = dir.join(n);
        assert!(p.is_file(), "{} missing", p.display());
        assert!(
            std::fs::metadata(&p).unwrap().len() > 0,
            "{} is empty",
            p.display()
        );
    }
}

#[test]
fn report_on_a_probe_suite() {
    let dir = scratch("suite");
    let probe = dir.join("probe.jsonl");
    std::fs::write(&probe, PROBE).unwrap();
    let out = dir.join("out");
    let model = fixture_model("llama");
    let stdout = strata(&[
        "report",
        "--model",
        model.to_str().unwrap(),
        "--probe",
        probe.to_str().unwrap(),
        "--trace-samples",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let html_path = out.join("report.html");
    assert!(stdout.contains("report.html"), "{stdout}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    for section in [
        "Run",
        "Logit lens",
        "Ablation",
        "Activation patching",
        "Causal tracing",
        "Files",
    ] {
        assert!(
            html.contains(&format!(">{section}</h2>")),
            "section {section} missing"
        );
    }
    assert!(!html.contains("Skipped"), "an experiment was skipped");
    // Every figure inline (SVG), nothing loaded from elsewhere.
    let figures = html.matches("<figure").count();
    let svgs = html.matches("<svg").count();
    assert!(figures >= 22, "only {figures} figures");
    assert_eq!(figures, svgs, "every figure is an inline SVG");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    // Tables with the key numbers; token strings made visible on axes.
    assert!(html.contains("first top-1 layer"));
    assert!(html.contains("<table"));
    assert!(
        html.contains("·king/·tea"),
        "patching axes show clean/corrupted tokens"
    );
    assert_files(
        &out,
        &[
            "lens.json",
            "lens.csv",
            "ablate_zero.json",
            "ablate_zero.csv",
            "ablate_mean.json",
            "ablate_mean.csv",
            "ablate_heads.json",
            "ablate_heads.csv",
            "patch.json",
            "patch.csv",
            "patch_heads.json",
            "patch_heads.csv",
            "trace.json",
            "trace.csv",
        ],
    );
    let figs = out.join("figures");
    let mut stems = vec![
        "lens_rank".to_string(),
        "lens_prob".into(),
        "ablate_zero_bars".into(),
        "ablate_mean_bars".into(),
        "ablate_heads".into(),
    ];
    for id in ["king-had", "king-was", "tea-had"] {
        stems.push(format!("lens_{id}"));
    }
    for id in ["king-had", "king-was"] {
        for fig in [
            "patch_resid_pre",
            "patch_attn_out",
            "patch_mlp_out",
            "patch_z",
            "trace_hidden",
            "trace_mlp",
            "trace_attn",
        ] {
            stems.push(format!("{fig}_{id}"));
        }
    }
    assert!(
        !figs.join("patch_z_tea-had.svg").exists(),
        "--patch-items 2: only the first two items"
    );
    for s in &stems {
        assert_files(&figs, &[&format!("{s}.png"), &format!("{s}.svg")]);
        let png = std::fs::read(figs.join(format!("{s}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{s}.png is not a PNG");
    }
    // The result files follow the documented schema.
    let lens: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lens.json")).unwrap()).unwrap();
    assert_eq!(lens["items"].as_array().unwrap().len(), 3);
    let patch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("patch.json")).unwrap()).unwrap();
    assert_eq!(
        patch["items"].as_array().unwrap().len(),
        2,
        "--patch-items defaults to 2"
    );
    // No temporary files left behind (atomic writes).
    for entry in std::fs::read_dir(&out)
        .unwrap()
        .chain(std::fs::read_dir(&figs).unwrap())
    {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "left over: {name}");
    }
}

#[test]
fn report_on_one_prompt_skips_what_it_cannot_run() {
    let dir = scratch("prompt");
    let out = dir.join("out");
    let model = fixture_model("llama");
    strata(&[
        "report",
        model.to_str().unwrap(),
        "--prompt",
        "The king had the",
        "--target",
        " time",
        "--out",
        out.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(">Logit lens</h2>"));
    assert!(html.contains("Skipped: no item has a corrupted partner."));
    assert!(html.contains("Skipped: no item has a subject."));
    assert_files(&out, &["lens.json", "ablate_zero.json", "ablate_heads.json"]);
    assert!(!out.join("patch.json").exists() && !out.join("trace.json").exists());
}

/// `strata patch` draws every value it patched: per-head components (z, k, pattern) patched per
/// position as one layer × head panel per position, per-head ones at all positions (z, v) as a
/// layer × head heatmap, the others at all positions at once as a layer × component heatmap.
/// (z per position once drew a heatmap of blank cells: it read only all-position rows.)
#[test]
fn patch_figures_draw_every_patched_value() {
    let dir = scratch("patch-figures");
    let model = fixture_model("llama");
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "patch",
            model.to_str().unwrap(),
            "--prompt",
            "The king had the",
            "--corrupted",
            "The tea had the",
            "--target",
            " time",
            "--distractor",
            " tea",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        strata(&args);
    };
    let per_position = dir.join("per-position");
    run(&per_position, &["--component", "resid_pre,z,k,pattern"]);
    let all = dir.join("all");
    run(
        &all,
        &["--component", "resid_pre,attn_out,z,v", "--all-positions"],
    );
    for (out, stems) in [
        (
            &per_position,
            &[
                "patch_resid_pre_prompt",
                "patch_z_prompt",
                "patch_k_prompt",
                "patch_pattern_prompt",
            ][..],
        ),
        (
            &all,
            &["patch_all_positions_prompt", "patch_z_prompt", "patch_v_prompt"][..],
        ),
    ] {
        for stem in stems {
            assert_no_blank_cells(&out.join(format!("{stem}.svg")));
        }
    }
    for per_head in ["z", "k", "pattern"] {
        assert_panel_per_position(&per_position.join(format!("patch_{per_head}_prompt.svg")), 4);
    }
    let whole = std::fs::read_to_string(all.join("patch_all_positions_prompt.svg")).unwrap();
    assert!(
        whole.contains("attn_out") && whole.contains("resid_pre"),
        "component columns"
    );
}

/// `strata ablate --per-position` draws a layer × position heatmap per component and a layer ×
/// head panel per position for heads (it once wrote no figure at all).
#[test]
fn ablate_per_position_figures_draw_every_value() {
    let out = scratch("ablate-figures");
    let model = fixture_model("llama");
    strata(&[
        "ablate",
        model.to_str().unwrap(),
        "--prompt",
        "The king had the",
        "--target",
        " time",
        "--component",
        "mlp_out,head",
        "--per-position",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_no_blank_cells(&out.join("ablate_mlp_out_prompt.svg"));
    let heads = out.join("ablate_head_prompt.svg");
    assert_no_blank_cells(&heads);
    assert_panel_per_position(&heads, 4);
}

/// The SVG figure has a panel titled `position {p}: …` for each of the first `positions`.
fn assert_panel_per_position(svg: &Path, positions: usize) {
    let text = std::fs::read_to_string(svg).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
    for p in 0..positions {
        assert!(
            text.contains(&format!("position {p}: ")),
            "{}: no panel for position {p}",
            svg.display()
        );
    }
}

/// Every cell of the SVG figure's heatmaps holds a value: a blank (NaN) cell is drawn in #F2F2F2.
fn assert_no_blank_cells(svg: &Path) {
    let text = std::fs::read_to_string(svg).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
    assert!(text.contains("<rect"), "{}: no cells", svg.display());
    assert!(!text.contains("#F2F2F2"), "{} has blank cells", svg.display());
}

/// `strata trace` writes its JSON and CSV and one token × layer figure per restoration kind, with
/// a value in every cell.
#[test]
fn trace_writes_results_and_full_figures() {
    let out = scratch("trace");
    let model = fixture_model("llama");
    strata(&[
        "trace",
        model.to_str().unwrap(),
        "--prompt",
        "The king had the",
        "--target",
        " time",
        "--subject",
        "king",
        "--samples",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_files(&out, &["trace.json", "trace.csv"]);
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trace.json")).unwrap()).unwrap();
    // every (kind, layer, token) once: 3 kinds × the fixture's layers × 4 tokens
    let layers = trace["n_layers"].as_u64().unwrap() as usize;
    assert_eq!(trace["rows"].as_array().unwrap().len(), 3 * layers * 4);
    let svgs: Vec<_> = std::fs::read_dir(&*out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    assert_eq!(svgs.len(), 3, "one figure per kind (hidden, mlp, attn): {svgs:?}");
    for svg in &svgs {
        assert_no_blank_cells(svg);
    }
}
