//! The self-contained HTML page: inline CSS and inline SVG, no script, no
//! network. Every string that comes from the data goes through [`esc`] (or
//! [`attr`] inside an attribute).

use std::fmt::Write;

use super::chart::Figure;

/// Text content, escaped.
pub fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// A double-quoted attribute value, escaped.
pub fn attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// `s` cut to `max` characters with an ellipsis (for messages).
pub fn clip(s: &str, max: usize) -> String {
    super::chart::shorten(s, max)
}

/// Quote a word for a POSIX shell if it needs it.
pub fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A command line, quoted for a shell.
pub fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A table: header cells and rows of already-escaped HTML cells.
pub struct Table {
    pub class: &'static str,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns from this one on are numbers (right-aligned).
    pub numeric_from: usize,
}

impl Table {
    fn class_of(&self, column: usize) -> &'static str {
        if column >= self.numeric_from {
            " class=\"num\""
        } else {
            ""
        }
    }

    pub fn html(&self) -> String {
        let mut s = format!("<table class=\"{}\">\n<thead><tr>", self.class);
        for (i, h) in self.header.iter().enumerate() {
            let _ = write!(s, "<th{}>{h}</th>", self.class_of(i));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for (i, c) in r.iter().enumerate() {
                let _ = write!(s, "<td{}>{c}</td>", self.class_of(i));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table>\n");
        s
    }
}

/// Everything the page shows; HTML fragments already escaped.
pub struct Page {
    pub title: String,
    /// "Run report" or "Sweep report".
    pub kind: String,
    pub description: String,
    /// The first screen: headline tables and facts (escaped HTML).
    pub glance: String,
    pub figures: Vec<(Figure, String)>,
    pub notes: Vec<String>,
    /// Extra sections at the end (escaped HTML).
    pub appendix: String,
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1160px; padding: 0 24px 48px; color: #1a1a1a; line-height: 1.45; }
header { border-bottom: 3px solid #0072b2; padding: 18px 0 10px; margin-bottom: 12px; }
h1 { margin: 0 0 4px; font-size: 28px; }
.kind { color: #555; margin: 0; font-size: 14px; text-transform: uppercase; letter-spacing: .06em; }
.description { max-width: 900px; margin: 8px 0 0; }
h2 { font-size: 20px; margin: 26px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 17px; margin: 0 0 6px; }
.glance > div { margin-bottom: 14px; overflow-x: auto; }
.keyfacts { margin: 4px 0; font-size: 15px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
table { border-collapse: collapse; font-size: 14px; margin: 4px 0 8px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e2e2e2; text-align: left; vertical-align: top; }
th { background: #f3f6f9; }
table.headline td.num, table.headline th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.facts th { width: 170px; background: none; font-weight: 600; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
nav ol { columns: 2; font-size: 14px; }
figure.chart { margin: 26px 0; padding: 12px 0 0; border-top: 1px solid #eee; }
figure.chart svg { width: 100%; height: auto; max-width: 1100px; display: block; }
figcaption { font-size: 14px; color: #333; max-width: 1000px; margin-top: 6px; }
.note { background: #fff8e1; border-left: 4px solid #e69f00; padding: 6px 10px; }
.small { font-size: 13px; color: #555; }
"#;

impl Page {
    pub fn html(&self) -> String {
        let mut s = String::with_capacity(64 * 1024);
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{} · techdiff {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            esc(&self.title),
            esc(&self.kind.to_lowercase())
        );
        let _ = write!(
            s,
            "<header>\n<p class=\"kind\">techdiff · {}</p>\n<h1>{}</h1>\n",
            esc(&self.kind),
            esc(&self.title)
        );
        if !self.description.is_empty() {
            let _ = writeln!(s, "<p class=\"description\">{}</p>", esc(&self.description));
        }
        s.push_str("</header>\n<section id=\"glance\">\n");
        s.push_str(&self.glance);
        s.push_str("</section>\n");
        for n in &self.notes {
            let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(n));
        }
        if !self.figures.is_empty() {
            s.push_str("<nav>\n<h2>Charts</h2>\n<ol>\n");
            for (f, _) in &self.figures {
                let _ = writeln!(
                    s,
                    "<li><a href=\"#{}\">{}</a></li>",
                    attr(&f.id),
                    esc(&f.title)
                );
            }
            s.push_str("</ol>\n</nav>\n<section id=\"charts\">\n");
            for (f, svg) in &self.figures {
                let _ = write!(
                    s,
                    "<figure class=\"chart\" id=\"{id}\" data-chart=\"{id}\">\n<h3 class=\"sr-only\">{title}</h3>\n{svg}\n\
                     <figcaption>{caption} <span class=\"small\">(<a href=\"plots/{id}.svg\">plots/{id}.svg</a>)</span></figcaption>\n</figure>\n",
                    id = attr(&f.id),
                    title = esc(&f.title),
                    svg = strip_xml_declaration(svg),
                    caption = esc(&f.caption),
                );
            }
            s.push_str("</section>\n");
        }
        s.push_str(&self.appendix);
        s.push_str("</body>\n</html>\n");
        s
    }
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_shell_quoting() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; \"c\"");
        assert_eq!(attr("x\"y<"), "x&quot;y&lt;");
        assert_eq!(shell_word("scenarios/a.toml"), "scenarios/a.toml");
        assert_eq!(
            shell_word("policy.export_control[core].licence_rate=0.3"),
            "'policy.export_control[core].licence_rate=0.3'"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
