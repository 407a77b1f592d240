//! Drawing primitives in logical pixels on top of plotters' drawing areas, text measured with the
//! bundled font, tick placement and label helpers.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use crate::error::{ReportError, Result};

pub(crate) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Plotters' ab_glyph backend has no system fonts: register the bundled DejaVu Sans once.
pub(crate) fn ensure_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TTF compiled into the crate; failure is a build defect.
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("bundled DejaVuSans.ttf is not a valid font");
        }
    });
}

/// Plotters' size unit is 1.24 × the em size used by the SVG backend.
const PLOTTERS_SIZE: f64 = 1.24;

/// Width in logical pixels of `text` at font size `size` (em, logical pixels).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    ensure_font();
    if text.is_empty() {
        return 0.0;
    }
    let font = (FONT, size * PLOTTERS_SIZE * 4.0).into_font();
    match font.box_size(text) {
        Ok((w, _)) => w as f64 / 4.0,
        Err(_) => 0.6 * size * text.chars().count() as f64,
    }
}

/// `text` cut with '…' so that it is at most `max_width` wide.
pub(crate) fn fit_text(text: &str, size: f64, max_width: f64) -> String {
    if text_width(text, size) <= max_width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for n in (0..chars.len()).rev() {
        let mut t: String = chars[..n].iter().collect();
        t.push('…');
        if text_width(&t, size) <= max_width || n == 0 {
            return t;
        }
    }
    "…".to_string()
}

/// A token string made visible for an axis or a cell: spaces as '·', newlines as '↵', tabs as
/// '→', other control characters as `\u{..}`, the empty string as '∅'. Use it for the labels of
/// figures that show tokens (" Paris" → "·Paris").
pub fn token_label(token: &str) -> String {
    if token.is_empty() {
        return "∅".to_string();
    }
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            ' ' => out.push('·'),
            '\n' => out.push('↵'),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('→'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Control characters would be invisible or break a text element: escape them in any label.
pub(crate) fn visible(label: &str) -> String {
    if label.chars().any(|c| c.is_control()) {
        let mut out = String::new();
        for c in label.chars() {
            match c {
                '\n' => out.push('↵'),
                '\t' => out.push('→'),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out
    } else {
        label.to_string()
    }
}

/// Ticks at 1, 2, 5 × 10^k covering [lo, hi] with at most about `max_n` of them inside.
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_n: usize) -> (Vec<f64>, f64) {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return (vec![lo], 1.0);
    }
    let raw = (hi - lo) / max_n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// A tick value printed with just enough decimals for `step`.
pub(crate) fn fmt_tick(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    // Whole steps only: a 2.5 step needs its decimal (2.5, 7.5 must not print as 2, 8).
    if step >= 1.0 && step.fract() == 0.0 && v.abs() < 1e6 {
        return format!("{:.0}", v);
    }
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        return format!("{:.1e}", v);
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let decimals = if (step * 10f64.powi(decimals as i32)).fract().abs() > 1e-6 {
        decimals + 1
    } else {
        decimals
    };
    format!("{:.*}", decimals.min(6), v)
}

pub(crate) fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

pub(crate) const INK: RGBColor = RGBColor(34, 34, 34);
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
pub(crate) const AXIS: RGBColor = RGBColor(90, 90, 90);
pub(crate) const NAN_FILL: RGBColor = RGBColor(242, 242, 242);

#[derive(Clone, Copy)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

/// A drawing area addressed in logical pixels; `s` scales them to device pixels.
pub(crate) struct Canvas<'a, DB: DrawingBackend> {
    pub area: &'a DrawingArea<DB, Shift>,
    pub s: f64,
    /// The bitmap backend places ab_glyph text a little high: it gets a baseline correction.
    pub bitmap: bool,
    /// Logical offset of this canvas inside the root (for panels).
    pub origin: (f64, f64),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Draw(format!("{e:?}"))
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    pub fn at(&self, origin: (f64, f64)) -> Canvas<'a, DB> {
        Canvas {
            area: self.area,
            s: self.s,
            bitmap: self.bitmap,
            origin: (self.origin.0 + origin.0, self.origin.1 + origin.1),
        }
    }

    fn p(&self, x: f64, y: f64) -> (i32, i32) {
        (
            ((x + self.origin.0) * self.s).round() as i32,
            ((y + self.origin.1) * self.s).round() as i32,
        )
    }

    pub fn rect(&self, x0: f64, y0: f64, x1: f64, y1: f64, fill: RGBColor) -> Result<()> {
        self.area
            .draw(&Rectangle::new([self.p(x0, y0), self.p(x1, y1)], fill.filled()))
            .map_err(draw_err)
    }

    pub fn frame(&self, x0: f64, y0: f64, x1: f64, y1: f64, color: RGBColor, w: f64) -> Result<()> {
        let pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        self.line(&pts, color, w)
    }

    pub fn line(&self, pts: &[(f64, f64)], color: RGBColor, width: f64) -> Result<()> {
        let w = ((width * self.s).round() as u32).max(1);
        let pts: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| self.p(x, y)).collect();
        self.area
            .draw(&PathElement::new(pts, color.stroke_width(w)))
            .map_err(draw_err)
    }

    pub fn circle(&self, x: f64, y: f64, r: f64, color: RGBColor) -> Result<()> {
        let r = ((r * self.s).round() as i32).max(1);
        self.area
            .draw(&Circle::new(self.p(x, y), r, color.filled()))
            .map_err(draw_err)
    }

    /// Text vertically centred on `y`; `vertical` turns it to read bottom-to-top, centred on `x`
    /// across and aligned along the vertical axis by `align` (Left = starts at `y` going up).
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &self,
        x: f64,
        y: f64,
        text: &str,
        size: f64,
        color: RGBColor,
        align: Align,
        vertical: bool,
    ) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        ensure_font();
        let h = match align {
            Align::Left => HPos::Left,
            Align::Center => HPos::Center,
            Align::Right => HPos::Right,
        };
        let mut style = TextStyle::from((FONT, size * PLOTTERS_SIZE * self.s).into_font())
            .color(&color)
            .pos(Pos::new(h, VPos::Center));
        // Baseline correction for ab_glyph in the bitmap backend, along the text's "down".
        let down = if self.bitmap { 0.268 * size } else { 0.0 };
        let (mut px, mut py) = (x, y);
        if vertical {
            style = style.transform(FontTransform::Rotate270);
            px += down;
        } else {
            py += down;
        }
        self.area
            .draw(&Text::new(text.to_string(), self.p(px, py), style))
            .map_err(draw_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_keep_the_steps_decimals() {
        let (ticks, step) = nice_ticks(-8.6, 2.6, 5);
        assert_eq!(step, 2.5);
        let labels: Vec<String> = ticks.iter().map(|&t| fmt_tick(t, step)).collect();
        assert_eq!(labels, ["-7.5", "-5.0", "-2.5", "0.0", "2.5"]);
        assert_eq!(fmt_tick(20.0, 10.0), "20");
        assert_eq!(fmt_tick(0.25, 0.05), "0.25");
    }
}
