use strata_report::html::Report;
use strata_report::*;

/// A fresh folder in the temp dir, removed with its files when dropped.
fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-report-")
        .tempdir()
        .unwrap()
}

fn check_files(f: &FigureFiles) {
    let png = std::fs::read(&f.png).unwrap();
    assert!(png.len() > 1000, "{} is tiny", f.png.display());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG header");
    let svg = std::fs::read_to_string(&f.svg).unwrap();
    assert!(svg.contains("<svg"), "no svg root");
    assert!(svg.trim_end().ends_with("</svg>"));
}

fn small_heatmap() -> Heatmap {
    Heatmap {
        title: "lens".into(),
        values: vec![vec![0.1, f64::NAN, 0.3], vec![0.9, 0.5, f64::INFINITY]],
        row_labels: vec!["0".into(), "1".into()],
        col_labels: vec![token_label("The"), token_label(" capital"), token_label("\n")],
        annotations: Some(vec![
            vec!["a".into(), "b".into(), "c".into()],
            vec![" Paris".into(), "\n".into(), "x".into()],
        ]),
        colorbar_label: "p".into(),
        ..Default::default()
    }
}

#[test]
fn heatmap_writes_png_and_svg_with_nan_cells() {
    let dir = tmp();
    let d = dir.path();
    let f = heatmap(&small_heatmap(), d.join("lens")).unwrap();
    assert_eq!(f.png, d.join("lens.png"));
    assert_eq!(f.svg, d.join("lens.svg"));
    check_files(&f);
    // Token labels are made visible: the leading space shows as '·', the newline as '↵'.
    let svg = std::fs::read_to_string(&f.svg).unwrap();
    assert!(svg.contains("·capital"), "token label missing from the svg");
    assert!(svg.contains('↵'));
}

#[test]
fn all_nan_heatmap_still_draws() {
    let mut h = small_heatmap();
    h.values = vec![vec![f64::NAN; 3]; 2];
    h.scale = Scale::Diverging { center: 0.0 };
    let d = tmp();
    check_files(&heatmap(&h, d.path().join("h")).unwrap());
}

#[test]
fn diverging_scale_is_symmetric_about_its_centre() {
    // Values from -0.2 to 1.0: the colour bar must run from -1 to 1 so that white is at 0.
    let h = Heatmap {
        values: vec![vec![-0.2, 1.0]],
        row_labels: vec!["L0".into()],
        col_labels: vec!["H0".into(), "H1".into()],
        scale: Scale::Diverging { center: 0.0 },
        ..Default::default()
    };
    let svg = Figure::Heatmap(h).svg().unwrap();
    for tick in ["-1.0", "-0.5", "0.0", "0.5", "1.0"] {
        let text = format!(">\n{tick}\n</text>");
        assert!(svg.contains(&text), "colour bar tick {tick:?} missing");
    }
}

#[test]
fn empty_and_ragged_inputs_are_clear_errors() {
    let dir = tmp();
    let d = dir.path();
    let empty = Heatmap::default();
    let e = heatmap(&empty, d.join("h")).unwrap_err();
    assert!(e.to_string().contains("no rows"), "{e}");

    let mut ragged = small_heatmap();
    ragged.values[1].pop();
    let e = heatmap(&ragged, d.join("h")).unwrap_err();
    assert!(e.to_string().contains("row 1 has 2 values"), "{e}");

    let mut labels = small_heatmap();
    labels.col_labels.pop();
    assert!(heatmap(&labels, d.join("h")).is_err());

    let e = bars(&Bars::default(), d.join("b")).unwrap_err();
    assert!(e.to_string().contains("no categories"), "{e}");
    let b = Bars {
        categories: vec!["a".into(), "b".into()],
        series: vec![BarSeries::new("s", vec![1.0])],
        ..Default::default()
    };
    assert!(bars(&b, d.join("b"))
        .unwrap_err()
        .to_string()
        .contains("1 values for 2 categories"));
    let e = lines(&Lines::default(), d.join("l")).unwrap_err();
    assert!(e.to_string().contains("no points"), "{e}");
    let e = panels(&Panels::default(), d.join("p")).unwrap_err();
    assert!(e.to_string().contains("no panels"), "{e}");
    let log0 = Lines {
        series: vec![LineSeries::new("rank", vec![(0.0, 0.0), (1.0, 3.0)])],
        y_log: true,
        ..Default::default()
    };
    assert!(lines(&log0, d.join("l"))
        .unwrap_err()
        .to_string()
        .contains("y > 0"));
}

#[test]
fn bars_lines_panels_write_files() {
    let dir = tmp();
    let d = dir.path();
    let b = Bars {
        title: "ablation".into(),
        categories: (0..12).map(|i| i.to_string()).collect(),
        series: vec![
            ("attn", (0..12).map(|i| i as f64 - 6.0).collect::<Vec<_>>()).into(),
            BarSeries {
                name: "mlp".into(),
                values: vec![f64::NAN; 12],
                errors: Some(vec![0.5; 12]),
            },
        ],
        y_label: "Δ".into(),
        ..Default::default()
    };
    check_files(&bars(&b, d.join("bars")).unwrap());
    let mut hb = b.clone();
    hb.horizontal = true;
    check_files(&bars(&hb, d.join("hbars")).unwrap());
    let l = Lines {
        title: "rank".into(),
        series: vec![
            ("a", vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 100.0)]).into(),
            ("b", vec![(0.0, 5.0)]).into(),
        ],
        y_log: true,
        ..Default::default()
    };
    check_files(&lines(&l, d.join("lines")).unwrap());
    let p = Panels {
        title: "panels".into(),
        panels: vec![b.into(), l.into(), small_heatmap().into()],
        columns: 2,
    };
    check_files(&panels(&p, d.join("panels")).unwrap());
}

#[test]
fn report_is_self_contained_html() {
    let dir = tmp();
    let d = dir.path();
    let mut r = Report::new("strata <report>");
    r.section("Lens")
        .paragraph("a < b & c")
        .table(&["layer", "rank"], vec![vec!["0".into(), "12".into()]]);
    r.figure("heatmap", &small_heatmap().into()).unwrap();
    let f = heatmap(&small_heatmap(), d.join("h")).unwrap();
    r.section("Files");
    r.figure_file("png", &f.png).unwrap();
    r.figure_file("svg", &f.svg).unwrap();
    assert!(r.figure_file("txt", d.join("x.txt")).is_err());
    let path = d.join("report.html");
    r.write(&path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>strata &lt;report&gt;</title>"));
    assert!(html.contains("a &lt; b &amp; c"));
    assert!(html.contains("<td class=\"num\">12</td>"));
    assert!(html.contains("data:image/png;base64,iVBOR"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("href=\"#lens\""));
    assert!(!html.contains("<?xml"));
    // Nothing left behind by the atomic write.
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn token_labels_are_visible() {
    assert_eq!(token_label(" Paris"), "·Paris");
    assert_eq!(token_label("\n"), "↵");
    assert_eq!(token_label(""), "∅");
    assert_eq!(token_label("a\u{1}"), "a\\u{1}");
}
