//! Figures as plain data, and their drawing with plotters into SVG.
//!
//! A [`Figure`] holds everything a chart shows (numbers, labels, colours by
//! palette index) and nothing about files; [`Figure::svg`] draws it. The
//! builders in `run.rs` and `sweep.rs` make figures from the output files,
//! so the numbers a chart shows can be tested against the files without
//! parsing SVG.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The Okabe-Ito palette (colour-blind safe), ordered for white
/// backgrounds: blue, orange, bluish green, vermillion, reddish purple,
/// sky blue, black, yellow.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// Palette colour `i` (cycling).
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1100;
const LEGEND_WIDTH: u32 = 270;

/// A plotted value with its 95% interval, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// A line; intervals as a shaded band.
    Line(Dash),
    /// Markers joined by a line; intervals as whiskers.
    LineMarkers,
    /// Markers only; intervals as whiskers.
    Markers,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// Palette index.
    pub colour: usize,
    pub marks: Marks,
    /// In x order. A line breaks where x steps over a missing value only if
    /// the builder leaves the point out (lines join consecutive points).
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Calendar years (integer ticks).
    Years,
    /// A numeric parameter.
    Numeric,
    /// Named categories at x = 0, 1, ...
    Categories(Vec<String>),
}

/// Lines or points against x, with intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct XyPanel {
    pub title: String,
    pub x_label: String,
    pub x_axis: XAxis,
    pub y_label: String,
    /// Stretch the y axis to include 0 (a reference line is drawn there).
    pub include_zero: bool,
    /// The y axis spans at most this range (a share's [0, 1]): intervals
    /// reaching beyond it are drawn cut at its edge.
    pub y_bounds: Option<(f64, f64)>,
    /// The y axis spans at least this range (panels that share a scale).
    pub y_span: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

/// One bar with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    pub label: String,
    pub colour: usize,
    /// One per category (None: no bar).
    pub bars: Vec<Option<Bar>>,
}

/// Horizontal bars, one row per category (first category on top), one bar
/// per series in each row, with interval whiskers.
#[derive(Debug, Clone, PartialEq)]
pub struct BarPanel {
    pub title: String,
    pub value_label: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
}

/// A grid of cells coloured by value (viridis), with the value printed.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatPanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_categories: Vec<String>,
    pub y_categories: Vec<String>,
    /// `cells[row][column]`: row `i` is `y_categories[i]` (drawn bottom up).
    pub cells: Vec<Vec<Option<f64>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapPoint {
    pub code: String,
    pub lat: f64,
    pub lon: f64,
    pub value: f64,
}

/// Countries as points at (longitude, latitude), coloured by value
/// (viridis); the `labelled` highest values carry their code.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPanel {
    pub title: String,
    pub countries: Vec<MapPoint>,
    pub labelled: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Panel {
    Xy(XyPanel),
    Bars(BarPanel),
    Heat(HeatPanel),
    Map(MapPanel),
}

/// What a legend entry shows next to its label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key {
    Line(usize, Dash),
    /// A grey line of the given dash (for "policy" / "counterfactual").
    Style(Dash),
    Band,
    Whisker,
    Marker(usize),
    Swatch(usize),
    /// A viridis colour bar from `min` to `max` (heat maps, maps).
    ColourBar {
        min: f64,
        max: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub key: Key,
}

/// One chart: one SVG file and one figure of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem under `plots/` and HTML id: `[a-z0-9_-]+`.
    pub id: String,
    pub title: String,
    /// What the chart shows, in a sentence or two (HTML caption).
    pub caption: String,
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
    /// Height of one row of panels, pixels.
    pub row_height: u32,
    pub legend: Vec<LegendEntry>,
}

/// Nice tick positions covering `[lo, hi]` with about `target` ticks
/// (steps of 1, 2, 2.5 or 5 times a power of ten), and the step.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).abs().max(f64::EPSILON * lo.abs().max(1.0));
    let raw = span / target.max(1) as f64;
    let mag = libm::pow(10.0, libm::log10(raw).floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// A tick label with as many decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let mut decimals = 0;
    while decimals < 12 {
        let scaled = step * libm::pow(10.0, f64::from(decimals));
        if (scaled - scaled.round()).abs() <= 1e-6 * scaled.abs() {
            break;
        }
        decimals += 1;
    }
    let s = format!("{:.*}", decimals as usize, v);
    // No "-0".
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A value for a cell or a table: 3 significant digits, no exponent for
/// ordinary magnitudes.
pub fn short_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = libm::log10(v.abs()).floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    format!("{:.*}", decimals, v)
}

/// `[lo, hi]` widened by 5% each side (and made non-empty).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-12) {
        // One value: a zero (no retaliation at all) gets the unit interval.
        if lo == 0.0 {
            return (-0.05, 1.05);
        }
        let d = lo.abs() * 0.1;
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * 0.05;
    (lo - d, hi + d)
}

/// A 1-d axis: range, tick positions and their labels.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl Axis {
    fn numeric(lo: f64, hi: f64, target: usize) -> Axis {
        let (lo, hi) = padded(lo, hi);
        let (ticks, step) = nice_ticks(lo, hi, target);
        let labels = ticks.iter().map(|t| tick_label(*t, step)).collect();
        Axis {
            lo,
            hi,
            ticks,
            labels,
        }
    }

    /// Year ticks, at most `max_ticks` of them.
    fn years(lo: f64, hi: f64, max_ticks: usize) -> Axis {
        let span = hi - lo;
        let most = max_ticks.clamp(2, 8) as f64;
        let step = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
            .into_iter()
            .find(|s| span / s <= most)
            .unwrap_or(1000.0);
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        let ticks: Vec<f64> = (first..=last).map(|k| k as f64 * step).collect();
        let labels = ticks.iter().map(|t| format!("{t:.0}")).collect();
        let pad = (span * 0.02).max(0.5);
        Axis {
            lo: lo - pad,
            hi: hi + pad,
            ticks,
            labels,
        }
    }

    fn categories(names: &[String]) -> Axis {
        Axis {
            lo: -0.5,
            hi: names.len() as f64 - 0.5,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            labels: names.iter().map(|n| shorten(n, 42)).collect(),
        }
    }

    fn coord(&self) -> Ticked {
        Ticked {
            lo: self.lo,
            hi: self.hi,
            ticks: self.ticks.clone(),
        }
    }

    /// The label of the tick at `v`.
    fn label(&self, v: f64) -> String {
        self.ticks
            .iter()
            .position(|t| (t - v).abs() <= 1e-9 * (1.0 + t.abs()))
            .map(|i| self.labels[i].clone())
            .unwrap_or_default()
    }
}

/// A linear f64 coordinate whose ticks (and grid lines) are exactly the
/// given values: plotters' own f64 axis picks its ticks itself.
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span == 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let t = (v - self.lo) / span;
        let px = limit.0 as f64 + (limit.1 - limit.0) as f64 * t;
        // Far outside values (a clipped whisker) stay drawable.
        px.clamp(-1e6, 1e6).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Only bold grid lines: the light ones would be plotters' own.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// `s` cut to `max` characters with an ellipsis.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn viridis(v: f64, min: f64, max: f64) -> RGBColor {
    let t = if max > min {
        ((v - min) / (max - min)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    ViridisRGB::get_color(t)
}

/// Black or white, whichever reads better on `c`.
fn ink_on(c: RGBColor) -> RGBColor {
    let l = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if l > 140.0 { BLACK } else { WHITE }
}

impl Figure {
    /// Overall size in pixels.
    pub fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns.max(1)) as u32;
        (WIDTH, 50 + rows * self.row_height)
    }

    /// The figure as a standalone SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let (title_area, body) = root.split_vertically(46);
            title_area
                .draw(&Text::new(
                    self.title.clone(),
                    (12, 14),
                    (FONT, 23).into_font().style(FontStyle::Bold),
                ))
                .map_err(err)?;
            let (plots, legend) = if self.legend.is_empty() {
                let w = body.dim_in_pixel().0;
                body.split_horizontally(w)
            } else {
                body.split_horizontally(WIDTH - LEGEND_WIDTH)
            };
            let cols = self.columns.max(1);
            let rows = self.panels.len().div_ceil(cols);
            let cells = plots.split_evenly((rows, cols));
            for (panel, area) in self.panels.iter().zip(&cells) {
                match panel {
                    Panel::Xy(p) => draw_xy(area, p)?,
                    Panel::Bars(p) => draw_bars(area, p)?,
                    Panel::Heat(p) => draw_heat(area, p)?,
                    Panel::Map(p) => draw_map(area, p)?,
                }
            }
            draw_legend(&legend, &self.legend)?;
            root.present().map_err(err)?;
        }
        Ok(out)
    }
}

// Plotters draws text at 1/1.24 of the size asked for: these give about
// 14.5, 12 and 13 px.
fn caption_style() -> TextStyle<'static> {
    (FONT, 18).into_font().into()
}

fn label_style() -> TextStyle<'static> {
    (FONT, 15).into_font().into()
}

fn desc_style() -> TextStyle<'static> {
    (FONT, 16).into_font().into()
}

/// The chart a panel draws on.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;

/// A panel's chart: its caption, margins and label areas (in pixels) over
/// the axes `x` and `y`.
fn panel_chart<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    margin_right: u32,
    x_label_area: u32,
    y_label_area: u32,
    x: Ticked,
    y: Ticked,
) -> Result<Chart<'a, 'b>, String> {
    ChartBuilder::on(area)
        .caption(title, caption_style())
        .margin(10)
        .margin_right(margin_right)
        .x_label_area_size(x_label_area)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// A chart's axes: their descriptions (where given), tick labels, and grid
/// lines in `grid` (no grid where `None`).
fn draw_mesh(
    chart: &mut Chart,
    x_desc: Option<&str>,
    y_desc: Option<&str>,
    xfmt: &dyn Fn(&f64) -> String,
    yfmt: &dyn Fn(&f64) -> String,
    grid: Option<RGBColor>,
) -> DrawResult {
    let mut mesh = chart.configure_mesh();
    if let Some(d) = x_desc {
        mesh.x_desc(d);
    }
    if let Some(d) = y_desc {
        mesh.y_desc(d);
    }
    match grid {
        Some(c) => mesh.bold_line_style(c),
        None => mesh.disable_mesh(),
    };
    mesh.x_label_formatter(xfmt)
        .y_label_formatter(yfmt)
        .label_style(label_style())
        .axis_desc_style(desc_style())
        .draw()
        .map_err(err)
}

/// The length in characters of the longest of some category labels
/// (4 where there are none, 42 at the most).
fn longest_label(names: &[String]) -> u32 {
    names
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4)
        .min(42) as u32
}

/// Lines, bands, markers and whiskers.
fn draw_xy(area: &Area, p: &XyPanel) -> DrawResult {
    let pts = p.series.iter().flat_map(|s| s.points.iter());
    let (mut xlo, mut xhi, mut ylo, mut yhi) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for pt in pts {
        xlo = xlo.min(pt.x);
        xhi = xhi.max(pt.x);
        let (lo, hi) = pt.ci.unwrap_or((pt.y, pt.y));
        ylo = ylo.min(pt.y).min(lo);
        yhi = yhi.max(pt.y).max(hi);
    }
    if !ylo.is_finite() {
        (xlo, xhi, ylo, yhi) = (0.0, 1.0, 0.0, 1.0);
    }
    if p.include_zero {
        ylo = ylo.min(0.0);
        yhi = yhi.max(0.0);
    }
    if let Some((lo, hi)) = p.y_span {
        ylo = ylo.min(lo);
        yhi = yhi.max(hi);
    }
    let clip = |y: f64| match p.y_bounds {
        Some((lo, hi)) => y.clamp(lo, hi),
        None => y,
    };
    if let Some((lo, hi)) = p.y_bounds {
        ylo = ylo.max(lo);
        yhi = yhi.min(hi);
    }
    let width = area.dim_in_pixel().0;
    let x_axis = match &p.x_axis {
        // A year label needs about 45 px.
        XAxis::Years => Axis::years(xlo, xhi, (width.saturating_sub(110) / 45) as usize),
        XAxis::Numeric => Axis::numeric(xlo, xhi, if width < 500 { 5 } else { 7 }),
        XAxis::Categories(names) => {
            // Each label gets its share of the width (about 6.5 px a character).
            let room = (width.saturating_sub(110) as usize / names.len().max(1)) * 10 / 65;
            let mut axis = Axis::categories(names);
            axis.labels = names
                .iter()
                .map(|n| shorten(n, room.clamp(4, 42)))
                .collect();
            axis
        }
    };
    let y_axis = Axis::numeric(ylo, yhi, 6);
    let mut chart = panel_chart(area, &p.title, 18, 48, 74, x_axis.coord(), y_axis.coord())?;
    draw_mesh(
        &mut chart,
        Some(&p.x_label),
        Some(&p.y_label),
        &|v| x_axis.label(*v),
        &|v| y_axis.label(*v),
        Some(RGBColor(220, 220, 220)),
    )?;
    if p.include_zero {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_axis.lo, 0.0), (x_axis.hi, 0.0)],
                RGBColor(90, 90, 90).stroke_width(1),
            )))
            .map_err(err)?;
    }
    let n_series = p.series.len();
    let x_span = x_axis.hi - x_axis.lo;
    // Dodge markers of several series at the same x (categories, grids).
    let dodge = |s: usize| -> f64 {
        match p.series[s].marks {
            Marks::Line(_) => 0.0,
            _ if n_series <= 1 => 0.0,
            _ => {
                let unit = match p.x_axis {
                    XAxis::Categories(_) => 0.5 / n_series as f64,
                    _ => x_span * 0.008,
                };
                (s as f64 - (n_series as f64 - 1.0) / 2.0) * unit
            }
        }
    };
    // Bands first, under every line.
    for s in &p.series {
        if let Marks::Line(_) = s.marks {
            let c = colour(s.colour);
            for run in ci_runs(&s.points) {
                let ci = |pt: &Point| pt.ci.map_or((pt.y, pt.y), |(l, h)| (clip(l), clip(h)));
                let mut poly: Vec<(f64, f64)> = run.iter().map(|pt| (pt.x, ci(pt).0)).collect();
                poly.extend(run.iter().rev().map(|pt| (pt.x, ci(pt).1)));
                chart
                    .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled())))
                    .map_err(err)?;
            }
        }
    }
    let cap = match p.x_axis {
        XAxis::Categories(_) => 0.04,
        _ => x_span * 0.006,
    };
    for (si, s) in p.series.iter().enumerate() {
        let c = colour(s.colour);
        let off = dodge(si);
        let xy: Vec<(f64, f64)> = s.points.iter().map(|pt| (pt.x + off, pt.y)).collect();
        match s.marks {
            Marks::Line(Dash::Solid) => {
                chart
                    .draw_series(LineSeries::new(xy, c.stroke_width(2)))
                    .map_err(err)?;
            }
            Marks::Line(Dash::Dashed) => {
                chart
                    .draw_series(DashedLineSeries::new(xy, 7, 5, c.stroke_width(2)))
                    .map_err(err)?;
            }
            Marks::LineMarkers | Marks::Markers => {
                if s.marks == Marks::LineMarkers && xy.len() > 1 {
                    chart
                        .draw_series(LineSeries::new(xy.clone(), c.mix(0.7).stroke_width(1)))
                        .map_err(err)?;
                }
                for pt in &s.points {
                    if let Some((lo, hi)) = pt.ci {
                        let (lo, hi) = (clip(lo), clip(hi));
                        let x = pt.x + off;
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(x, lo), (x, hi)],
                                c.stroke_width(1),
                            )))
                            .map_err(err)?;
                        for y in [lo, hi] {
                            chart
                                .draw_series(std::iter::once(PathElement::new(
                                    vec![(x - cap, y), (x + cap, y)],
                                    c.stroke_width(1),
                                )))
                                .map_err(err)?;
                        }
                    }
                }
                let radius = if s.marks == Marks::Markers && s.points.len() > 40 {
                    3
                } else {
                    4
                };
                chart
                    .draw_series(xy.iter().map(|&p| Circle::new(p, radius, c.filled())))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// Maximal runs of consecutive points that all have an interval.
fn ci_runs(points: &[Point]) -> Vec<&[Point]> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, p) in points.iter().enumerate() {
        match (p.ci.is_some(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(&points[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(&points[s..]);
    }
    runs.into_iter().filter(|r| r.len() >= 2).collect()
}

fn draw_bars(area: &Area, p: &BarPanel) -> DrawResult {
    let n = p.categories.len();
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for s in &p.series {
        for b in s.bars.iter().flatten() {
            let (l, h) = b.ci.unwrap_or((b.value, b.value));
            lo = lo.min(b.value).min(l);
            hi = hi.max(b.value).max(h);
        }
    }
    let x_axis = Axis::numeric(lo, hi, 7);
    // Category i sits at y = n - 1 - i so the first is on top.
    let names: Vec<String> = p.categories.iter().rev().cloned().collect();
    let y_axis = Axis::categories(&names);
    let y_labels = (longest_label(&p.categories) * 7 + 16).max(60);
    let mut chart = panel_chart(
        area,
        &p.title,
        24,
        48,
        y_labels,
        x_axis.coord(),
        y_axis.coord(),
    )?;
    draw_mesh(
        &mut chart,
        Some(&p.value_label),
        None,
        &|v| x_axis.label(*v),
        &|v| y_axis.label(*v),
        Some(RGBColor(225, 225, 225)),
    )?;
    let k = p.series.len().max(1) as f64;
    let band = 0.8 / k;
    for (si, s) in p.series.iter().enumerate() {
        let c = colour(s.colour);
        for (i, bar) in s.bars.iter().enumerate() {
            let Some(b) = bar else { continue };
            let centre = (n - 1 - i) as f64 + 0.4 - band * (si as f64 + 0.5);
            let (y0, y1) = (centre - band * 0.45, centre + band * 0.45);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0), (b.value, y1)],
                    c.mix(0.85).filled(),
                )))
                .map_err(err)?;
            if let Some((l, h)) = b.ci {
                let ink = BLACK.stroke_width(2);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(l, centre), (h, centre)],
                        ink,
                    )))
                    .map_err(err)?;
                for x in [l, h] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x, centre - band * 0.3), (x, centre + band * 0.3)],
                            ink,
                        )))
                        .map_err(err)?;
                }
            }
        }
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, y_axis.lo), (0.0, y_axis.hi)],
            RGBColor(60, 60, 60).stroke_width(1),
        )))
        .map_err(err)?;
    Ok(())
}

/// The finite range of some values, or (0, 1).
pub fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

fn draw_heat(area: &Area, p: &HeatPanel) -> DrawResult {
    let x_axis = Axis::categories(&p.x_categories);
    let y_axis = Axis::categories(&p.y_categories);
    let (min, max) = value_range(p.cells.iter().flatten().flatten().copied());
    let y_labels = (longest_label(&p.y_categories) * 7 + 36).max(70);
    let mut chart = panel_chart(
        area,
        &p.title,
        24,
        50,
        y_labels,
        x_axis.coord(),
        y_axis.coord(),
    )?;
    draw_mesh(
        &mut chart,
        Some(&p.x_label),
        Some(&p.y_label),
        &|v| x_axis.label(*v),
        &|v| y_axis.label(*v),
        None,
    )?;
    let cells = p.x_categories.len() * p.y_categories.len();
    for (row, values) in p.cells.iter().enumerate() {
        for (col, v) in values.iter().enumerate() {
            let (x, y) = (col as f64, row as f64);
            let rect = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
            match v {
                Some(v) => {
                    let c = viridis(*v, min, max);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(rect, c.filled())))
                        .map_err(err)?;
                    if cells <= 150 {
                        let ink = ink_on(c);
                        let style = TextStyle::from((FONT, 15).into_font())
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center));
                        chart
                            .draw_series(std::iter::once(Text::new(
                                short_number(*v),
                                (x, y),
                                style,
                            )))
                            .map_err(err)?;
                    }
                }
                None => {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            rect,
                            RGBColor(235, 235, 235).filled(),
                        )))
                        .map_err(err)?;
                }
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(rect, WHITE.stroke_width(1))))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn draw_map(area: &Area, p: &MapPanel) -> DrawResult {
    let (min, max) = value_range(p.countries.iter().map(|c| c.value));
    let lat = value_range(p.countries.iter().map(|c| c.lat));
    let lat_lo = (lat.0 - 8.0).clamp(-90.0, -40.0);
    let lat_hi = (lat.1 + 8.0).clamp(60.0, 90.0);
    let ticks = |lo: f64, hi: f64| -> Vec<f64> {
        let first = (lo / 30.0).ceil() as i64;
        let last = (hi / 30.0).floor() as i64;
        (first..=last).map(|k| k as f64 * 30.0).collect()
    };
    let xs = ticks(-180.0, 180.0);
    let ys = ticks(lat_lo, lat_hi);
    let deg = |v: &f64, pos: &str, neg: &str| {
        if *v == 0.0 {
            "0°".to_string()
        } else if *v > 0.0 {
            format!("{v:.0}°{pos}")
        } else {
            format!("{:.0}°{neg}", -v)
        }
    };
    let mut chart = panel_chart(
        area,
        &p.title,
        20,
        44,
        64,
        Ticked {
            lo: -180.0,
            hi: 180.0,
            ticks: xs,
        },
        Ticked {
            lo: lat_lo,
            hi: lat_hi,
            ticks: ys,
        },
    )?;
    // Land under everything else: outer rings, then the holes (the
    // Caspian) in the background colour, cut to the latitudes shown.
    for ring in land() {
        let points = clip_latitudes(&ring.points, lat_lo, lat_hi);
        if points.len() >= 3 {
            let fill = if ring.hole { WHITE } else { LAND };
            chart
                .draw_series(std::iter::once(Polygon::new(points, fill.filled())))
                .map_err(err)?;
        }
    }
    draw_mesh(
        &mut chart,
        Some("longitude (capital city)"),
        Some("latitude (capital city)"),
        &|v| deg(v, "E", "W"),
        &|v| deg(v, "N", "S"),
        Some(RGBColor(225, 225, 225)),
    )?;
    // Lowest values first so the highest are drawn on top.
    let mut order: Vec<&MapPoint> = p.countries.iter().collect();
    order.sort_by(|a, b| a.value.total_cmp(&b.value));
    for c in &order {
        let fill = viridis(c.value, min, max);
        chart
            .draw_series(std::iter::once(Circle::new(
                (c.lon, c.lat),
                6,
                fill.filled(),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (c.lon, c.lat),
                6,
                RGBColor(40, 40, 40).stroke_width(1),
            )))
            .map_err(err)?;
    }
    // Labels, highest first, each right of its point unless that would
    // overlap a label already placed, then left, above or below (in
    // pixels, from the chart's own mapping of degrees).
    let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let (x0, y0) = chart.backend_coord(&(0.0, 0.0));
    let (x1, y1) = chart.backend_coord(&(1.0, 1.0));
    let (per_lon, per_lat) = (f64::from(x1 - x0), f64::from(y1 - y0));
    let mut placed: Vec<LabelBox> = Vec::new();
    for c in order.iter().rev().take(p.labelled) {
        let (px, py) = chart.backend_coord(&(c.lon, c.lat));
        let (w, h) = (label_width(&c.code), 14);
        let at = |x: i32, y: i32| LabelBox { x, y, w, h };
        let candidates = [
            at(px + 10, py - h / 2),
            at(px - 10 - w, py - h / 2),
            at(px - w / 2, py - 9 - h),
            at(px - w / 2, py + 9),
        ];
        let chosen = candidates
            .iter()
            .find(|b| placed.iter().all(|q| !b.overlaps(q)))
            .unwrap_or(&candidates[0])
            .clone();
        let lon = c.lon + f64::from(chosen.x - px) / per_lon;
        let lat = c.lat + f64::from(chosen.y + h / 2 - py) / per_lat;
        chart
            .draw_series(std::iter::once(Text::new(
                c.code.clone(),
                (lon, lat),
                style.clone(),
            )))
            .map_err(err)?;
        placed.push(chosen);
    }
    Ok(())
}

/// A map label's box in pixels: top-left corner, width and height.
#[derive(Debug, Clone, PartialEq)]
struct LabelBox {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
}

impl LabelBox {
    fn overlaps(&self, o: &LabelBox) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// A country code's width in pixels at 14 px sans-serif (capitals are
/// about 0.65 em wide), with a pixel to spare.
fn label_width(code: &str) -> i32 {
    code.chars().count() as i32 * 10 + 1
}

/// The land's fill on the world map.
const LAND: RGBColor = RGBColor(228, 228, 220);

/// One ring of a land polygon: its (lon, lat) points, closing on the
/// first, and whether it is a hole in the ring before it.
struct Ring {
    hole: bool,
    points: Vec<(f64, f64)>,
}

/// Natural Earth's 1:110m land outlines (`land_110m.txt`, made by
/// `build_land.py`, which gives its sources and licences).
fn land() -> &'static [Ring] {
    static LAND_RINGS: std::sync::LazyLock<Vec<Ring>> =
        std::sync::LazyLock::new(|| parse_land(include_str!("land_110m.txt")));
    &LAND_RINGS
}

/// Read `land_110m.txt`: `#` comment lines, then per line `o` or `h` and
/// `lon,lat` pairs. The file is part of the program (a test reads it
/// whole), so a malformed line is a build defect, not an input error.
fn parse_land(text: &str) -> Vec<Ring> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut words = l.split(' ');
            let hole = match words.next() {
                Some("o") => false,
                Some("h") => true,
                other => panic!("land_110m.txt: a ring starts with {other:?}, not o or h"),
            };
            let points = words
                .map(|w| {
                    let (x, y) = w.split_once(',').expect("land_110m.txt: lon,lat");
                    (
                        x.parse().expect("land_110m.txt: a longitude"),
                        y.parse().expect("land_110m.txt: a latitude"),
                    )
                })
                .collect();
            Ring { hole, points }
        })
        .collect()
}

/// A polygon cut to the band `lo <= lat <= hi` (Sutherland-Hodgman
/// against its two edges), so that no fill spills over the axes.
fn clip_latitudes(ring: &[(f64, f64)], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let cut = |ring: Vec<(f64, f64)>, bound: f64, keep_above: bool| -> Vec<(f64, f64)> {
        let inside = |p: &(f64, f64)| {
            if keep_above {
                p.1 >= bound
            } else {
                p.1 <= bound
            }
        };
        let mut out = Vec::with_capacity(ring.len() + 4);
        for (k, q) in ring.iter().enumerate() {
            let p = &ring[(k + ring.len() - 1) % ring.len()];
            let crossing = || {
                let t = (bound - p.1) / (q.1 - p.1);
                (p.0 + t * (q.0 - p.0), bound)
            };
            match (inside(p), inside(q)) {
                (true, true) => out.push(*q),
                (true, false) => out.push(crossing()),
                (false, true) => {
                    out.push(crossing());
                    out.push(*q);
                }
                (false, false) => {}
            }
        }
        out
    };
    cut(cut(ring.to_vec(), lo, true), hi, false)
}

fn draw_legend(area: &Area, entries: &[LegendEntry]) -> DrawResult {
    if entries.is_empty() {
        return Ok(());
    }
    let text = |s: &str, x: i32, y: i32| {
        Text::new(
            s.to_string(),
            (x, y),
            TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    };
    let x0 = 14;
    let mut y = 40;
    for e in entries {
        match e.key {
            Key::Line(c, dash) => {
                let col = colour(c);
                let path = vec![(x0, y), (x0 + 34, y)];
                match dash {
                    Dash::Solid => area
                        .draw(&PathElement::new(path, col.stroke_width(3)))
                        .map_err(err)?,
                    Dash::Dashed => area
                        .draw(&DashedPathElement::new(path, 7, 5, col.stroke_width(3)))
                        .map_err(err)?,
                }
                area.draw(&text(&e.label, x0 + 44, y)).map_err(err)?;
                y += 24;
            }
            Key::Marker(c) => {
                area.draw(&Circle::new((x0 + 17, y), 5, colour(c).filled()))
                    .map_err(err)?;
                area.draw(&text(&e.label, x0 + 44, y)).map_err(err)?;
                y += 24;
            }
            Key::Style(dash) => {
                let grey = RGBColor(80, 80, 80);
                match dash {
                    Dash::Solid => area
                        .draw(&PathElement::new(
                            vec![(x0, y), (x0 + 34, y)],
                            grey.stroke_width(2),
                        ))
                        .map_err(err)?,
                    Dash::Dashed => area
                        .draw(&DashedPathElement::new(
                            vec![(x0, y), (x0 + 34, y)],
                            7,
                            5,
                            grey.stroke_width(2),
                        ))
                        .map_err(err)?,
                }
                area.draw(&text(&e.label, x0 + 44, y)).map_err(err)?;
                y += 24;
            }
            Key::Band => {
                area.draw(&Rectangle::new(
                    [(x0, y - 7), (x0 + 34, y + 7)],
                    RGBColor(80, 80, 80).mix(0.25).filled(),
                ))
                .map_err(err)?;
                area.draw(&text(&e.label, x0 + 44, y)).map_err(err)?;
                y += 24;
            }
            Key::Whisker => {
                let ink = BLACK.stroke_width(2);
                area.draw(&PathElement::new(vec![(x0 + 2, y), (x0 + 32, y)], ink))
                    .map_err(err)?;
                for x in [x0 + 2, x0 + 32] {
                    area.draw(&PathElement::new(vec![(x, y - 5), (x, y + 5)], ink))
                        .map_err(err)?;
                }
                area.draw(&text(&e.label, x0 + 44, y)).map_err(err)?;
                y += 24;
            }
            Key::Swatch(c) => {
                area.draw(&Rectangle::new(
                    [(x0, y - 7), (x0 + 34, y + 7)],
                    colour(c).mix(0.85).filled(),
                ))
                .map_err(err)?;
                area.draw(&text(&e.label, x0 + 44, y)).map_err(err)?;
                y += 24;
            }
            Key::ColourBar { min, max } => {
                area.draw(&text(&e.label, x0, y)).map_err(err)?;
                y += 16;
                let (h, w) = (220, 22);
                let steps = 64;
                for k in 0..steps {
                    let t0 = y + h - (k + 1) * h / steps;
                    let t1 = y + h - k * h / steps;
                    let v = min + (max - min) * (k as f64 + 0.5) / steps as f64;
                    area.draw(&Rectangle::new(
                        [(x0, t0), (x0 + w, t1)],
                        viridis(v, min, max).filled(),
                    ))
                    .map_err(err)?;
                }
                area.draw(&Rectangle::new(
                    [(x0, y), (x0 + w, y + h)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
                // One value only: a single label in the middle.
                let (ticks, labels): (Vec<f64>, Vec<String>) =
                    if max - min > f64::EPSILON * min.abs().max(max.abs()).max(1e-300) {
                        let (ticks, step) = nice_ticks(min, max, 5);
                        let labels = ticks.iter().map(|t| tick_label(*t, step)).collect();
                        (ticks, labels)
                    } else {
                        (vec![min], vec![short_number(min)])
                    };
                for (t, label) in ticks.into_iter().zip(labels) {
                    let frac = if max > min {
                        (t - min) / (max - min)
                    } else {
                        0.5
                    };
                    let ty = y + h - (frac.clamp(0.0, 1.0) * h as f64).round() as i32;
                    area.draw(&PathElement::new(
                        vec![(x0 + w, ty), (x0 + w + 5, ty)],
                        BLACK,
                    ))
                    .map_err(err)?;
                    area.draw(&text(&label, x0 + w + 9, ty)).map_err(err)?;
                }
                y += h + 28;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signed area (shoelace), in square degrees.
    fn area(ring: &[(f64, f64)]) -> f64 {
        let n = ring.len();
        (0..n)
            .map(|k| {
                let (a, b) = (ring[k], ring[(k + 1) % n]);
                a.0 * b.1 - b.0 * a.1
            })
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn the_land_file_reads_whole() {
        let land = land();
        // Natural Earth 1:110m land: 125 outer rings, one hole (the Caspian).
        assert_eq!(land.iter().filter(|r| !r.hole).count(), 125);
        let holes: Vec<_> = land.iter().filter(|r| r.hole).collect();
        assert_eq!(holes.len(), 1);
        let (lon, lat) = holes[0].points[0];
        assert!((46.0..55.0).contains(&lon) && (36.0..48.0).contains(&lat));
        let points: usize = land.iter().map(|r| r.points.len()).sum();
        assert_eq!(points, 4997);
        for ring in land {
            assert!(ring.points.len() >= 3);
            for &(x, y) in &ring.points {
                assert!((-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y));
            }
        }
        // Eurasia (the largest ring) is some 9,000 square degrees.
        let largest = land
            .iter()
            .map(|r| area(&r.points).abs())
            .fold(0.0, f64::max);
        assert!((7000.0..12000.0).contains(&largest), "{largest}");
    }

    /// Labels of nearby points do not overlap: the second is moved to
    /// another side of its point (Algiers and Tunis, two of the largest
    /// costs in managed.toml, once printed as `DZTUN`).
    #[test]
    fn map_labels_of_nearby_points_do_not_overlap() {
        let point = |code: &str, lat, lon, value| MapPoint {
            code: code.into(),
            lat,
            lon,
            value,
        };
        let fig = Figure {
            id: "map".into(),
            title: "t".into(),
            caption: String::new(),
            panels: vec![Panel::Map(MapPanel {
                title: String::new(),
                countries: vec![
                    point("DZA", 36.75, 3.06, 2.0),
                    point("TUN", 36.81, 10.18, 1.0),
                    point("FAR", -30.0, 100.0, 0.0),
                ],
                labelled: 3,
            })],
            columns: 1,
            row_height: 500,
            legend: vec![],
        };
        let svg = fig.svg().unwrap();
        // Each label's anchor: `<text x=".." y=".." ...>` CODE `</text>`,
        // on lines of their own.
        let anchor = |code: &str| -> (i32, i32) {
            let end = svg.find(&format!(">\n{code}\n</text>")).unwrap();
            let start = svg[..end].rfind("<text").unwrap();
            let attr = |name: &str| -> i32 {
                let tag = &svg[start..end];
                let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                let v = &tag[at..];
                v[..v.find('"').unwrap()].parse::<f64>().unwrap().round() as i32
            };
            (attr("x"), attr("y"))
        };
        let boxed = |code: &str| {
            let (x, y) = anchor(code);
            let w = label_width(code);
            LabelBox {
                x,
                y: y - 7,
                w,
                h: 14,
            }
        };
        let (dza, tun, far) = (boxed("DZA"), boxed("TUN"), boxed("FAR"));
        assert!(!dza.overlaps(&tun), "{dza:?} {tun:?}");
        // DZA (the larger cost) keeps the right of its point; TUN's right
        // would overlap it, so TUN goes to the left of its own point,
        // which here is left of DZA's label too.
        assert!(tun.x < dza.x, "{dza:?} {tun:?}");
        assert!(!far.overlaps(&dza) && !far.overlaps(&tun));
    }

    #[test]
    fn clipping_keeps_the_band_only() {
        let square = [(0.0, -10.0), (20.0, -10.0), (20.0, 10.0), (0.0, 10.0)];
        let cut = clip_latitudes(&square, 0.0, 5.0);
        assert!(
            cut.iter().all(|&(_, y)| (0.0..=5.0).contains(&y)),
            "{cut:?}"
        );
        assert!((area(&cut) - 100.0).abs() < 1e-9, "{cut:?}");
        // A triangle with one corner outside: the corner is cut off.
        let tri = [(0.0, 0.0), (10.0, 0.0), (5.0, 10.0)];
        let cut = clip_latitudes(&tri, -1.0, 5.0);
        assert!((area(&cut) - 37.5).abs() < 1e-9, "{cut:?}");
        // Wholly outside, wholly inside.
        assert!(clip_latitudes(&tri, 20.0, 30.0).is_empty());
        assert_eq!(clip_latitudes(&tri, -1.0, 11.0), tri.to_vec());
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, step) = nice_ticks(0.0, 1.0, 5);
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 6);
        assert!((t[5] - 1.0).abs() < 1e-12);
        let (t, step) = nice_ticks(-0.43, 1.53, 6);
        assert_eq!(step, 0.5);
        assert_eq!(t, [0.0, 0.5, 1.0, 1.5]);
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(2.5, 2.5), "2.5");
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(tick_label(2030.0, 5.0), "2030");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
    }

    #[test]
    fn short_numbers_and_labels() {
        assert_eq!(short_number(15.746), "15.7");
        assert_eq!(short_number(0.6453), "0.645");
        assert_eq!(short_number(2.9692), "2.97");
        assert_eq!(short_number(-0.001234), "-0.00123");
        assert_eq!(short_number(1.5e7), "1.50e7");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }

    #[test]
    fn degenerate_ranges_still_draw() {
        assert_eq!(padded(0.0, 0.0), (-0.05, 1.05));
        let (lo, hi) = padded(2.0, 2.0);
        assert!(lo < 2.0 && hi > 2.0);
        assert_eq!(padded(f64::NAN, 1.0), (0.0, 1.0));
        // An empty panel and a one-point series draw without error.
        let fig = Figure {
            id: "x".into(),
            title: "t".into(),
            caption: String::new(),
            panels: vec![
                Panel::Xy(XyPanel {
                    title: String::new(),
                    x_label: "x".into(),
                    x_axis: XAxis::Numeric,
                    y_label: "y".into(),
                    include_zero: true,
                    y_bounds: None,
                    y_span: None,
                    series: vec![],
                }),
                Panel::Xy(XyPanel {
                    title: String::new(),
                    x_label: "x".into(),
                    x_axis: XAxis::Years,
                    y_label: "y".into(),
                    include_zero: false,
                    y_bounds: Some((0.0, 1.0)),
                    y_span: None,
                    series: vec![Series {
                        label: "s".into(),
                        colour: 0,
                        marks: Marks::Line(Dash::Solid),
                        points: vec![Point {
                            x: 2020.0,
                            y: 0.5,
                            ci: Some((-3.0, 4.0)),
                        }],
                    }],
                }),
                Panel::Heat(HeatPanel {
                    title: String::new(),
                    x_label: "a".into(),
                    y_label: "b".into(),
                    x_categories: vec!["1".into()],
                    y_categories: vec!["2".into()],
                    cells: vec![vec![None]],
                }),
            ],
            columns: 3,
            row_height: 300,
            legend: vec![LegendEntry {
                label: "c".into(),
                key: Key::ColourBar { min: 1.0, max: 1.0 },
            }],
        };
        assert!(fig.svg().unwrap().starts_with("<svg"));
    }
}
