//! Colour scales: viridis (sequential) and ColorBrewer RdBu (diverging, blue below the centre,
//! white at it, red above), linearly interpolated between their published anchor colours.

const VIRIDIS: [u32; 11] = [
    0x440154, 0x482475, 0x414487, 0x355f8d, 0x2a788e, 0x21918c, 0x22a884, 0x44bf70, 0x7ad151, 0xbddf26,
    0xfde725,
];

const RDBU_R: [u32; 11] = [
    0x053061, 0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7, 0xfddbc7, 0xf4a582, 0xd6604d, 0xb2182b,
    0x67001f,
];

fn interpolate(anchors: &[u32], t: f64) -> (u8, u8, u8) {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (anchors.len() - 1) as f64;
    let i = (x.floor() as usize).min(anchors.len() - 2);
    let f = x - i as f64;
    let c = |v: u32, shift: u32| ((v >> shift) & 0xff) as f64;
    let mix = |shift| {
        let a = c(anchors[i], shift);
        let b = c(anchors[i + 1], shift);
        (a + (b - a) * f).round() as u8
    };
    (mix(16), mix(8), mix(0))
}

/// Viridis at `t` in [0, 1] (clamped).
pub fn sequential_rgb(t: f64) -> (u8, u8, u8) {
    interpolate(&VIRIDIS, t)
}

/// Reversed RdBu at `t` in [0, 1] (clamped): 0 = dark blue, 0.5 = near-white, 1 = dark red.
pub fn diverging_rgb(t: f64) -> (u8, u8, u8) {
    interpolate(&RDBU_R, t)
}

/// Relative luminance (sRGB, approximate) for choosing black or white text on a cell.
pub(crate) fn is_dark((r, g, b): (u8, u8, u8)) -> bool {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b) < 0.18
}

/// Line/bar colours for series (Okabe–Ito, colour-blind safe), cycled.
pub(crate) fn series_rgb(i: usize) -> (u8, u8, u8) {
    const P: [(u8, u8, u8); 8] = [
        (0, 114, 178),
        (213, 94, 0),
        (0, 158, 115),
        (204, 121, 167),
        (230, 159, 0),
        (86, 180, 233),
        (0, 0, 0),
        (240, 228, 66),
    ];
    P[i % P.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_centre() {
        assert_eq!(sequential_rgb(0.0), (0x44, 0x01, 0x54));
        assert_eq!(sequential_rgb(1.0), (0xfd, 0xe7, 0x25));
        assert_eq!(diverging_rgb(0.5), (0xf7, 0xf7, 0xf7));
        assert_eq!(diverging_rgb(-3.0), diverging_rgb(0.0));
        assert_eq!(sequential_rgb(f64::NAN), sequential_rgb(0.0));
        assert!(is_dark(sequential_rgb(0.0)));
        assert!(!is_dark(sequential_rgb(1.0)));
    }
}
