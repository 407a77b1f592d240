//! The CLI over the bundled dataset: `strata dataset describe`, and `strata correlate --findings
//! models.csv` (per-model findings joined to the dataset by model id, correlated with every numeric
//! column).

mod common;

use common::{repo_root, scratch};
use std::process::Command;

fn strata(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The bundled dataset's `model_id`s with the values of `column` (empty where missing).
fn dataset_column(column: &str) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(repo_root().join("data/structure_performance.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id_col, value_col) = (col("model_id"), col(column));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[id_col].to_string(), r[value_col].to_string())
        })
        .collect()
}

/// `n_layers` of each model id, read from the bundled dataset.
fn n_layers(ids: &[&str]) -> Vec<f64> {
    let column = dataset_column("n_layers");
    ids.iter()
        .map(|id| column.iter().find(|(m, _)| m == id).unwrap().1.parse().unwrap())
        .collect()
}

/// `dataset describe` reports, per column, statistics of the values present: the n_layers row's
/// count, median and maximum are those of the CSV's column.
#[test]
fn describe_reports_the_columns_statistics() {
    let mut layers: Vec<f64> = dataset_column("n_layers")
        .into_iter()
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    layers.sort_by(f64::total_cmp);
    let n = layers.len();
    let median = if n % 2 == 1 {
        layers[n / 2]
    } else {
        (layers[n / 2 - 1] + layers[n / 2]) / 2.0
    };
    let (ok, stdout, stderr) = strata(&["dataset", "describe"]);
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("| n_layers |"))
        .unwrap_or_else(|| panic!("no n_layers row:\n{stdout}"));
    // | Column | Mean | Mode | Q1 | Q2 | Q3 | Max | Skewness | Kurtosis | Miss Rate | n |
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(cells[5].parse::<f64>().unwrap(), median, "Q2: {line}");
    assert_eq!(cells[7].parse::<f64>().unwrap(), layers[n - 1], "Max: {line}");
    assert_eq!(cells[11], n.to_string(), "n: {line}");
}

/// A models.csv as `strata sweep` writes it, with `first_top1_relative_depth` = `depth` per model.
fn findings(rows: &[(&str, f64)]) -> String {
    let mut text = "model_id,model,n_layers,n_items,first_top1_relative_depth,items_reaching_top1,\
                    costly_attn_share,costly_mlp_share,mlp_attribution_share,clean_logit_diff\n"
        .to_string();
    for (id, depth) in rows {
        text += &format!("{id},path/{id},30,8,{depth},8,0.2,0.3,0.4,5.0\n");
    }
    text
}

#[test]
fn findings_proportional_to_depth_correlate_perfectly_with_n_layers() {
    let ids = [
        "01-ai/Yi-1.5-34B",
        "01-ai/Yi-1.5-6B",
        "01-ai/Yi-1.5-9B",
        "EleutherAI/gpt-neo-1.3B",
    ];
    let layers = n_layers(&ids);
    let mut distinct = layers.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "pick models with distinct depths: {layers:?}"
    );
    let mut rows: Vec<(&str, f64)> = ids
        .iter()
        .copied()
        .zip(layers.iter().map(|l| l / 100.0))
        .collect();
    rows.push(("someone/not-in-the-dataset", 0.5));
    let dir = scratch("correlate");
    let path = dir.join("models.csv");
    std::fs::write(&path, findings(&rows)).unwrap();
    let (ok, stdout, stderr) = strata(&["correlate", "--findings", path.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("4 models in findings joined"), "{stdout}");
    assert!(
        stdout.contains("not in the dataset: someone/not-in-the-dataset"),
        "{stdout}"
    );
    assert!(stdout.contains("fewer than 8 models mean nothing"), "{stdout}");
    // r = ρ = 1 for a finding proportional to the column.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("| first_top1_relative_depth | n_layers |"))
        .unwrap_or_else(|| panic!("no n_layers row:\n{stdout}"));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(cells[3], "4", "{line}");
    assert_eq!(cells[4], "1.000", "Pearson r: {line}");
    assert_eq!(cells[6], "1.000", "Spearman ρ: {line}");
}

#[test]
fn fewer_than_three_matched_models_is_an_error() {
    let dir = scratch("correlate-few");
    let path = dir.join("models.csv");
    std::fs::write(
        &path,
        findings(&[("01-ai/Yi-1.5-34B", 0.5), ("someone/else", 0.7)]),
    )
    .unwrap();
    let (ok, _, stderr) = strata(&["correlate", "--findings", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("models.csv") && stderr.contains("1 model(s)") && stderr.contains("at least 3"),
        "{stderr}"
    );
}
