//! Figures (PNG + SVG) and self-contained HTML reports for strata.
//!
//! The inputs are plain data (matrices, labelled series), so this crate knows nothing about
//! experiments: the experiment and dataset crates turn their results into a [`Heatmap`],
//! [`Bars`], [`Lines`] or [`Panels`] and call [`heatmap`], [`bars`], [`lines`] or [`panels`],
//! which write `<stem>.png` and `<stem>.svg`. [`html::Report`] assembles sections, tables and
//! figures into one self-contained HTML file.
//!
//! Text is measured and drawn with a bundled DejaVu Sans (see `assets/`), so rendering needs no
//! system fonts or fontconfig. PNGs are rendered at twice the SVG's pixel size.

mod canvas;
mod color;
mod error;
mod figure;
pub mod html;

pub use canvas::token_label;
pub use color::{diverging_rgb, sequential_rgb};
pub use error::{ReportError, Result};
pub use figure::{
    bars, heatmap, lines, panels, BarSeries, Bars, Figure, FigureFiles, Heatmap, LineSeries, Lines, Panels,
    Scale,
};

use std::path::Path;

/// Write `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| ReportError::io(&dir, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| ReportError::Input(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReportError::io(path, e));
    }
    Ok(())
}
