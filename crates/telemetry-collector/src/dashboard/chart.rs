//! Charts as SVG, drawn on the server: a line chart over the days of a range
//! and a horizontal bar chart. No script runs in the page, so the strict
//! Content-Security-Policy needs no exception, and a chart is there as soon
//! as the HTML is.
//!
//! Every drawn point is an element with `data-x`, `data-y` (and `data-series`
//! on line charts) and a `<title>` a pointer or screen reader can show; the
//! figure's table beside it holds the same numbers as text. Colours come from
//! the stylesheet (`.s0` … `.s7`, the Okabe–Ito palette, told apart with
//! colour blindness too), never from `style` attributes.
//!
//! ```
//! use telemetry_collector::dashboard::chart::{line_chart, Series};
//! let days = vec!["2024-05-01".to_string(), "2024-05-02".to_string()];
//! let series = vec![Series { name: "active".into(), points: vec![(1, 4.0)] }];
//! let svg = line_chart("ids-daily", "Active distinct ids per day", &days, &series).into_string();
//! assert!(svg.contains(r#"data-x="2024-05-02""#) && svg.contains(r#"data-y="4""#));
//! ```

use maud::{html, Markup};

use super::table::group_digits;

/// Width and height of a chart's drawing, in SVG units (it scales to the page).
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Series a chart draws in their own colour; beyond these the table has the rest.
pub const MAX_SERIES: usize = 8;

/// One line: points as (index of the day in the chart's days, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text and `data-series`.
    pub name: String,
    /// Points, any order; days without a point are drawn as 0.
    pub points: Vec<(usize, f64)>,
}

/// The top of the value axis: four equal steps, each 1, 2 or 5 × 10^k, the
/// smallest such that reach `max` (4 for nothing), so every grid line has a
/// round value.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 4.0;
    }
    let raw_step = max / 4.0;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw_step)
        .unwrap_or(10.0 * magnitude);
    // Counts never need a step below 1.
    4.0 * if max >= 4.0 { step.max(1.0) } else { step }
}

fn number_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        group_digits(v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn number_attr(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Horizontal grid lines with their values, and the plot's frame.
fn y_axis(max: f64) -> Markup {
    let plot_h = HEIGHT - TOP - BOTTOM;
    html! {
        g class="grid" aria-hidden="true" {
            @for i in 0..=4 {
                @let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y) y2=(y) {}
                text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (number_label(max * f64::from(i) / 4.0)) }
            }
        }
    }
}

/// A line chart over `days` (the whole range, oldest first).
pub fn line_chart(name: &str, title: &str, days: &[String], series: &[Series]) -> Markup {
    let max = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = if days.len() > 1 {
        plot_w / (days.len() - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| {
        LEFT + if days.len() > 1 {
            step * i as f64
        } else {
            plot_w / 2.0
        }
    };
    let y = |v: f64| TOP + plot_h - plot_h * (v / max).clamp(0.0, 1.0);
    let radius = if days.len() > 120 { 1.5 } else { 3.0 };
    // About six day labels, evenly spread, the last day always among them.
    let label_every = days.len().div_ceil(6).max(1);
    let title_id = format!("chart-{name}-title");
    // Each line through every day of the range, 0 where the series has no point.
    let paths: Vec<String> = series
        .iter()
        .take(MAX_SERIES)
        .map(|s| {
            let mut values = vec![0.0; days.len()];
            for &(i, v) in &s.points {
                if let Some(slot) = values.get_mut(i) {
                    *slot = v;
                }
            }
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                .collect();
            points.join(" ")
        })
        .collect();
    html! {
        svg viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-labelledby=(title_id) class="chart" {
            title id=(title_id) { (title) }
            (y_axis(max))
            g class="x-axis" aria-hidden="true" {
                @for (i, day) in days.iter().enumerate() {
                    @if i + 1 == days.len() {
                        text x=(x(i)) y=(HEIGHT - 8.0) text-anchor=(if days.len() == 1 { "middle" } else { "end" }) { (day) }
                    } @else if i == 0 {
                        text x=(x(i)) y=(HEIGHT - 8.0) text-anchor="start" { (day) }
                    } @else if i % label_every == 0 && days.len() - i > label_every / 2 {
                        text x=(x(i)) y=(HEIGHT - 8.0) text-anchor="middle" { (day) }
                    }
                }
            }
            @for (n, (s, path)) in series.iter().zip(&paths).enumerate() {
                g class={"series s" (n)} data-series=(s.name) {
                    polyline points=(path) {}
                    @for &(i, v) in &s.points {
                        @if i < days.len() {
                            circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(v))) r=(radius)
                                data-x=(days[i]) data-y=(number_attr(v)) data-series=(s.name) {
                                title { (days[i]) ": " (number_label(v)) " " (s.name) }
                            }
                        }
                    }
                }
            }
        }
        @if series.len() > 1 {
            ul class="legend" {
                @for (n, s) in series.iter().take(MAX_SERIES).enumerate() {
                    li { span class={"swatch s" (n)} aria-hidden="true" {} (s.name) }
                }
                @if series.len() > MAX_SERIES {
                    li { "and " (series.len() - MAX_SERIES) " more in the table" }
                }
            }
        }
    }
}

/// A horizontal bar per (label, value), in the order given.
pub fn bar_chart(name: &str, title: &str, bars: &[(String, f64)]) -> Markup {
    const ROW: f64 = 22.0;
    const LABEL_W: f64 = 220.0;
    let shown = &bars[..bars.len().min(12)];
    let height = TOP + ROW * shown.len() as f64 + 4.0;
    let max = nice_max(shown.iter().map(|b| b.1).fold(0.0, f64::max));
    let plot_w = WIDTH - LABEL_W - 90.0;
    let title_id = format!("chart-{name}-title");
    html! {
        svg viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-labelledby=(title_id) class="chart bars" {
            title id=(title_id) { (title) }
            @for (i, (label, value)) in shown.iter().enumerate() {
                @let top = TOP + ROW * i as f64;
                @let short: String = if label.chars().count() > 32 { label.chars().take(31).chain(['…']).collect() } else { label.clone() };
                text x=(LABEL_W - 8.0) y=(top + 14.0) text-anchor="end" { (short) }
                rect class={"s" (i % MAX_SERIES)} x=(LABEL_W) y=(top + 3.0) height=(ROW - 6.0)
                    width=(format!("{:.1}", (plot_w * value / max).max(1.0)))
                    data-x=(label) data-y=(number_attr(*value)) {
                    title { (label) ": " (number_label(*value)) }
                }
                text x=(format!("{:.1}", LABEL_W + (plot_w * value / max).max(1.0) + 6.0)) y=(top + 14.0) { (number_label(*value)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.0), 4.0);
        assert_eq!(nice_max(7.0), 8.0);
        assert_eq!(nice_max(30.0), 40.0);
        assert_eq!(nice_max(201.0), 400.0);
        assert_eq!(nice_max(160.0), 200.0);
        assert_eq!(nice_max(4_100.0), 8_000.0);
        assert_eq!(nice_max(0.3), 0.4);
        assert_eq!(nice_max(f64::NAN), 4.0);
    }

    #[test]
    fn labels_are_escaped_text() {
        let svg = bar_chart("t", "T", &[("<script>x</script>".into(), 2.0)]).into_string();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        let days = vec!["d\"><b>".to_string()];
        let series = vec![Series {
            name: "<i>".into(),
            points: vec![(0, 1.0)],
        }];
        let svg = line_chart("t", "T", &days, &series).into_string();
        assert!(!svg.contains("<b>") && !svg.contains("<i>"));
    }

    #[test]
    fn one_element_per_point_and_bar() {
        let days: Vec<String> = (1..=9).map(|d| format!("2024-05-0{d}")).collect();
        let series = vec![
            Series {
                name: "a".into(),
                points: vec![(0, 1.0), (8, 3.0)],
            },
            Series {
                name: "b".into(),
                points: vec![(4, 2.5)],
            },
        ];
        let svg = line_chart("t", "T", &days, &series).into_string();
        assert_eq!(svg.matches("<circle").count(), 3);
        let bars: Vec<(String, f64)> = (0..3).map(|i| (format!("v{i}"), f64::from(i))).collect();
        assert_eq!(
            bar_chart("t", "T", &bars)
                .into_string()
                .matches("<rect")
                .count(),
            3
        );
    }
}
