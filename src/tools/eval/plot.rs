//! Timeline PNG for `hawkeye eval`: one row per zone, the truth intervals as a thin bar above
//! the alert events the pipeline raised, on a shared time axis.
//!
//! Drawn with plotters' bitmap backend into memory and encoded with `image`. Text uses a TTF
//! read at run time (Debian's `fonts-dejavu-core`); without one the plot is drawn without text.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context};
use image::RgbImage;
use plotters::prelude::{BitMapBackend, Color, DrawingArea, IntoDrawingArea, IntoFont, RGBColor, Rectangle, TextStyle};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::metrics::{alert_events, AlertRec};
use crate::tools::synth::truth::Truth;

/// Image width in pixels; the height is `MARGIN_TOP + ROW_H * rows + MARGIN_BOTTOM`.
const WIDTH: u32 = 1200;
const ROW_H: i32 = 60;
const MARGIN_TOP: i32 = 50;
const MARGIN_BOTTOM: i32 = 70;
/// Room for the zone labels on the left, and a little on the right.
const LEFT: i32 = 150;
const RIGHT: i32 = 30;
/// Vertical extents within a row: truth bar, alert bar, `new` tick.
const TRUTH_BAR: (i32, i32) = (10, 22);
const ALERT_BAR: (i32, i32) = (30, 46);
const TICK: (i32, i32) = (26, 50);

const FONT_FAMILY: &str = "hawkeye-sans";
/// Fonts tried in turn; the first is Debian's `fonts-dejavu-core`.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
const TRACK: RGBColor = RGBColor(236, 236, 236);
const GRID: RGBColor = RGBColor(210, 210, 210);
const INK: RGBColor = RGBColor(0, 0, 0);
const MUTED: RGBColor = RGBColor(90, 90, 90);
const OUT_OF_STORE: RGBColor = RGBColor(31, 119, 180);
const DUMPING: RGBColor = RGBColor(140, 86, 75);
const OCCUPANCY: RGBColor = RGBColor(148, 103, 189);
const BIN_OVERFLOW: RGBColor = RGBColor(188, 189, 34);
const OTHER_KIND: RGBColor = RGBColor(127, 127, 127);
const FLOOD_GREEN: RGBColor = RGBColor(44, 160, 44);
const FLOOD_YELLOW: RGBColor = RGBColor(240, 200, 0);
const FLOOD_RED: RGBColor = RGBColor(214, 39, 40);

/// Colour of an event kind (flooding: by level, see [`level_colour`]).
fn kind_colour(kind: &str) -> RGBColor {
    match kind {
        "out_of_store" => OUT_OF_STORE,
        "dumping" => DUMPING,
        "occupancy" => OCCUPANCY,
        "bin_overflow" => BIN_OVERFLOW,
        "flooding" => FLOOD_YELLOW,
        _ => OTHER_KIND,
    }
}

fn level_colour(level: &str) -> RGBColor {
    match level {
        "green" => FLOOD_GREEN,
        "red" => FLOOD_RED,
        _ => FLOOD_YELLOW,
    }
}

/// Registers the first readable font under [`FONT_FAMILY`], once per process; false if none.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        FONT_PATHS.iter().any(|p| {
            let Ok(bytes) = std::fs::read(p) else { return false };
            // plotters keeps fonts for the whole process, so it wants them 'static
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Writes the timeline of `truth` and `alerts` over `[0, duration_s]` as a PNG, about
/// 1200 × (120 + 60·zones) pixels: per zone (from truth events, flood timelines and alerts, in
/// that order of first appearance) a thin truth bar (event kind colours; flood zones coloured
/// green / yellow / red by the true level) over the alert events from `new` to `end` (or to the
/// end of the plot), flood alerts coloured by their level and a tick at each `new`.
pub fn timeline_png(
    path: &Path,
    title: &str,
    duration_s: f64,
    truth: &Truth,
    alerts: &[AlertRec],
) -> anyhow::Result<()> {
    let img = render(title, duration_s, truth, alerts, font_ready())?;
    img.save_with_format(path, image::ImageFormat::Png).with_context(|| format!("writing {}", path.display()))
}

/// Zone ids in order of first appearance: truth events, flood timelines, alerts.
fn zones(truth: &Truth, alerts: &[AlertRec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let names = truth
        .events
        .iter()
        .map(|e| &e.zone)
        .chain(truth.flood.iter().map(|f| &f.zone))
        .chain(alerts.iter().map(|a| &a.zone));
    for z in names {
        if !out.contains(z) {
            out.push(z.clone());
        }
    }
    out
}

/// Maps stream time to x pixels.
#[derive(Clone, Copy)]
struct TimeAxis {
    duration: f64,
}

impl TimeAxis {
    fn x(self, t: f64) -> i32 {
        let span = f64::from(WIDTH as i32 - LEFT - RIGHT);
        LEFT + (t.clamp(0.0, self.duration) / self.duration * span).round() as i32
    }
}

/// A tick step giving at most about 12 ticks over `duration`.
fn tick_step(duration: f64) -> f64 {
    const STEPS: [f64; 17] =
        [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0];
    let raw = duration / 12.0;
    STEPS.iter().copied().find(|s| *s >= raw).unwrap_or_else(|| (raw / 3600.0).ceil() * 3600.0)
}

fn draw_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the timeline: {e}")
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Fills the pixels from `(x0, y0)` to `(x1, y1)`, both included (the bitmap backend's filled
/// rectangles leave out the far edge).
fn rect(area: &Area, x0: i32, y0: i32, x1: i32, y1: i32, c: RGBColor) -> anyhow::Result<()> {
    area.draw(&Rectangle::new([(x0, y0), (x1 + 1, y1 + 1)], c.filled())).map_err(draw_err)
}

fn text(area: &Area, s: &str, pos: (i32, i32), size: f64, c: &RGBColor, anchor: Pos) -> anyhow::Result<()> {
    let style = TextStyle::from((FONT_FAMILY, size).into_font()).color(c).pos(anchor);
    area.draw_text(s, &style, pos).map_err(draw_err)
}

/// Draws the timeline into an RGB image; `with_text` false leaves out every label.
fn render(
    title: &str,
    duration_s: f64,
    truth: &Truth,
    alerts: &[AlertRec],
    with_text: bool,
) -> anyhow::Result<RgbImage> {
    let zones = zones(truth, alerts);
    let alert_events = alert_events(alerts);
    let rows = zones.len() as i32;
    let height = (MARGIN_TOP + ROW_H * rows + MARGIN_BOTTOM) as u32;
    let duration = if duration_s.is_finite() && duration_s > 0.0 { duration_s } else { 1.0 };
    let ax = TimeAxis { duration };
    let (x_min, x_max) = (ax.x(0.0), ax.x(duration));
    let left_mid = Pos::new(HPos::Left, VPos::Center);
    let mut buf = vec![0u8; WIDTH as usize * height as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut buf, (WIDTH, height)).into_drawing_area();
        area.fill(&BACKGROUND).map_err(draw_err)?;
        let plot_bottom = MARGIN_TOP + ROW_H * rows;

        // vertical grid and the time axis
        let step = tick_step(duration);
        let ticks: Vec<f64> =
            (0..).map(|i| f64::from(i) * step).take_while(|t| *t <= duration + 1e-9).take(200).collect();
        for &t in &ticks {
            let x = ax.x(t);
            rect(&area, x, MARGIN_TOP, x, plot_bottom, GRID)?;
            rect(&area, x, plot_bottom + 4, x, plot_bottom + 10, INK)?;
        }
        rect(&area, x_min, plot_bottom + 4, x_max, plot_bottom + 4, INK)?;

        for (r, zone) in zones.iter().enumerate() {
            let y0 = MARGIN_TOP + ROW_H * r as i32;
            rect(&area, 0, y0 + ROW_H - 1, WIDTH as i32, y0 + ROW_H - 1, GRID)?;
            rect(&area, x_min, y0 + TRUTH_BAR.0, x_max, y0 + TRUTH_BAR.1, TRACK)?;
            rect(&area, x_min, y0 + ALERT_BAR.0, x_max, y0 + ALERT_BAR.1, TRACK)?;
            let bar = |t0: f64, t1: f64, (b0, b1): (i32, i32), c: RGBColor| -> anyhow::Result<()> {
                if t1 > t0 {
                    rect(&area, ax.x(t0), y0 + b0, ax.x(t1), y0 + b1, c)?;
                }
                Ok(())
            };

            // truth: flood level steps first, other events over them
            let timeline = truth.flood.iter().find(|f| &f.zone == zone);
            if let Some(tl) = timeline {
                let mut edges: Vec<(f64, &str)> = vec![(0.0, "green")];
                edges.extend(tl.levels.iter().map(|(t, l)| (*t, l.as_str())));
                for (i, &(t, level)) in edges.iter().enumerate() {
                    let next = edges.get(i + 1).map_or(duration, |e| e.0);
                    bar(t, next, TRUTH_BAR, level_colour(level))?;
                }
            }
            for e in truth.events.iter().filter(|e| &e.zone == zone) {
                if e.kind == "flooding" && timeline.is_some() {
                    continue;
                }
                bar(e.start, e.end, TRUTH_BAR, kind_colour(&e.kind))?;
            }

            // alerts: from new to end, flood alerts by level
            let events: Vec<_> = alert_events.iter().filter(|e| &e.zone == zone).collect();
            for ev in &events {
                let end = ev.end_t.unwrap_or(duration);
                if ev.kind == "flooding" && !ev.levels.is_empty() {
                    let first = ev.levels[0].0.max(ev.onset_t);
                    bar(ev.onset_t, first, ALERT_BAR, FLOOD_YELLOW)?;
                    for (i, (t, level)) in ev.levels.iter().enumerate() {
                        let next = ev.levels.get(i + 1).map_or(end, |l| l.0.min(end));
                        bar(t.max(ev.onset_t), next, ALERT_BAR, level_colour(level))?;
                    }
                } else {
                    bar(ev.onset_t, end, ALERT_BAR, kind_colour(&ev.kind))?;
                }
            }
            for ev in &events {
                let x = ax.x(ev.onset_t);
                rect(&area, x - 1, y0 + TICK.0, x, y0 + TICK.1, INK)?;
            }
            if with_text {
                let label = if zone.chars().count() > 20 {
                    format!("{}…", zone.chars().take(19).collect::<String>())
                } else {
                    zone.clone()
                };
                text(&area, &label, (LEFT - 10, y0 + ROW_H / 2), 15.0, &INK, Pos::new(HPos::Right, VPos::Center))?;
            }
        }

        // legend: colour swatches in the top margin
        let mut lx = LEFT;
        let legend: [(&str, RGBColor); 7] = [
            ("out_of_store", OUT_OF_STORE),
            ("dumping", DUMPING),
            ("occupancy", OCCUPANCY),
            ("bin_overflow", BIN_OVERFLOW),
            ("flood green", FLOOD_GREEN),
            ("yellow", FLOOD_YELLOW),
            ("red", FLOOD_RED),
        ];
        for (name, c) in legend {
            rect(&area, lx, 34, lx + 12, 44, c)?;
            lx += 18;
            if with_text {
                text(&area, name, (lx, 39), 13.0, &MUTED, left_mid)?;
                lx += area
                    .estimate_text_size(name, &TextStyle::from((FONT_FAMILY, 13.0).into_font()))
                    .map_err(draw_err)?
                    .0 as i32;
            }
            lx += 16;
        }

        if with_text {
            text(&area, title, (10, 16), 18.0, &INK, left_mid)?;
            let label_y = plot_bottom + 22;
            for &t in &ticks {
                let label = if step < 1.0 { format!("{t:.1}") } else { format!("{t:.0}") };
                text(&area, &label, (ax.x(t), label_y), 12.0, &INK, Pos::new(HPos::Center, VPos::Center))?;
            }
            text(&area, "time (s)", (x_max, plot_bottom + 44), 13.0, &INK, Pos::new(HPos::Right, VPos::Center))?;
            text(
                &area,
                "per zone: thin bar = truth, thick bar = alerts (new → end), | = alert new",
                (10, plot_bottom + 58),
                13.0,
                &MUTED,
                left_mid,
            )?;
        }
        area.present().map_err(draw_err)?;
    }
    RgbImage::from_raw(WIDTH, height, buf).ok_or_else(|| anyhow!("timeline buffer has the wrong size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::synth::truth::{FloodTimeline, TruthEvent};

    fn alert(kind: &str, zone: &str, id: &str, state: &str, t: f64, level: Option<&str>) -> AlertRec {
        AlertRec {
            kind: kind.into(),
            zone: zone.into(),
            event_id: id.into(),
            state: state.into(),
            t,
            started_t: t,
            level: level.map(String::from),
        }
    }

    /// Zones: `shop` (out_of_store truth + alert), `dip` (flood timeline + alerts), `lot` (a
    /// dumping alert with no truth and no end).
    fn case() -> (Truth, Vec<AlertRec>) {
        let truth = Truth {
            name: "plot".into(),
            fps: 10.0,
            duration_s: 100.0,
            events: vec![TruthEvent {
                kind: "out_of_store".into(),
                zone: "shop".into(),
                start: 20.0,
                end: 60.0,
                dwell_s: 5.0,
            }],
            flood: vec![FloodTimeline {
                zone: "dip".into(),
                levels: vec![(30.0, "yellow".into()), (50.0, "red".into()), (70.0, "green".into())],
                latency_s: 0.0,
            }],
            ..Default::default()
        };
        let alerts = vec![
            alert("out_of_store", "shop", "s1", "new", 26.0, None),
            alert("out_of_store", "shop", "s1", "end", 61.0, None),
            alert("flooding", "dip", "f1", "new", 32.0, Some("yellow")),
            alert("flooding", "dip", "f1", "update", 52.0, Some("red")),
            alert("flooding", "dip", "f1", "end", 71.0, Some("green")),
            alert("dumping", "lot", "d1", "new", 80.0, None),
        ];
        (truth, alerts)
    }

    fn px(img: &RgbImage, t: f64, row: i32, y: i32) -> [u8; 3] {
        let x = TimeAxis { duration: 100.0 }.x(t);
        img.get_pixel(x as u32, (MARGIN_TOP + ROW_H * row + y) as u32).0
    }

    fn rgb(c: RGBColor) -> [u8; 3] {
        [c.0, c.1, c.2]
    }

    fn check_bars(img: &RgbImage) {
        let truth_y = (TRUTH_BAR.0 + TRUTH_BAR.1) / 2;
        let alert_y = (ALERT_BAR.0 + ALERT_BAR.1) / 2;
        // shop: truth 20-60, alert 26-61
        assert_eq!(px(img, 41.0, 0, truth_y), rgb(OUT_OF_STORE));
        assert_eq!(px(img, 11.0, 0, truth_y), rgb(TRACK));
        assert_eq!(px(img, 23.0, 0, alert_y), rgb(TRACK));
        assert_eq!(px(img, 41.0, 0, alert_y), rgb(OUT_OF_STORE));
        assert_eq!(px(img, 26.0, 0, TICK.0 + 1), rgb(INK), "tick at the new");
        // dip: true level green / yellow / red / green
        assert_eq!(px(img, 11.0, 1, truth_y), rgb(FLOOD_GREEN));
        assert_eq!(px(img, 41.0, 1, truth_y), rgb(FLOOD_YELLOW));
        assert_eq!(px(img, 61.0, 1, truth_y), rgb(FLOOD_RED));
        assert_eq!(px(img, 81.0, 1, truth_y), rgb(FLOOD_GREEN));
        assert_eq!(px(img, 41.0, 1, alert_y), rgb(FLOOD_YELLOW));
        assert_eq!(px(img, 61.0, 1, alert_y), rgb(FLOOD_RED));
        assert_eq!(px(img, 81.0, 1, alert_y), rgb(TRACK), "the flood alert ended at 71");
        // lot: no truth, an open dumping alert to the end of the plot
        assert_eq!(px(img, 41.0, 2, truth_y), rgb(TRACK));
        assert_eq!(px(img, 91.0, 2, alert_y), rgb(DUMPING));
        assert_eq!(px(img, 99.0, 2, alert_y), rgb(DUMPING));
    }

    #[test]
    fn timeline_png_has_the_size_and_colours() {
        let (truth, alerts) = case();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.png");
        timeline_png(&path, "plot: truth vs alerts", 100.0, &truth, &alerts).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (1200, 120 + 60 * 3));
        check_bars(&img);
        if font_ready() {
            // the zone labels left of the bars put some dark pixels there
            let dark = (0..LEFT as u32 - 5)
                .flat_map(|x| (MARGIN_TOP as u32..(MARGIN_TOP + ROW_H) as u32).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&v| v < 128))
                .count();
            assert!(dark > 10, "no label drawn ({dark} dark pixels)");
        }
    }

    #[test]
    fn renders_without_text_and_without_zones() {
        let (truth, alerts) = case();
        let img = render("no font", 100.0, &truth, &alerts, false).unwrap();
        check_bars(&img);
        let labels = (0..LEFT as u32 - 5)
            .flat_map(|x| (MARGIN_TOP as u32..(MARGIN_TOP + ROW_H * 3) as u32).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 != rgb(BACKGROUND) && img.get_pixel(x, y).0 != rgb(GRID))
            .count();
        assert_eq!(labels, 0, "nothing but grid left of the bars without text");
        let empty = render("empty", 0.0, &Truth::default(), &[], font_ready()).unwrap();
        assert_eq!(empty.dimensions(), (1200, 120));
    }

    #[test]
    fn zone_order_and_ticks() {
        let (truth, alerts) = case();
        assert_eq!(zones(&truth, &alerts), vec!["shop", "dip", "lot"]);
        assert_eq!(tick_step(100.0), 10.0);
        assert_eq!(tick_step(600.0), 60.0);
        assert_eq!(tick_step(5.0), 0.5);
        let ax = TimeAxis { duration: 100.0 };
        assert_eq!(
            (ax.x(0.0), ax.x(100.0), ax.x(-5.0), ax.x(500.0)),
            (LEFT, WIDTH as i32 - RIGHT, LEFT, WIDTH as i32 - RIGHT)
        );
    }
}
