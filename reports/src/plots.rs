//! The three plots of a run (latency-raw, latency-quantiles, rate), each as PNG and SVG, drawn
//! with plotters and the bundled DejaVu Sans font (no system font libraries). Every plot draws
//! one labelled lane per fault kind above the chart (each window a bar naming its targets),
//! shades each fault interval over the full plot height in its kind's colour (striped, never
//! blended, where kinds overlap), and lists faults and series in a legend panel at the right.

use std::collections::BTreeMap;
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::history::{History, Outcome};
use crate::results::Fault;
use crate::stats::{self, QUANTILES};

/// Size of every plot image, in pixels (PNG) or user units (SVG).
pub const PLOT_WIDTH: u32 = 1280;
pub const PLOT_HEIGHT: u32 = 520;
/// Width of the legend panel at the right of each plot.
const LEGEND_WIDTH: u32 = 250;
const FONT: &str = "sans-serif";
/// Average advance of a 12 px DejaVu Sans character, for label placement.
const LABEL_CHAR_PX: f64 = 6.8;

static FONT_REGISTERED: Once = Once::new();

/// plotters' ab_glyph text needs fonts registered by family name before anything draws text.
fn register_font() {
    FONT_REGISTERED.call_once(|| {
        // The bytes are a fixed, valid TTF shipped in the dejavu crate; failure is a build defect.
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "invalid font")
            .expect("bundled DejaVu Sans must parse");
    });
}

/// An encoded plot in both formats.
pub struct PlotFiles {
    pub png: Vec<u8>,
    pub svg: String,
}

/// What a plot needs from the run.
pub struct PlotInput<'a> {
    pub history: &'a History,
    pub faults: &'a [Fault],
    pub bucket_ns: u64,
    /// When the counterexample's failing op was invoked: drawn as a red vertical line.
    pub violation_ns: Option<u64>,
}

impl PlotInput<'_> {
    fn end_s(&self) -> f64 {
        let end_ns = self
            .faults
            .iter()
            .map(|f| f.stop_ns.unwrap_or(f.start_ns))
            .chain(std::iter::once(self.history.end_time_ns))
            .max()
            .unwrap_or(0);
        // An empty run still gets a readable 1 s axis.
        if end_ns == 0 {
            1.0
        } else {
            (end_ns as f64 / 1e9).max(0.001)
        }
    }
}

#[derive(Clone, Copy)]
pub enum PlotKind {
    LatencyRaw,
    LatencyQuantiles,
    Rate,
}

impl PlotKind {
    pub const ALL: [PlotKind; 3] = [
        PlotKind::LatencyRaw,
        PlotKind::LatencyQuantiles,
        PlotKind::Rate,
    ];

    /// File stem, as in DESIGN.md §5.
    pub fn stem(self) -> &'static str {
        match self {
            PlotKind::LatencyRaw => "latency-raw",
            PlotKind::LatencyQuantiles => "latency-quantiles",
            PlotKind::Rate => "rate",
        }
    }
}

/// Renders one plot to PNG and SVG.
pub fn render(kind: PlotKind, input: &PlotInput) -> Result<PlotFiles, String> {
    register_font();
    let mut rgb = vec![255u8; (PLOT_WIDTH * PLOT_HEIGHT * 3) as usize];
    {
        let root =
            BitMapBackend::with_buffer(&mut rgb, (PLOT_WIDTH, PLOT_HEIGHT)).into_drawing_area();
        draw(kind, &root, input).map_err(|e| format!("drawing {} (png): {e}", kind.stem()))?;
        root.present()
            .map_err(|e| format!("drawing {} (png): {e}", kind.stem()))?;
    }
    let png = encode_png(&rgb, PLOT_WIDTH, PLOT_HEIGHT)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PLOT_WIDTH, PLOT_HEIGHT)).into_drawing_area();
        draw(kind, &root, input).map_err(|e| format!("drawing {} (svg): {e}", kind.stem()))?;
        root.present()
            .map_err(|e| format!("drawing {} (svg): {e}", kind.stem()))?;
    }
    Ok(PlotFiles { png, svg })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Plots are mostly flat colour: adaptive filtering and strong deflate make them 2-4x
        // smaller, which matters since index.html embeds them.
        encoder.set_compression(png::Compression::Best);
        encoder.set_filter(png::FilterType::Paeth);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header().map_err(|e| format!("png: {e}"))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| format!("png: {e}"))?;
    }
    Ok(out)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    kind: PlotKind,
    root: &DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_horizontally(PLOT_WIDTH - LEGEND_WIDTH);
    let mut legend = Legend::default();
    for kind_name in fault_kinds(input.faults) {
        legend
            .faults
            .push((kind_name.clone(), fault_color(&kind_name)));
    }
    match kind {
        PlotKind::LatencyRaw => draw_latency_raw(&plot_area, input, &mut legend)?,
        PlotKind::LatencyQuantiles => draw_latency_quantiles(&plot_area, input, &mut legend)?,
        PlotKind::Rate => draw_rate(&plot_area, input, &mut legend)?,
    }
    legend.draw(&legend_area)
}

// ---------------------------------------------------------------------------------------------
// Colours

/// Series colours by f (strong, so that they stand out on the pale fault shading).
const F_PALETTE: [RGBColor; 6] = [
    RGBColor(31, 100, 180),
    RGBColor(30, 140, 50),
    RGBColor(150, 40, 160),
    RGBColor(20, 150, 160),
    RGBColor(110, 80, 40),
    RGBColor(60, 60, 60),
];

fn f_colors(history: &History) -> BTreeMap<String, RGBColor> {
    let mut names: Vec<&str> = history.ops.iter().map(|op| op.f.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), F_PALETTE[i % F_PALETTE.len()]))
        .collect()
}

/// The colour of a fault kind, shared by plots, the timeline and the page.
pub fn fault_color(kind: &str) -> RGBColor {
    match kind {
        "partition" => RGBColor(130, 90, 210),
        "partition-oneway" => RGBColor(185, 145, 235),
        "kill" => RGBColor(220, 40, 40),
        "pause" => RGBColor(120, 120, 120),
        "clock" => RGBColor(170, 170, 20),
        "loss" => RGBColor(240, 140, 30),
        "duplicate" => RGBColor(90, 170, 230),
        "reorder" => RGBColor(160, 110, 80),
        "disk" => RGBColor(230, 90, 180),
        "membership" => RGBColor(40, 180, 140),
        "transfer" => RGBColor(100, 130, 255),
        other => {
            // Unknown kinds still get a stable colour of their own.
            let h = other
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
            RGBColor(
                80 + (h % 150) as u8,
                80 + ((h / 150) % 150) as u8,
                80 + ((h / 22500) % 150) as u8,
            )
        }
    }
}

pub fn css_color(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn mix(c: RGBColor, with: RGBColor, amount: f64) -> RGBColor {
    let m = |a: u8, b: u8| (a as f64 * (1.0 - amount) + b as f64 * amount).round() as u8;
    RGBColor(m(c.0, with.0), m(c.1, with.1), m(c.2, with.2))
}

fn outcome_color(base: RGBColor, outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Ok => base,
        Outcome::Fail => mix(base, WHITE, 0.45),
        Outcome::Info | Outcome::Pending => mix(base, BLACK, 0.45),
    }
}

fn fault_kinds(faults: &[Fault]) -> Vec<String> {
    let mut kinds: Vec<String> = faults.iter().map(|f| f.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

// ---------------------------------------------------------------------------------------------
// Legend panel

#[derive(Clone, Copy)]
enum Mark {
    Circle,
    Cross,
    Triangle,
    Line(u32),
}

#[derive(Default)]
struct Legend {
    faults: Vec<(String, RGBColor)>,
    series: Vec<(String, RGBColor, Mark)>,
    note: Option<String>,
}

impl Legend {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> DrawResult<DB> {
        let text = (FONT, 13).into_font();
        let heading = (FONT, 14).into_font();
        let mut y = 30i32;
        let row = 17i32;
        let max_rows = ((PLOT_HEIGHT as i32 - 40) / row) as usize;
        let mut rows_used = 0usize;
        if !self.faults.is_empty() {
            area.draw(&Text::new("faults (shaded)", (8, y), heading.clone()))?;
            y += row;
            for (name, color) in &self.faults {
                area.draw(&Rectangle::new(
                    [(10, y - 5), (30, y + 7)],
                    color.mix(SHADE_ALPHA * 2.0).filled(),
                ))?;
                area.draw(&Rectangle::new(
                    [(10, y - 5), (30, y + 7)],
                    color.stroke_width(1),
                ))?;
                area.draw(&Text::new(name.clone(), (38, y - 5), text.clone()))?;
                y += row;
            }
            y += 6;
        }
        if !self.series.is_empty() {
            area.draw(&Text::new("series", (8, y), heading.clone()))?;
            y += row;
        }
        let total = self.series.len();
        for (i, (name, color, mark)) in self.series.iter().enumerate() {
            rows_used += 1;
            if rows_used + self.faults.len() + 4 > max_rows && i + 1 < total {
                let more = format!("… and {} more", total - i);
                area.draw(&Text::new(more, (10, y - 5), text.clone()))?;
                break;
            }
            let center = (20, y + 1);
            match mark {
                Mark::Circle => area.draw(&Circle::new(center, 4, color.filled()))?,
                Mark::Cross => area.draw(&Cross::new(center, 4, color.stroke_width(2)))?,
                Mark::Triangle => area.draw(&TriangleMarker::new(center, 5, color.filled()))?,
                Mark::Line(w) => area.draw(&PathElement::new(
                    vec![(8, y + 1), (32, y + 1)],
                    color.stroke_width(*w),
                ))?,
            }
            area.draw(&Text::new(name.clone(), (38, y - 5), text.clone()))?;
            y += row;
        }
        if let Some(note) = &self.note {
            area.draw(&Text::new(
                note.clone(),
                (8, PLOT_HEIGHT as i32 - 20),
                (FONT, 12).into_font(),
            ))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The frame every plot shares: time axis, mesh and fault bands

/// Width of the y label area, shared by the fault lanes and the chart below them so that their
/// time axes line up; wide enough for the longest fault kind name.
const Y_LABEL_AREA_PX: u32 = 118;
/// Height of one fault lane (one per fault kind, above the chart).
const LANE_PX: u32 = 15;
/// Height of one stripe where faults of several kinds overlap.
const STRIPE_PX: i32 = 6;

/// A chart of `y_spec` (spanning `y_lo..y_hi`) over the run's time in seconds, with the
/// caption, axes and mesh every plot shares, one labelled lane per fault kind above it, and the
/// faults shaded over the full height, so that the series drawn next lie on top of the bands.
fn time_chart<'a, DB, YSpec>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
    caption: &str,
    y_desc: &str,
    y_spec: YSpec,
    (y_lo, y_hi): (f64, f64),
) -> Result<TimeChart<'a, DB, YSpec::CoordDescType>, DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    YSpec: AsRangedCoord<Value = f64>,
    YSpec::CoordDescType: ValueFormatter<f64>,
{
    let body = area.titled(caption, (FONT, 20))?;
    let kinds = fault_kinds(input.faults);
    let lanes_px = if kinds.is_empty() {
        0
    } else {
        kinds.len() as u32 * LANE_PX + 6
    };
    let (lanes_area, chart_area) = body.split_vertically(lanes_px);
    if !kinds.is_empty() {
        draw_fault_lanes(&lanes_area, input, &kinds)?;
    }
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(40)
        .y_label_area_size(Y_LABEL_AREA_PX)
        .build_cartesian_2d(0f64..input.end_s(), y_spec)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .y_label_formatter(&|v| axis_number(*v))
        .x_label_formatter(&|v| axis_number(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade_faults(&mut chart, input, y_lo, y_hi)?;
    if let Some(at_ns) = input.violation_ns {
        let x = at_ns as f64 / 1e9;
        let red = RGBColor(198, 40, 40);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, y_lo), (x, y_hi)],
            red.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, y_hi))
                + Text::new("violation", (4, 2), (FONT, 13).into_font().color(&red)),
        ))?;
    }
    Ok(chart)
}

type TimeChart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

/// One lane per fault kind (named at the left, in the kind's colour), each window a solid bar
/// labelled with its targets where the label fits: every window stays identifiable however
/// many overlap or repeat, which one label row over the whole plot could not do.
fn draw_fault_lanes<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
    kinds: &[String],
) -> DrawResult<DB> {
    let end_s = input.end_s();
    let end_ns = (end_s * 1e9) as u64;
    let lanes = kinds.len() as f64;
    let mut lane_chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(12)
        .y_label_area_size(Y_LABEL_AREA_PX)
        .build_cartesian_2d(0f64..end_s, 0f64..lanes)?;
    let lane_of = |kind: &str| kinds.iter().position(|k| k == kind).unwrap_or(0) as f64;
    // Lane names, drawn by hand: the y axis of a lane chart has no useful numbers.
    let name_font = (FONT, 12).into_font();
    for (i, kind) in kinds.iter().enumerate() {
        let color = mix(fault_color(kind), BLACK, 0.35);
        let y = lanes - i as f64;
        let (_, y_px) = lane_chart.backend_coord(&(0.0, y));
        let x_px = area.get_base_pixel().0 + 12;
        area.draw(&Text::new(
            crate::escape::truncate(kind, 17),
            (
                x_px - area.get_base_pixel().0,
                y_px - area.get_base_pixel().1 + 1,
            ),
            name_font.clone().color(&color),
        ))?;
    }
    let plot_px = lane_chart.plotting_area().get_pixel_range().0;
    lane_chart.draw_series(input.faults.iter().map(|f| {
        let top = lanes - lane_of(&f.kind);
        Rectangle::new(
            [
                (f.start_ns as f64 / 1e9, top - 0.1),
                (f.stop_or(end_ns) as f64 / 1e9, top - 0.9),
            ],
            fault_color(&f.kind).mix(0.45).filled(),
        )
    }))?;
    let label_font = (FONT, 11).into_font();
    let mut labels: Vec<(f64, f64, String, RGBColor)> = Vec::new();
    for f in input.faults {
        let x0 = lane_chart.backend_coord(&(f.start_ns as f64 / 1e9, 0.0)).0;
        let x1 = lane_chart
            .backend_coord(&(f.stop_or(end_ns) as f64 / 1e9, 0.0))
            .0
            .min(plot_px.end);
        let room_chars = ((x1 - x0 - 4).max(0) as f64 / (LABEL_CHAR_PX * 11.0 / 12.0)) as usize;
        if room_chars < 2 {
            continue;
        }
        let text = crate::escape::truncate(&f.targets_label(), room_chars);
        let top = lanes - lane_of(&f.kind);
        let ink = mix(fault_color(&f.kind), BLACK, 0.6);
        labels.push((f.start_ns as f64 / 1e9, top - 0.12, text, ink));
    }
    lane_chart.draw_series(labels.into_iter().map(|(x, y, text, ink)| {
        EmptyElement::at((x, y)) + Text::new(text, (3, 0), label_font.clone().color(&ink))
    }))?;
    Ok(())
}

/// The faults active in each elementary interval between fault boundaries: (start, stop,
/// kinds active throughout, sorted and distinct).
fn active_kinds(faults: &[Fault], end_ns: u64) -> Vec<(u64, u64, Vec<&str>)> {
    let mut bounds: Vec<u64> = faults
        .iter()
        .flat_map(|f| [f.start_ns, f.stop_or(end_ns)])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .windows(2)
        .filter_map(|w| {
            let (s, e) = (w[0], w[1]);
            let mut kinds: Vec<&str> = faults
                .iter()
                .filter(|f| f.start_ns <= s && f.stop_or(end_ns) >= e && f.stop_or(end_ns) > s)
                .map(|f| f.kind.as_str())
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            (!kinds.is_empty()).then_some((s, e, kinds))
        })
        .collect()
}

/// Shades each fault over [y_lo, y_hi] (the full plot height). Where faults of several kinds
/// overlap, the shading is striped in their colours instead of blended, so that every colour
/// on the plot is one of the legend's.
fn shade_faults<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<RangedCoordf64, Y>>,
    input: &PlotInput,
    y_lo: f64,
    y_hi: f64,
) -> DrawResult<DB> {
    let end_ns = (input.end_s() * 1e9) as u64;
    let faults = input.faults;
    let intervals = active_kinds(faults, end_ns);
    chart.draw_series(
        intervals
            .iter()
            .filter(|i| i.2.len() == 1)
            .map(|(s, e, kinds)| {
                Rectangle::new(
                    [(*s as f64 / 1e9, y_lo), (*e as f64 / 1e9, y_hi)],
                    fault_color(kinds[0]).mix(SHADE_ALPHA).filled(),
                )
            }),
    )?;
    let area = chart.plotting_area().strip_coord_spec();
    let x_base = chart.plotting_area().get_base_pixel().0;
    let height = chart.plotting_area().dim_in_pixel().1 as i32;
    for (s, e, kinds) in intervals.iter().filter(|i| i.2.len() > 1) {
        let x0 = chart.backend_coord(&(*s as f64 / 1e9, y_hi)).0 - x_base;
        let x1 = chart.backend_coord(&(*e as f64 / 1e9, y_hi)).0 - x_base;
        let mut y = 0;
        let mut turn = 0usize;
        while y < height {
            let color = fault_color(kinds[turn % kinds.len()]).mix(SHADE_ALPHA * 1.4);
            area.draw(&Rectangle::new(
                [(x0, y), (x1.max(x0 + 1), (y + STRIPE_PX).min(height))],
                color.filled(),
            ))?;
            y += STRIPE_PX;
            turn += 1;
        }
    }
    // Edges make back-to-back faults of one kind distinguishable.
    chart.draw_series(faults.iter().flat_map(|f| {
        let color = fault_color(&f.kind).mix(0.7);
        let s = f.start_ns as f64 / 1e9;
        let e = f.stop_or(end_ns) as f64 / 1e9;
        [
            PathElement::new(vec![(s, y_lo), (s, y_hi)], color.stroke_width(1)),
            PathElement::new(vec![(e, y_lo), (e, y_hi)], color.stroke_width(1)),
        ]
    }))?;
    Ok(())
}

/// Opacity of the full-height fault shading (the legend swatches use the same).
const SHADE_ALPHA: f64 = 0.16;

// ---------------------------------------------------------------------------------------------
// The plots

fn latency_ms(ns: u64) -> f64 {
    // Log axes cannot show zero: a zero latency is drawn at the floor.
    (ns as f64 / 1e6).max(LATENCY_FLOOR_MS)
}

const LATENCY_FLOOR_MS: f64 = 0.01;

/// Decades covering the data: from the decade below the fastest op to the one above the slowest.
fn latency_range(
    fastest_ms: impl Iterator<Item = f64>,
    slowest_ms: impl Iterator<Item = f64>,
) -> (f64, f64) {
    let min_ms = fastest_ms.fold(f64::INFINITY, f64::min);
    let max_ms = slowest_ms.fold(0.0, f64::max);
    let hi = 10f64.powf((max_ms.max(1.0) * 1.5).log10().ceil());
    let lo = if min_ms.is_finite() {
        10f64.powf(min_ms.max(LATENCY_FLOOR_MS).log10().floor())
    } else {
        0.1
    };
    (lo.min(hi / 10.0), hi)
}

fn draw_latency_raw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
    legend: &mut Legend,
) -> DrawResult<DB> {
    let end_s = input.end_s();
    let colors = f_colors(input.history);
    let ops = &input.history.ops;
    let latencies_ms = || ops.iter().filter_map(|op| op.latency_ns()).map(latency_ms);
    let (y_lo, y_hi) = latency_range(latencies_ms(), latencies_ms());
    let mut chart = time_chart(
        area,
        input,
        "Latency of every operation (by f and outcome)",
        "latency (ms)",
        (y_lo..y_hi).log_scale(),
        (y_lo, y_hi),
    )?;

    // Points falling on the same pixel with the same look are drawn once: the picture is the
    // same and a 100k-op SVG stays small.
    let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
    let y_span = (y_hi / y_lo).ln();
    let mut points: Vec<(usize, u8, u32, u32, f64, f64)> =
        Vec::with_capacity(input.history.ops.len());
    let f_index: BTreeMap<&str, usize> = colors
        .keys()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    for op in &input.history.ops {
        let Some(latency) = op.latency_ns() else {
            continue;
        };
        let x = op.invoke_time_ns as f64 / 1e9;
        let y = latency_ms(latency);
        let px = (x / end_s * plot_w as f64) as u32;
        let py = ((y / y_lo).ln() / y_span * plot_h as f64) as u32;
        points.push((f_index[op.f.as_str()], op.outcome.code(), px, py, x, y));
    }
    points.sort_unstable_by_key(|p| (p.1 == 0, p.0, p.1, p.2, p.3)); // ok drawn last, on top
    points.dedup_by_key(|p| (p.0, p.1, p.2, p.3));
    let names: Vec<&String> = colors.keys().collect();
    // Dense plots get smaller dots, so that the other series stay visible between them.
    let radius = if points.len() > 20_000 { 1 } else { 2 };
    for outcome in [Outcome::Info, Outcome::Fail, Outcome::Ok] {
        for (fi, f) in names.iter().enumerate() {
            let color = outcome_color(colors[*f], outcome);
            let selected = points.iter().filter(|p| p.0 == fi && p.1 == outcome.code());
            let mut any = false;
            match outcome {
                Outcome::Ok => {
                    chart.draw_series(selected.map(|p| {
                        any = true;
                        Circle::new((p.4, p.5), radius, color.filled())
                    }))?;
                }
                Outcome::Fail => {
                    chart.draw_series(selected.map(|p| {
                        any = true;
                        Cross::new((p.4, p.5), 3, color.stroke_width(1))
                    }))?;
                }
                _ => {
                    chart.draw_series(selected.map(|p| {
                        any = true;
                        TriangleMarker::new((p.4, p.5), 4, color.filled())
                    }))?;
                }
            }
            if any {
                let mark = match outcome {
                    Outcome::Ok => Mark::Circle,
                    Outcome::Fail => Mark::Cross,
                    _ => Mark::Triangle,
                };
                legend
                    .series
                    .push((format!("{f} {}", outcome.name()), color, mark));
            }
        }
    }
    if points.is_empty() {
        draw_no_data(&chart)?;
    }
    legend.note = Some("x: invocation time".to_string());
    Ok(())
}

fn draw_latency_quantiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
    legend: &mut Legend,
) -> DrawResult<DB> {
    let colors = f_colors(input.history);
    let series = stats::latency_quantiles(input.history, input.bucket_ns);
    // The axis spans the lowest quantile drawn (p50) to the highest (max).
    let quantile_ms = |qi: usize| {
        series
            .values()
            .flatten()
            .map(move |(_, qs)| latency_ms(qs[qi]))
    };
    let (y_lo, y_hi) = latency_range(quantile_ms(0), quantile_ms(QUANTILES.len() - 1));
    let caption = format!(
        "Latency quantiles of ok operations, per {} bucket",
        duration_label(input.bucket_ns)
    );
    let mut chart = time_chart(
        area,
        input,
        &caption,
        "latency (ms)",
        (y_lo..y_hi).log_scale(),
        (y_lo, y_hi),
    )?;
    for (f, points) in &series {
        for (qi, (_, q_name)) in QUANTILES.iter().enumerate() {
            let base = colors[f];
            let (color, width) = match qi {
                0 => (mix(base, BLACK, 0.3), 3),
                1 => (base, 2),
                2 => (mix(base, WHITE, 0.35), 2),
                _ => (mix(base, WHITE, 0.6), 1),
            };
            let line: Vec<(f64, f64)> = points
                .iter()
                .map(|(t, qs)| (*t as f64 / 1e9, latency_ms(qs[qi])))
                .collect();
            chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(width)))?;
            if line.len() < 30 {
                chart.draw_series(line.iter().map(|&p| Circle::new(p, 2, color.filled())))?;
            }
            legend
                .series
                .push((format!("{f} {q_name}"), color, Mark::Line(width)));
        }
    }
    if series.is_empty() {
        draw_no_data(&chart)?;
    }
    legend.note = Some(format!("bucket: {}", duration_label(input.bucket_ns)));
    Ok(())
}

fn draw_rate<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
    legend: &mut Legend,
) -> DrawResult<DB> {
    let colors = f_colors(input.history);
    let series = stats::rates(input.history, input.bucket_ns);
    let max_rate = series
        .values()
        .flatten()
        .map(stats::RateBucket::per_second)
        .fold(0.0, f64::max);
    let y_hi = (max_rate * 1.15).max(1.0);
    let caption = format!(
        "Throughput by f and outcome, per {} bucket",
        duration_label(input.bucket_ns)
    );
    let mut chart = time_chart(
        area,
        input,
        &caption,
        "completions per second",
        0f64..y_hi,
        (0.0, y_hi),
    )?;
    for ((f, outcome), points) in &series {
        let color = outcome_color(colors[f], *outcome);
        let width = if *outcome == Outcome::Ok { 2 } else { 1 };
        // Steps, not a line through bucket middles: the area under each step is exactly the
        // bucket's completions, and a bucket's rate is visibly over its own length.
        let steps: Vec<(f64, f64)> = points
            .iter()
            .flat_map(|b| {
                let rate = b.per_second();
                [
                    (b.start_ns as f64 / 1e9, rate),
                    (b.stop_ns as f64 / 1e9, rate),
                ]
            })
            .collect();
        chart.draw_series(LineSeries::new(steps, color.stroke_width(width)))?;
        legend
            .series
            .push((format!("{f} {}", outcome.name()), color, Mark::Line(width)));
    }
    if series.is_empty() {
        draw_no_data(&chart)?;
    }
    legend.note = Some(format!("bucket: {}", duration_label(input.bucket_ns)));
    Ok(())
}

fn draw_no_data<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &ChartContext<DB, Cartesian2d<RangedCoordf64, Y>>,
) -> DrawResult<DB> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        "no completed operations",
        (w as i32 / 2 - 90, h as i32 / 2),
        (FONT, 18),
    ))
}

/// Axis numbers without a useless ".0": 10000, 2.5, 0.01.
fn axis_number(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// "250 ms", "1 s", "1 min".
pub fn duration_label(ns: u64) -> String {
    if ns >= 60_000_000_000 && ns % 60_000_000_000 == 0 {
        format!("{} min", ns / 60_000_000_000)
    } else if ns >= 1_000_000_000 {
        format!("{} s", ns as f64 / 1e9)
    } else {
        format!("{} ms", ns as f64 / 1e6)
    }
}
