//! `strata dataset trends | importance | correlate --out DIR` write their figures (PNG + SVG) next
//! to the tables; `--no-figures` writes the tables only; a heatmap method that was not computed is a
//! clear error.

mod common;

use common::scratch;
use std::path::Path;
use std::process::Command;

fn strata(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    (out.status.success(), stderr)
}

fn assert_figure(dir: &Path, stem: &str) {
    let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap_or_else(|e| panic!("{stem}.png: {e}"));
    assert!(png.len() > 1000, "{stem}.png is {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png is not a PNG");
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg")))
        .unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
    assert!(
        svg.contains("<svg") && svg.len() > 1000,
        "{stem}.svg is not an SVG"
    );
}

#[test]
fn dataset_commands_write_figures() {
    let dir = scratch("dataset-fig").child("out");
    let d = dir.to_str().unwrap();
    let runs: [&[&str]; 3] = [
        &["dataset", "trends", "--out", d],
        &[
            "dataset",
            "importance",
            "--benchmarks",
            "arc_c,mmlu",
            "--trees",
            "8",
            "--seeds",
            "2",
            "--folds",
            "2",
            "--repeats",
            "1",
            "--out",
            d,
        ],
        &[
            "dataset",
            "correlate",
            "--bootstrap",
            "0",
            "--heatmap",
            "pearson",
            "--out",
            d,
        ],
    ];
    for args in runs {
        let (ok, stderr) = strata(args);
        assert!(ok, "{args:?} failed: {stderr}");
        assert!(
            stderr.contains(".png and "),
            "{args:?} did not report its figure: {stderr}"
        );
    }
    assert_figure(&dir, "trends");
    assert_figure(&dir, "importance");
    assert_figure(&dir, "correlations_pearson");
    // the tables are still written
    for t in ["trends.md", "importance.md", "correlations.md"] {
        assert!(dir.join(t).is_file(), "{t} missing");
    }
    // no temporaries left behind
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.contains(".tmp"), "temporary left: {name}");
    }
}

#[test]
fn no_figures_and_bad_heatmap_method() {
    let dir = scratch("dataset-fig").child("out");
    let d = dir.to_str().unwrap();
    let (ok, stderr) = strata(&["dataset", "trends", "--no-figures", "--out", d]);
    assert!(ok, "{stderr}");
    assert!(dir.join("trends.md").is_file());
    assert!(!dir.join("trends.png").exists() && !dir.join("trends.svg").exists());
    let (ok, stderr) = strata(&[
        "dataset",
        "correlate",
        "--bootstrap",
        "0",
        "--no-partial",
        "--heatmap",
        "partial_pearson",
        "--out",
        d,
    ]);
    assert!(!ok);
    assert!(stderr.contains("--heatmap partial_pearson"), "{stderr}");
}
