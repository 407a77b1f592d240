//! The figure types and their rendering to SVG and PNG.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::canvas::{
    ensure_font, fit_text, fmt_tick, nice_ticks, rgb, text_width, visible, Align, Canvas, AXIS, GRID, INK,
    NAN_FILL,
};
use crate::color::{diverging_rgb, is_dark, sequential_rgb, series_rgb};
use crate::error::{ReportError, Result};
use crate::write_atomic;

/// PNGs are drawn at this multiple of the SVG's pixel size.
const PNG_SCALE: f64 = 2.0;
const PAD: f64 = 12.0;
const TITLE: f64 = 15.0;
const LABEL: f64 = 11.0;
const TICK: f64 = 10.5;
const CELL_TEXT: f64 = 9.0;

/// How heatmap values map to colours.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Scale {
    /// Viridis from the lowest to the highest value (or `limits`).
    #[default]
    Sequential,
    /// Blue–white–red with white exactly at `center` and symmetric limits around it.
    Diverging { center: f64 },
}

/// A rows × columns matrix of values (NaN = blank cell), e.g. layer × position.
#[derive(Clone, Debug, Default)]
pub struct Heatmap {
    pub title: String,
    /// `values[row][col]`; every row has `col_labels.len()` entries. NaN draws a blank cell.
    pub values: Vec<Vec<f64>>,
    pub row_labels: Vec<String>,
    /// Column labels, e.g. tokens made visible with [`crate::token_label`].
    pub col_labels: Vec<String>,
    pub x_label: String,
    pub y_label: String,
    /// Text drawn in each cell (e.g. the top token), same shape as `values`.
    pub annotations: Option<Vec<Vec<String>>>,
    pub scale: Scale,
    /// Fixed colour limits (lo, hi). For `Diverging` the half-width is the larger distance of
    /// lo and hi from the centre. Default: from the finite values.
    pub limits: Option<(f64, f64)>,
    pub colorbar_label: String,
    /// Draw row 0 at the bottom (e.g. layer 0 below the last layer).
    pub rows_bottom_up: bool,
}

/// One named series of bar heights, one per category; optional ± error bars.
#[derive(Clone, Debug, Default)]
pub struct BarSeries {
    pub name: String,
    pub values: Vec<f64>,
    pub errors: Option<Vec<f64>>,
}

impl BarSeries {
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        BarSeries {
            name: name.into(),
            values,
            errors: None,
        }
    }
}

impl<S: Into<String>> From<(S, Vec<f64>)> for BarSeries {
    fn from((name, values): (S, Vec<f64>)) -> Self {
        BarSeries::new(name, values)
    }
}

/// Grouped bars: one group per category (e.g. layer), one bar per series.
#[derive(Clone, Debug, Default)]
pub struct Bars {
    pub title: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    pub x_label: String,
    pub y_label: String,
    /// Categories down the left, bars growing rightwards (for long names, e.g. features).
    pub horizontal: bool,
    /// Fixed value-axis range (e.g. the same for every panel of small multiples).
    pub value_range: Option<(f64, f64)>,
}

/// One named polyline; a NaN y leaves a gap.
#[derive(Clone, Debug, Default)]
pub struct LineSeries {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl LineSeries {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        LineSeries {
            name: name.into(),
            points,
        }
    }
}

impl<S: Into<String>> From<(S, Vec<(f64, f64)>)> for LineSeries {
    fn from((name, points): (S, Vec<(f64, f64)>)) -> Self {
        LineSeries::new(name, points)
    }
}

/// Lines with markers on numeric axes (layer, relative depth, year, ...).
#[derive(Clone, Debug, Default)]
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<LineSeries>,
    /// Logarithmic y axis; every finite y must then be > 0 (plot rank + 1, not rank).
    pub y_log: bool,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
}

/// Small multiples: figures laid out in a grid, `columns` per row, under one title.
#[derive(Clone, Debug, Default)]
pub struct Panels {
    pub title: String,
    pub panels: Vec<Figure>,
    pub columns: usize,
}

/// Any figure this crate draws.
#[derive(Clone, Debug)]
pub enum Figure {
    Heatmap(Heatmap),
    Bars(Bars),
    Lines(Lines),
    Panels(Panels),
}

impl Default for Figure {
    fn default() -> Self {
        Figure::Lines(Lines::default())
    }
}

impl From<Heatmap> for Figure {
    fn from(h: Heatmap) -> Self {
        Figure::Heatmap(h)
    }
}
impl From<Bars> for Figure {
    fn from(b: Bars) -> Self {
        Figure::Bars(b)
    }
}
impl From<Lines> for Figure {
    fn from(l: Lines) -> Self {
        Figure::Lines(l)
    }
}
impl From<Panels> for Figure {
    fn from(p: Panels) -> Self {
        Figure::Panels(p)
    }
}

/// The two files a figure was written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FigureFiles {
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// Write `<stem>.png` and `<stem>.svg` for a heatmap.
pub fn heatmap(h: &Heatmap, stem: impl AsRef<Path>) -> Result<FigureFiles> {
    save(Fig::Heatmap(h), stem.as_ref())
}

/// Write `<stem>.png` and `<stem>.svg` for grouped bars.
pub fn bars(b: &Bars, stem: impl AsRef<Path>) -> Result<FigureFiles> {
    save(Fig::Bars(b), stem.as_ref())
}

/// Write `<stem>.png` and `<stem>.svg` for lines.
pub fn lines(l: &Lines, stem: impl AsRef<Path>) -> Result<FigureFiles> {
    save(Fig::Lines(l), stem.as_ref())
}

/// Write `<stem>.png` and `<stem>.svg` for small multiples.
pub fn panels(p: &Panels, stem: impl AsRef<Path>) -> Result<FigureFiles> {
    save(Fig::Panels(p), stem.as_ref())
}

impl Figure {
    /// The figure as an SVG document.
    pub fn svg(&self) -> Result<String> {
        render_svg(self.as_fig())
    }
    /// The figure as PNG bytes (twice the SVG's pixel size).
    pub fn png(&self) -> Result<Vec<u8>> {
        render_png(self.as_fig())
    }
    /// Write `<stem>.png` and `<stem>.svg`.
    pub fn save(&self, stem: impl AsRef<Path>) -> Result<FigureFiles> {
        save(self.as_fig(), stem.as_ref())
    }
    /// The title shown on top of the figure.
    pub fn title(&self) -> &str {
        match self {
            Figure::Heatmap(h) => &h.title,
            Figure::Bars(b) => &b.title,
            Figure::Lines(l) => &l.title,
            Figure::Panels(p) => &p.title,
        }
    }
    fn as_fig(&self) -> Fig<'_> {
        match self {
            Figure::Heatmap(h) => Fig::Heatmap(h),
            Figure::Bars(b) => Fig::Bars(b),
            Figure::Lines(l) => Fig::Lines(l),
            Figure::Panels(p) => Fig::Panels(p),
        }
    }
}

#[derive(Clone, Copy)]
enum Fig<'a> {
    Heatmap(&'a Heatmap),
    Bars(&'a Bars),
    Lines(&'a Lines),
    Panels(&'a Panels),
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn save(fig: Fig<'_>, stem: &Path) -> Result<FigureFiles> {
    let svg = render_svg(fig)?;
    let png = render_png(fig)?;
    let files = FigureFiles {
        png: with_ext(stem, "png"),
        svg: with_ext(stem, "svg"),
    };
    write_atomic(&files.svg, svg.as_bytes())?;
    write_atomic(&files.png, &png)?;
    Ok(files)
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Draw(format!("{e:?}"))
}

fn render_svg(fig: Fig<'_>) -> Result<String> {
    ensure_font();
    let (w, h) = fig.size()?;
    let (w, h) = (w.ceil() as u32, h.ceil() as u32);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let c = Canvas {
            area: &root,
            s: 1.0,
            bitmap: false,
            origin: (0.0, 0.0),
        };
        fig.draw(&c)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

fn render_png(fig: Fig<'_>) -> Result<Vec<u8>> {
    ensure_font();
    let (w, h) = fig.size()?;
    let (w, h) = ((w * PNG_SCALE).ceil() as u32, (h * PNG_SCALE).ceil() as u32);
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let c = Canvas {
            area: &root,
            s: PNG_SCALE,
            bitmap: true,
            origin: (0.0, 0.0),
        };
        fig.draw(&c)?;
        root.present().map_err(draw_err)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| ReportError::Draw(e.to_string()))?;
        writer
            .write_image_data(&buf)
            .map_err(|e| ReportError::Draw(e.to_string()))?;
    }
    Ok(png_bytes)
}

impl Fig<'_> {
    fn size(&self) -> Result<(f64, f64)> {
        match self {
            Fig::Heatmap(h) => Ok(HeatLayout::new(h)?.size()),
            Fig::Bars(b) => Ok(BarLayout::new(b)?.size()),
            Fig::Lines(l) => Ok(LineLayout::new(l)?.size()),
            Fig::Panels(p) => Ok(PanelLayout::new(p)?.size()),
        }
    }
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        match self {
            Fig::Heatmap(h) => HeatLayout::new(h)?.draw(h, c),
            Fig::Bars(b) => BarLayout::new(b)?.draw(b, c),
            Fig::Lines(l) => LineLayout::new(l)?.draw(l, c),
            Fig::Panels(p) => PanelLayout::new(p)?.draw(p, c),
        }
    }
}

/// A figure is at least as wide as its title, so that the title is never cut.
fn fig_width(content: f64, title: &str) -> f64 {
    content.max(text_width(title, TITLE) + 2.0 * PAD)
}

/// Room for an axis title beside or under a plot: none when there is no title.
fn axis_title_room(label: &str) -> f64 {
    if label.is_empty() {
        0.0
    } else {
        LABEL * 2.2
    }
}

/// Width of the widest of `labels` as an axis label.
fn labels_width(labels: &[String]) -> f64 {
    labels
        .iter()
        .map(|s| text_width(&visible(s), LABEL))
        .fold(0.0, f64::max)
}

/// How error messages name a figure: its kind, and its title when it has one.
fn describe(kind: &str, title: &str) -> String {
    if title.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {title:?}")
    }
}

fn title_height(title: &str) -> f64 {
    if title.is_empty() {
        PAD
    } else {
        PAD + TITLE * 1.9
    }
}

fn draw_title<DB: DrawingBackend>(c: &Canvas<'_, DB>, title: &str, width: f64) -> Result<()> {
    if title.is_empty() {
        return Ok(());
    }
    let t = fit_text(&visible(title), TITLE, width - 2.0 * PAD);
    c.text(
        width / 2.0,
        PAD + TITLE * 0.7,
        &t,
        TITLE,
        INK,
        Align::Center,
        false,
    )
}

// ---------------------------------------------------------------------------------------------
// Heatmap

struct HeatLayout {
    rows: usize,
    cols: usize,
    cell_w: f64,
    cell_h: f64,
    plot_x: f64,
    plot_y: f64,
    row_label_w: f64,
    col_vertical: bool,
    col_label_extent: f64,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    tick_step: f64,
    tick_w: f64,
    width: f64,
    height: f64,
}

const MAX_LABEL: f64 = 150.0;

impl HeatLayout {
    fn new(h: &Heatmap) -> Result<Self> {
        let rows = h.values.len();
        let name = describe("heatmap", &h.title);
        if rows == 0 {
            return Err(ReportError::Input(format!("{name}: no rows to draw")));
        }
        let cols = h.values[0].len();
        if cols == 0 {
            return Err(ReportError::Input(format!("{name}: no columns to draw")));
        }
        if let Some((i, r)) = h.values.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(ReportError::Input(format!(
                "{name}: row {i} has {} values, row 0 has {cols}",
                r.len()
            )));
        }
        if h.row_labels.len() != rows {
            return Err(ReportError::Input(format!(
                "{name}: {} row labels for {rows} rows",
                h.row_labels.len()
            )));
        }
        if h.col_labels.len() != cols {
            return Err(ReportError::Input(format!(
                "{name}: {} column labels for {cols} columns",
                h.col_labels.len()
            )));
        }
        if let Some(a) = &h.annotations {
            if a.len() != rows || a.iter().any(|r| r.len() != cols) {
                return Err(ReportError::Input(format!(
                    "{name}: annotations are not {rows} × {cols} like the values"
                )));
            }
        }
        let finite: Vec<f64> = h
            .values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let (dlo, dhi) = match h.limits {
            Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo <= hi => (lo, hi),
            Some((lo, hi)) => {
                return Err(ReportError::Input(format!(
                    "{name}: colour limits ({lo}, {hi}) are not an interval"
                )))
            }
            None if finite.is_empty() => (0.0, 1.0),
            None => (
                finite.iter().copied().fold(f64::INFINITY, f64::min),
                finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
        };
        let (lo, hi) = match h.scale {
            Scale::Sequential => {
                if dhi > dlo {
                    (dlo, dhi)
                } else {
                    (dlo - 0.5, dhi + 0.5)
                }
            }
            Scale::Diverging { center } => {
                let m = (dlo - center).abs().max((dhi - center).abs());
                let m = if m > 0.0 && m.is_finite() { m } else { 1.0 };
                (center - m, center + m)
            }
        };
        let (ticks, tick_step) = nice_ticks(lo, hi, 5);
        let tick_w = ticks
            .iter()
            .map(|&t| text_width(&fmt_tick(t, tick_step), TICK))
            .fold(0.0, f64::max);

        let ann_w = h
            .annotations
            .as_ref()
            .map(|a| {
                a.iter()
                    .flatten()
                    .map(|s| text_width(&visible(s), CELL_TEXT))
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0);
        let mut cell_w: f64 = if h.annotations.is_some() {
            (ann_w + 8.0).clamp(30.0, 64.0)
        } else {
            22.0
        };
        let col_w = labels_width(&h.col_labels);
        let col_vertical = col_w + 8.0 > cell_w.max(64.0);
        if !col_vertical {
            cell_w = cell_w.max(col_w + 8.0);
        }
        if cols as f64 * cell_w < 260.0 {
            cell_w = (260.0 / cols as f64).min(110.0);
        }
        let mut cell_h: f64 = if h.annotations.is_some() { 19.0 } else { 16.0 };
        if rows as f64 * cell_h < 180.0 {
            cell_h = (180.0 / rows as f64).min(44.0);
        }
        let row_label_w = labels_width(&h.row_labels).min(MAX_LABEL);
        let y_axis_w = if h.y_label.is_empty() { 0.0 } else { LABEL * 2.0 };
        let left = PAD + y_axis_w + row_label_w + 6.0;
        let bar_label_w = axis_title_room(&h.colorbar_label);
        let right = 16.0 + 14.0 + 5.0 + tick_w + 6.0 + bar_label_w + PAD;
        // Under a title wider than the plot, the cells grow (up to 110 px) into the room the
        // title makes anyway, and what is left over centres the plot under the title.
        let title_w = fig_width(0.0, &h.title);
        if cell_w < 110.0 && left + cols as f64 * cell_w + right < title_w {
            cell_w = ((title_w - left - right) / cols as f64).min(110.0);
        }
        let col_vertical = col_vertical && col_w + 8.0 > cell_w;
        let col_label_extent = if col_vertical { col_w.min(MAX_LABEL) } else { LABEL };
        let plot_w = cols as f64 * cell_w;
        let content = left + plot_w + right;
        let width = fig_width(content, &h.title);
        let plot_x = left + (width - content) / 2.0;
        let plot_y = title_height(&h.title);
        let plot_h = rows as f64 * cell_h;
        let height = plot_y + plot_h + 8.0 + col_label_extent + axis_title_room(&h.x_label) + PAD;
        Ok(HeatLayout {
            rows,
            cols,
            cell_w,
            cell_h,
            plot_x,
            plot_y,
            row_label_w,
            col_vertical,
            col_label_extent,
            lo,
            hi,
            ticks,
            tick_step,
            tick_w,
            width,
            height,
        })
    }

    fn size(&self) -> (f64, f64) {
        (self.width, self.height)
    }

    fn color(&self, scale: Scale, v: f64) -> (u8, u8, u8) {
        let t = (v - self.lo) / (self.hi - self.lo);
        match scale {
            Scale::Sequential => sequential_rgb(t),
            Scale::Diverging { .. } => diverging_rgb(t),
        }
    }

    fn draw<DB: DrawingBackend>(&self, h: &Heatmap, c: &Canvas<'_, DB>) -> Result<()> {
        draw_title(c, &h.title, self.width)?;
        let (px, py) = (self.plot_x, self.plot_y);
        let plot_w = self.cols as f64 * self.cell_w;
        let plot_h = self.rows as f64 * self.cell_h;
        let row_y = |r: usize| {
            let k = if h.rows_bottom_up { self.rows - 1 - r } else { r };
            py + k as f64 * self.cell_h
        };
        for (r, row) in h.values.iter().enumerate() {
            let y0 = row_y(r);
            for (col, &v) in row.iter().enumerate() {
                let x0 = px + col as f64 * self.cell_w;
                let fill = if v.is_finite() {
                    self.color(h.scale, v)
                } else {
                    (NAN_FILL.0, NAN_FILL.1, NAN_FILL.2)
                };
                c.rect(x0, y0, x0 + self.cell_w, y0 + self.cell_h, rgb(fill))?;
                if let Some(a) = &h.annotations {
                    let text = fit_text(&visible(&a[r][col]), CELL_TEXT, self.cell_w - 4.0);
                    let ink = if v.is_finite() && is_dark(fill) {
                        WHITE
                    } else {
                        INK
                    };
                    c.text(
                        x0 + self.cell_w / 2.0,
                        y0 + self.cell_h / 2.0,
                        &text,
                        CELL_TEXT,
                        ink,
                        Align::Center,
                        false,
                    )?;
                }
            }
        }
        c.frame(px, py, px + plot_w, py + plot_h, AXIS, 1.0)?;
        // Row labels with ticks.
        for (r, label) in h.row_labels.iter().enumerate() {
            let y = row_y(r) + self.cell_h / 2.0;
            let t = fit_text(&visible(label), LABEL, MAX_LABEL);
            c.line(&[(px - 3.0, y), (px, y)], AXIS, 1.0)?;
            c.text(px - 5.0, y, &t, LABEL, INK, Align::Right, false)?;
        }
        draw_categories_below(c, &h.col_labels, px, self.cell_w, py + plot_h, self.col_vertical)?;
        let y = py + plot_h + 8.0 + self.col_label_extent + LABEL * 1.2;
        draw_x_title(c, &h.x_label, px + plot_w / 2.0, y)?;
        let x = self.plot_x - 6.0 - self.row_label_w - LABEL;
        draw_y_title(c, &h.y_label, x, py + plot_h / 2.0)?;
        // Colour bar.
        let bx = px + plot_w + 16.0;
        let bw = 14.0;
        let steps = 128;
        for i in 0..steps {
            let t0 = i as f64 / steps as f64;
            let t1 = (i + 1) as f64 / steps as f64;
            let v = self.lo + (self.hi - self.lo) * (t0 + t1) / 2.0;
            let y1 = py + plot_h * (1.0 - t0);
            let y0 = py + plot_h * (1.0 - t1);
            c.rect(bx, y0, bx + bw, y1 + 0.5, rgb(self.color(h.scale, v)))?;
        }
        c.frame(bx, py, bx + bw, py + plot_h, AXIS, 1.0)?;
        for &t in &self.ticks {
            let y = py + plot_h * (1.0 - (t - self.lo) / (self.hi - self.lo));
            c.line(&[(bx + bw, y), (bx + bw + 3.0, y)], AXIS, 1.0)?;
            c.text(
                bx + bw + 5.0,
                y,
                &fmt_tick(t, self.tick_step),
                TICK,
                INK,
                Align::Left,
                false,
            )?;
        }
        if !h.colorbar_label.is_empty() {
            let x = bx + bw + 5.0 + self.tick_w + 6.0 + LABEL;
            let t = fit_text(&visible(&h.colorbar_label), LABEL, plot_h.max(60.0));
            c.text(x, py + plot_h / 2.0, &t, LABEL, INK, Align::Center, true)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Numeric axes

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis over the data; `pad` adds a 4% margin (not crossing zero when the data
    /// stays on one side of it).
    fn linear(lo: f64, hi: f64, pad: bool) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else if lo == 0.0 {
            (-1.0, 1.0)
        } else {
            (lo - lo.abs() * 0.1, hi + hi.abs() * 0.1)
        };
        let (mut plo, mut phi) = (lo, hi);
        if pad {
            let m = (hi - lo) * 0.04;
            plo -= m;
            phi += m;
            if lo >= 0.0 && plo < 0.0 {
                plo = 0.0;
            }
            if hi <= 0.0 && phi > 0.0 {
                phi = 0.0;
            }
        }
        let (ticks, step) = nice_ticks(plo, phi, 6);
        Axis {
            lo: plo,
            hi: phi,
            log: false,
            ticks: ticks.into_iter().map(|t| (t, fmt_tick(t, step))).collect(),
        }
    }

    /// A base-10 log axis over positive data, widened to whole decades.
    fn log10(lo: f64, hi: f64) -> Axis {
        let l0 = lo.log10().floor();
        let mut l1 = hi.log10().ceil();
        if l1 <= l0 {
            l1 = l0 + 1.0;
        }
        let decades = (l1 - l0) as i64;
        let mut ticks = Vec::new();
        for k in (l0 as i64)..=(l1 as i64) {
            let mults: &[f64] = if decades <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            for &m in mults {
                let v = m * 10f64.powi(k as i32);
                if v <= 10f64.powf(l1) * 1.0000001 {
                    let label = if (1e-3..1e4).contains(&v) {
                        fmt_tick(v, if v < 1.0 { v } else { 1.0 })
                    } else {
                        format!("{:.0e}", v)
                    };
                    ticks.push((v, label));
                }
            }
        }
        Axis {
            lo: 10f64.powf(l0),
            hi: 10f64.powf(l1),
            log: true,
            ticks,
        }
    }

    fn with_range(lo: f64, hi: f64, log: bool) -> Axis {
        let mut a = if log {
            Axis::log10(lo, hi)
        } else {
            Axis::linear(lo, hi, false)
        };
        a.lo = lo;
        a.hi = hi;
        a.ticks
            .retain(|(t, _)| *t >= lo - (hi - lo) * 1e-9 && *t <= hi + (hi - lo) * 1e-9);
        a
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn label_width(&self) -> f64 {
        self.ticks
            .iter()
            .map(|(_, l)| text_width(l, TICK))
            .fold(0.0, f64::max)
    }

    /// The ticks as an x axis under the plot spanning `py..py + ph`, with grid lines across it;
    /// `vx` places a value.
    fn draw_below<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        vx: impl Fn(f64) -> f64,
        py: f64,
        ph: f64,
    ) -> Result<()> {
        for (t, label) in &self.ticks {
            let x = vx(*t);
            c.line(&[(x, py), (x, py + ph)], GRID, 1.0)?;
            c.line(&[(x, py + ph), (x, py + ph + 3.0)], AXIS, 1.0)?;
            c.text(
                x,
                py + ph + 5.0 + TICK * 0.6,
                label,
                TICK,
                INK,
                Align::Center,
                false,
            )?;
        }
        Ok(())
    }

    /// The ticks as a y axis left of the plot spanning `px..px + pw`, with grid lines across it;
    /// `vy` places a value.
    fn draw_left<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        vy: impl Fn(f64) -> f64,
        px: f64,
        pw: f64,
    ) -> Result<()> {
        for (t, label) in &self.ticks {
            let y = vy(*t);
            c.line(&[(px, y), (px + pw, y)], GRID, 1.0)?;
            c.line(&[(px - 3.0, y), (px, y)], AXIS, 1.0)?;
            c.text(px - 5.0, y, label, TICK, INK, Align::Right, false)?;
        }
        Ok(())
    }
}

/// Category labels (heatmap columns, bar groups) under a plot starting at `px`, centred on slots
/// `slot` wide, each with a tick down from `y`; `vertical` labels read upwards, for names wider
/// than their slot.
fn draw_categories_below<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    labels: &[String],
    px: f64,
    slot: f64,
    y: f64,
    vertical: bool,
) -> Result<()> {
    for (i, label) in labels.iter().enumerate() {
        let x = px + (i as f64 + 0.5) * slot;
        c.line(&[(x, y), (x, y + 3.0)], AXIS, 1.0)?;
        let t = fit_text(&visible(label), LABEL, MAX_LABEL);
        if vertical {
            c.text(x, y + 6.0, &t, LABEL, INK, Align::Right, true)?;
        } else {
            c.text(x, y + 6.0 + LABEL * 0.6, &t, LABEL, INK, Align::Center, false)?;
        }
    }
    Ok(())
}

/// The x axis title centred on `cx` at height `y`; an empty title draws nothing.
fn draw_x_title<DB: DrawingBackend>(c: &Canvas<'_, DB>, label: &str, cx: f64, y: f64) -> Result<()> {
    c.text(cx, y, &visible(label), LABEL, INK, Align::Center, false)
}

/// The y axis title reading upwards at `x`, centred on `cy`; an empty title draws nothing.
fn draw_y_title<DB: DrawingBackend>(c: &Canvas<'_, DB>, label: &str, x: f64, cy: f64) -> Result<()> {
    c.text(x, cy, &visible(label), LABEL, INK, Align::Center, true)
}

/// Legend entries to the right of a plot.
fn legend_width(names: &[&str]) -> f64 {
    if names.len() < 2 {
        return 0.0;
    }
    16.0 + 22.0
        + names
            .iter()
            .map(|n| text_width(&fit_text(&visible(n), LABEL, 180.0), LABEL))
            .fold(0.0, f64::max)
}

/// Width of a figure whose plot ends at `plot_right`, with the legend of `names` beside it.
fn width_with_legend(plot_right: f64, names: &[&str], title: &str) -> f64 {
    fig_width(plot_right + 14.0 + legend_width(names) + PAD, title)
}

/// Height of a figure with numeric ticks and `x_title_room` under its plot, and the legend of
/// `names` beside it, whichever reaches lower.
fn height_under_ticks(plot_y: f64, plot_h: f64, x_title_room: f64, names: &[&str]) -> f64 {
    (plot_y + plot_h + 6.0 + TICK * 1.4 + x_title_room + PAD).max(plot_y + legend_height(names) + PAD)
}

fn legend_height(names: &[&str]) -> f64 {
    if names.len() < 2 {
        0.0
    } else {
        names.len() as f64 * LABEL * 1.6
    }
}

fn draw_legend<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    names: &[&str],
    x: f64,
    y: f64,
    lines: bool,
) -> Result<()> {
    if names.len() < 2 {
        return Ok(());
    }
    for (i, n) in names.iter().enumerate() {
        let yy = y + (i as f64 + 0.5) * LABEL * 1.6;
        let col = rgb(series_rgb(i));
        if lines {
            c.line(&[(x + 16.0, yy), (x + 32.0, yy)], col, 2.0)?;
            c.circle(x + 24.0, yy, 2.5, col)?;
        } else {
            c.rect(x + 18.0, yy - 5.0, x + 28.0, yy + 5.0, col)?;
        }
        let t = fit_text(&visible(n), LABEL, 180.0);
        c.text(x + 38.0, yy, &t, LABEL, INK, Align::Left, false)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bars

struct BarLayout {
    axis: Axis,
    /// Along the category direction: size of one group.
    group: f64,
    plot_x: f64,
    plot_y: f64,
    plot_w: f64,
    plot_h: f64,
    cat_vertical: bool,
    /// Height of the category labels under vertical bars.
    cat_extent: f64,
    width: f64,
    height: f64,
}

impl BarLayout {
    fn new(b: &Bars) -> Result<Self> {
        let name = describe("bar chart", &b.title);
        let n = b.categories.len();
        if n == 0 {
            return Err(ReportError::Input(format!("{name}: no categories to draw")));
        }
        if b.series.is_empty() {
            return Err(ReportError::Input(format!("{name}: no series to draw")));
        }
        for s in &b.series {
            if s.values.len() != n {
                return Err(ReportError::Input(format!(
                    "{name}: series {:?} has {} values for {n} categories",
                    s.name,
                    s.values.len()
                )));
            }
            if let Some(e) = &s.errors {
                if e.len() != n {
                    return Err(ReportError::Input(format!(
                        "{name}: series {:?} has {} error bars for {n} categories",
                        s.name,
                        e.len()
                    )));
                }
            }
        }
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for s in &b.series {
            for (i, &v) in s.values.iter().enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let e = s
                    .errors
                    .as_ref()
                    .map(|e| e[i])
                    .filter(|e| e.is_finite())
                    .unwrap_or(0.0)
                    .abs();
                lo = lo.min(v - e);
                hi = hi.max(v + e);
            }
        }
        let axis = match b.value_range {
            Some((a, z)) if a < z => Axis::with_range(a, z, false),
            Some((a, z)) => {
                return Err(ReportError::Input(format!(
                    "{name}: value range ({a}, {z}) is not an interval"
                )))
            }
            None => Axis::linear(lo, hi, true),
        };
        let k = b.series.len() as f64;
        let cat_w = labels_width(&b.categories).min(MAX_LABEL);
        let names: Vec<&str> = b.series.iter().map(|s| s.name.as_str()).collect();
        // Horizontal bars keep their category labels level, down the left.
        let (group, cat_vertical) = if b.horizontal {
            ((k * 12.0 + 6.0).max(LABEL + 6.0), false)
        } else {
            let mut group = (k * 10.0 + 6.0).max(16.0);
            let cat_vertical = cat_w + 6.0 > group.max(48.0);
            if !cat_vertical {
                group = group.max(cat_w + 6.0);
            }
            if group * (n as f64) < 320.0 {
                group = (320.0 / n as f64).min(90.0).max(group);
            }
            (group, cat_vertical)
        };
        let cat_len = group * n as f64;
        let (plot_x, plot_w, plot_h) = if b.horizontal {
            (PAD + cat_w + 8.0, 380.0, cat_len)
        } else {
            (
                PAD + axis_title_room(&b.y_label) + axis.label_width() + 8.0,
                cat_len,
                260.0,
            )
        };
        let plot_y = title_height(&b.title);
        let cat_extent = if cat_vertical { cat_w } else { LABEL };
        let width = width_with_legend(plot_x + plot_w, &names, &b.title);
        let height = if b.horizontal {
            // The value axis's title always has its room here.
            height_under_ticks(plot_y, plot_h, LABEL * 2.2, &names)
        } else {
            plot_y + plot_h + 8.0 + cat_extent + axis_title_room(&b.x_label) + PAD
        };
        Ok(BarLayout {
            axis,
            group,
            plot_x,
            plot_y,
            plot_w,
            plot_h,
            cat_vertical,
            cat_extent,
            width,
            height,
        })
    }

    fn size(&self) -> (f64, f64) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, b: &Bars, c: &Canvas<'_, DB>) -> Result<()> {
        draw_title(c, &b.title, self.width)?;
        let (px, py, pw, ph) = (self.plot_x, self.plot_y, self.plot_w, self.plot_h);
        let k = b.series.len() as f64;
        let names: Vec<&str> = b.series.iter().map(|s| s.name.as_str()).collect();
        let inner = self.group - 6.0;
        let bar = inner / k;
        // Both orientations draw the same bars: `value` places a value along the value axis (x
        // when horizontal, y otherwise), `at` makes a point of (value place, category place),
        // and the categories run `cat_len` from `cat0`.
        let value = |v: f64| {
            let f = self.axis.frac(v).clamp(0.0, 1.0);
            if b.horizontal {
                px + pw * f
            } else {
                py + ph * (1.0 - f)
            }
        };
        let at = |v: f64, u: f64| if b.horizontal { (v, u) } else { (u, v) };
        let (cat0, cat_len) = if b.horizontal { (py, ph) } else { (px, pw) };
        if b.horizontal {
            self.axis.draw_below(c, value, py, ph)?;
        } else {
            self.axis.draw_left(c, value, px, pw)?;
        }
        for (si, s) in b.series.iter().enumerate() {
            let col = rgb(series_rgb(si));
            for (i, &v) in s.values.iter().enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let u0 = cat0 + i as f64 * self.group + 3.0 + si as f64 * bar;
                let (a, z) = (value(0.0), value(v));
                let ((x0, y0), (x1, y1)) = (at(a.min(z), u0), at(a.max(z), u0 + bar - 1.0));
                c.rect(x0, y0, x1, y1, col)?;
                if let Some(e) = s.errors.as_ref().map(|e| e[i]).filter(|e| e.is_finite()) {
                    let um = u0 + (bar - 1.0) / 2.0;
                    let (lo, hi) = (value(v - e), value(v + e));
                    c.line(&[at(lo, um), at(hi, um)], INK, 1.0)?;
                    c.line(&[at(lo, um - 3.0), at(lo, um + 3.0)], INK, 1.0)?;
                    c.line(&[at(hi, um - 3.0), at(hi, um + 3.0)], INK, 1.0)?;
                }
            }
        }
        let zero = value(0.0);
        c.line(&[at(zero, cat0), at(zero, cat0 + cat_len)], AXIS, 1.0)?;
        if b.horizontal {
            c.line(&[(px, py + ph), (px + pw, py + ph)], AXIS, 1.0)?;
            for (i, label) in b.categories.iter().enumerate() {
                let y = py + (i as f64 + 0.5) * self.group;
                let t = fit_text(&visible(label), LABEL, MAX_LABEL);
                c.text(px - 6.0, y, &t, LABEL, INK, Align::Right, false)?;
            }
            let y = py + ph + 6.0 + TICK * 1.4 + LABEL * 1.1;
            draw_x_title(c, &b.x_label, px + pw / 2.0, y)?;
        } else {
            c.line(&[(px, py), (px, py + ph)], AXIS, 1.0)?;
            draw_categories_below(c, &b.categories, px, self.group, py + ph, self.cat_vertical)?;
            let y = py + ph + 8.0 + self.cat_extent + LABEL * 1.2;
            draw_x_title(c, &b.x_label, px + pw / 2.0, y)?;
            draw_y_title(c, &b.y_label, PAD + LABEL * 0.8, py + ph / 2.0)?;
        }
        draw_legend(c, &names, px + pw, py, false)
    }
}

// ---------------------------------------------------------------------------------------------
// Lines

struct LineLayout {
    x: Axis,
    y: Axis,
    plot_x: f64,
    plot_y: f64,
    plot_w: f64,
    plot_h: f64,
    width: f64,
    height: f64,
}

impl LineLayout {
    fn new(l: &Lines) -> Result<Self> {
        let name = describe("line chart", &l.title);
        if l.series.is_empty() || l.series.iter().all(|s| s.points.is_empty()) {
            return Err(ReportError::Input(format!("{name}: no points to draw")));
        }
        let (mut xlo, mut xhi, mut ylo, mut yhi) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for s in &l.series {
            for &(x, y) in &s.points {
                if !x.is_finite() || !y.is_finite() {
                    continue;
                }
                if l.y_log && y <= 0.0 {
                    return Err(ReportError::Input(format!(
                        "{name}: log y axis needs y > 0, series {:?} has y = {y} at x = {x} \
                         (plot rank + 1 rather than rank)",
                        s.name
                    )));
                }
                xlo = xlo.min(x);
                xhi = xhi.max(x);
                ylo = ylo.min(y);
                yhi = yhi.max(y);
            }
        }
        if !xlo.is_finite() {
            return Err(ReportError::Input(format!(
                "{name}: no point has finite coordinates"
            )));
        }
        let x = match l.x_range {
            Some((a, b)) if a < b => Axis::with_range(a, b, false),
            Some((a, b)) => {
                return Err(ReportError::Input(format!(
                    "{name}: x range ({a}, {b}) is not an interval"
                )))
            }
            None => Axis::linear(xlo, xhi, false),
        };
        let y = match l.y_range {
            Some((a, b)) if a < b && (!l.y_log || a > 0.0) => Axis::with_range(a, b, l.y_log),
            Some((a, b)) => {
                return Err(ReportError::Input(format!(
                    "{name}: y range ({a}, {b}) is not an interval{}",
                    if l.y_log { " of positive values" } else { "" }
                )))
            }
            None if l.y_log => Axis::log10(ylo, yhi),
            None => Axis::linear(ylo, yhi, true),
        };
        let names: Vec<&str> = l.series.iter().map(|s| s.name.as_str()).collect();
        let plot_x = PAD + axis_title_room(&l.y_label) + y.label_width() + 8.0;
        let plot_y = title_height(&l.title);
        let (plot_w, plot_h) = (420.0, 260.0);
        let width = width_with_legend(plot_x + plot_w, &names, &l.title);
        let height = height_under_ticks(plot_y, plot_h, axis_title_room(&l.x_label), &names);
        Ok(LineLayout {
            x,
            y,
            plot_x,
            plot_y,
            plot_w,
            plot_h,
            width,
            height,
        })
    }

    fn size(&self) -> (f64, f64) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, l: &Lines, c: &Canvas<'_, DB>) -> Result<()> {
        draw_title(c, &l.title, self.width)?;
        let (px, py, pw, ph) = (self.plot_x, self.plot_y, self.plot_w, self.plot_h);
        let vx = |v: f64| px + pw * self.x.frac(v);
        let vy = |v: f64| py + ph * (1.0 - self.y.frac(v));
        self.y.draw_left(c, vy, px, pw)?;
        self.x.draw_below(c, vx, py, ph)?;
        c.frame(px, py, px + pw, py + ph, AXIS, 1.0)?;
        let inside = |x: f64, y: f64| {
            let (fx, fy) = (self.x.frac(x), self.y.frac(y));
            (-1e-9..=1.0 + 1e-9).contains(&fx) && (-1e-9..=1.0 + 1e-9).contains(&fy)
        };
        for (si, s) in l.series.iter().enumerate() {
            let col = rgb(series_rgb(si));
            let mut run: Vec<(f64, f64)> = Vec::new();
            let flush = |run: &mut Vec<(f64, f64)>| -> Result<()> {
                if run.len() > 1 {
                    c.line(run, col, 2.0)?;
                }
                run.clear();
                Ok(())
            };
            for &(x, y) in &s.points {
                if x.is_finite() && y.is_finite() && inside(x, y) {
                    run.push((vx(x), vy(y)));
                } else {
                    flush(&mut run)?;
                }
            }
            flush(&mut run)?;
            if s.points.len() <= 60 {
                for &(x, y) in &s.points {
                    if x.is_finite() && y.is_finite() && inside(x, y) {
                        c.circle(vx(x), vy(y), 2.5, col)?;
                    }
                }
            }
        }
        let y = py + ph + 6.0 + TICK * 1.4 + LABEL * 1.1;
        draw_x_title(c, &l.x_label, px + pw / 2.0, y)?;
        draw_y_title(c, &l.y_label, PAD + LABEL * 0.8, py + ph / 2.0)?;
        let names: Vec<&str> = l.series.iter().map(|s| s.name.as_str()).collect();
        draw_legend(c, &names, px + pw, py, true)
    }
}

// ---------------------------------------------------------------------------------------------
// Panels

struct PanelLayout {
    cols: usize,
    col_x: Vec<f64>,
    row_y: Vec<f64>,
    width: f64,
    height: f64,
}

impl PanelLayout {
    fn new(p: &Panels) -> Result<Self> {
        if p.panels.is_empty() {
            return Err(ReportError::Input(format!(
                "panels {:?}: no panels to draw",
                p.title
            )));
        }
        let cols = p.columns.clamp(1, p.panels.len());
        let rows = p.panels.len().div_ceil(cols);
        let mut col_w = vec![0.0f64; cols];
        let mut row_h = vec![0.0f64; rows];
        for (i, f) in p.panels.iter().enumerate() {
            let (w, h) = f.as_fig().size().map_err(|e| match e {
                ReportError::Input(m) => ReportError::Input(format!("panels {:?}, panel {i}: {m}", p.title)),
                e => e,
            })?;
            col_w[i % cols] = col_w[i % cols].max(w);
            row_h[i / cols] = row_h[i / cols].max(h);
        }
        let top = if p.title.is_empty() {
            0.0
        } else {
            title_height(&p.title)
        };
        let mut col_x = vec![0.0];
        for w in &col_w {
            col_x.push(col_x.last().copied().unwrap_or(0.0) + w);
        }
        let mut row_y = vec![top];
        for h in &row_h {
            row_y.push(row_y.last().copied().unwrap_or(0.0) + h);
        }
        let width = fig_width(col_x[cols], &p.title);
        let height = row_y[rows];
        Ok(PanelLayout {
            cols,
            col_x,
            row_y,
            width,
            height,
        })
    }

    fn size(&self) -> (f64, f64) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, p: &Panels, c: &Canvas<'_, DB>) -> Result<()> {
        if !p.title.is_empty() {
            draw_title(c, &p.title, self.width)?;
        }
        for (i, f) in p.panels.iter().enumerate() {
            let (r, k) = (i / self.cols, i % self.cols);
            let sub = c.at((self.col_x[k], self.row_y[r]));
            f.as_fig().draw(&sub)?;
        }
        Ok(())
    }
}
