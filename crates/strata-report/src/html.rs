//! A self-contained HTML report: headings (with a table of contents), paragraphs, preformatted
//! text, tables and figures (inline SVG, or PNG as a base64 data URI), written atomically.
//!
//! ```no_run
//! use strata_report::{html::Report, Bars, Figure};
//! let mut r = Report::new("strata report");
//! r.section("Logit lens")
//!     .paragraph("Target rank per layer.")
//!     .table(&["layer", "rank"], vec![vec!["0".into(), "1234".into()]]);
//! r.figure("Ablation", &Figure::Bars(Bars::default())).ok();
//! r.write("out/report.html").unwrap();
//! ```

use std::path::Path;

use base64::Engine;

use crate::error::{ReportError, Result};
use crate::figure::Figure;
use crate::write_atomic;

#[derive(Clone, Debug)]
enum Block {
    Heading {
        level: u8,
        text: String,
        id: String,
    },
    Paragraph(String),
    Pre(String),
    Html(String),
    Table {
        caption: Option<String>,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Figure {
        caption: String,
        body: String,
    },
}

/// A report under construction; [`Report::to_html`] renders it, [`Report::write`] saves it.
#[derive(Clone, Debug, Default)]
pub struct Report {
    title: String,
    blocks: Vec<Block>,
    ids: Vec<String>,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1100px;\
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{border-bottom:1px solid #eee;\
padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f4f4f4}\
tr:nth-child(even) td{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}\
caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}\
figure{margin:1.5em 0;overflow-x:auto}figure svg,figure img{max-width:100%;height:auto}\
figcaption{color:#555;font-size:.9em;margin-top:.3em}pre{background:#f6f6f6;padding:.7em;\
overflow-x:auto}nav ul{columns:2}";

impl Report {
    pub fn new(title: impl Into<String>) -> Self {
        Report {
            title: title.into(),
            ..Default::default()
        }
    }

    fn unique_id(&mut self, text: &str) -> String {
        let mut base: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        base = base.trim_matches('-').to_string();
        if base.is_empty() {
            base = "section".into();
        }
        let mut id = base.clone();
        let mut k = 2;
        while self.ids.contains(&id) {
            id = format!("{base}-{k}");
            k += 1;
        }
        self.ids.push(id.clone());
        id
    }

    /// A heading of `level` 2–6 (level 1 is the report's title).
    pub fn heading(&mut self, level: u8, text: impl Into<String>) -> &mut Self {
        let text = text.into();
        let id = self.unique_id(&text);
        self.blocks.push(Block::Heading {
            level: level.clamp(2, 6),
            text,
            id,
        });
        self
    }

    /// A top-level section heading (h2, listed in the table of contents).
    pub fn section(&mut self, text: impl Into<String>) -> &mut Self {
        self.heading(2, text)
    }

    /// A sub-section heading (h3).
    pub fn subsection(&mut self, text: impl Into<String>) -> &mut Self {
        self.heading(3, text)
    }

    /// A paragraph of plain text (escaped).
    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// Preformatted text, e.g. the command that produced a result.
    pub fn pre(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Pre(text.into()));
        self
    }

    /// Raw HTML, inserted as is (the caller escapes).
    pub fn raw_html(&mut self, html: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Html(html.into()));
        self
    }

    /// A table; cells that parse as numbers are right-aligned.
    pub fn table<S: AsRef<str>>(&mut self, header: &[S], rows: Vec<Vec<String>>) -> &mut Self {
        self.blocks.push(Block::Table {
            caption: None,
            header: header.iter().map(|s| s.as_ref().to_string()).collect(),
            rows,
        });
        self
    }

    /// A table with a caption above it.
    pub fn table_with_caption<S: AsRef<str>>(
        &mut self,
        caption: impl Into<String>,
        header: &[S],
        rows: Vec<Vec<String>>,
    ) -> &mut Self {
        self.blocks.push(Block::Table {
            caption: Some(caption.into()),
            header: header.iter().map(|s| s.as_ref().to_string()).collect(),
            rows,
        });
        self
    }

    /// Render `figure` as SVG and embed it inline.
    pub fn figure(&mut self, caption: impl Into<String>, figure: &Figure) -> Result<&mut Self> {
        let svg = figure.svg()?;
        Ok(self.figure_svg(caption, &svg))
    }

    /// Embed an SVG document inline (its XML declaration, if any, is dropped).
    pub fn figure_svg(&mut self, caption: impl Into<String>, svg: &str) -> &mut Self {
        let body = match svg.find("<svg") {
            Some(i) => svg[i..].to_string(),
            None => svg.to_string(),
        };
        self.blocks.push(Block::Figure {
            caption: caption.into(),
            body,
        });
        self
    }

    /// Embed PNG bytes as a base64 data URI.
    pub fn figure_png(&mut self, caption: impl Into<String>, png: &[u8]) -> &mut Self {
        let caption = caption.into();
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let body = format!(
            "<img alt=\"{}\" src=\"data:image/png;base64,{b64}\">",
            escape(&caption)
        );
        self.blocks.push(Block::Figure { caption, body });
        self
    }

    /// Embed a figure file written earlier: `.svg` inline, `.png` as a data URI.
    pub fn figure_file(&mut self, caption: impl Into<String>, path: impl AsRef<Path>) -> Result<&mut Self> {
        let path = path.as_ref();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "svg" => {
                let svg = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
                Ok(self.figure_svg(caption, &svg))
            }
            "png" => {
                let png = std::fs::read(path).map_err(|e| ReportError::io(path, e))?;
                if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
                    return Err(ReportError::Input(format!("{}: not a PNG file", path.display())));
                }
                Ok(self.figure_png(caption, &png))
            }
            _ => Err(ReportError::Input(format!(
                "{}: a report figure must be a .svg or .png file",
                path.display()
            ))),
        }
    }

    /// The whole report as one HTML document with no external resources.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str(&format!("<title>{}</title>\n", escape(&self.title)));
        h.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
        h.push_str(&format!("<h1>{}</h1>\n", escape(&self.title)));
        let toc: Vec<(&str, &str)> = self
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Heading { level: 2, text, id } => Some((text.as_str(), id.as_str())),
                _ => None,
            })
            .collect();
        if toc.len() > 1 {
            h.push_str("<nav><ul>\n");
            for (text, id) in toc {
                h.push_str(&format!("<li><a href=\"#{id}\">{}</a></li>\n", escape(text)));
            }
            h.push_str("</ul></nav>\n");
        }
        for b in &self.blocks {
            match b {
                Block::Heading { level, text, id } => {
                    h.push_str(&format!("<h{level} id=\"{id}\">{}</h{level}>\n", escape(text)))
                }
                Block::Paragraph(t) => h.push_str(&format!("<p>{}</p>\n", escape(t))),
                Block::Pre(t) => h.push_str(&format!("<pre>{}</pre>\n", escape(t))),
                Block::Html(t) => {
                    h.push_str(t);
                    h.push('\n');
                }
                Block::Table {
                    caption,
                    header,
                    rows,
                } => {
                    h.push_str("<table>\n");
                    if let Some(c) = caption {
                        h.push_str(&format!("<caption>{}</caption>\n", escape(c)));
                    }
                    h.push_str("<thead><tr>");
                    for c in header {
                        h.push_str(&format!("<th>{}</th>", escape(c)));
                    }
                    h.push_str("</tr></thead>\n<tbody>\n");
                    for r in rows {
                        h.push_str("<tr>");
                        for c in r {
                            let num = c.trim().parse::<f64>().is_ok();
                            h.push_str(&format!(
                                "<td{}>{}</td>",
                                if num { " class=\"num\"" } else { "" },
                                escape(c)
                            ));
                        }
                        h.push_str("</tr>\n");
                    }
                    h.push_str("</tbody>\n</table>\n");
                }
                Block::Figure { caption, body } => {
                    h.push_str("<figure>\n");
                    h.push_str(body);
                    if !caption.is_empty() {
                        h.push_str(&format!("\n<figcaption>{}</figcaption>", escape(caption)));
                    }
                    h.push_str("\n</figure>\n");
                }
            }
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    /// Write the report to `path` atomically (temporary file + rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), self.to_html().as_bytes())
    }
}
