//! Charts of the DORA figures as server-rendered SVG (design §17): the geometry is computed
//! here from [`Week`]s, the markup lives in `templates/dashboard/charts.svg.tera` (tera macros,
//! HTML escaping on). No script: the page is complete as the server sends it.

use serde::Serialize;

use crate::dora::Week;

/// Drawing area and margins, in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// One bar: a week's deployments.
#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub value: u64,
    /// Failed changes of the week, drawn inside the bar from the bottom.
    pub failed_height: f64,
    pub failures: u64,
    pub label: String,
    pub label_x: f64,
}

/// One point of the lead-time line (weeks without a change have none).
#[derive(Debug, Serialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Hours, as shown in the point's title.
    pub hours: String,
    pub label: String,
}

/// What one chart's macro needs: the frame, its axis labels and the marks.
#[derive(Debug, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub baseline: f64,
    /// The value the top of the frame stands for, as printed on the axis.
    pub max_label: String,
    pub bars: Vec<Bar>,
    pub points: Vec<Point>,
    /// `x,y x,y …` for the polyline through `points`.
    pub polyline: String,
}

fn frame(max_label: String) -> Chart {
    Chart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: WIDTH - RIGHT,
        top: TOP,
        baseline: HEIGHT - BOTTOM,
        max_label,
        bars: Vec::new(),
        points: Vec::new(),
        polyline: String::new(),
    }
}

fn week_label(w: &Week) -> String {
    w.start.format("%m-%d").to_string()
}

/// Rounded to tenths: coordinates short enough to read in the page source.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Deployments per week as bars, failed changes as a darker part of each bar.
pub fn deploys_per_week(weeks: &[Week]) -> Chart {
    let max = weeks.iter().map(|w| w.deployments).max().unwrap_or(0).max(1);
    let mut chart = frame(max.to_string());
    let slot = (WIDTH - LEFT - RIGHT) / weeks.len().max(1) as f64;
    let plot = HEIGHT - TOP - BOTTOM;
    let scale = |v: u64| plot * v as f64 / max as f64;
    chart.bars = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let x = LEFT + slot * i as f64 + slot * 0.15;
            let height = scale(w.deployments);
            Bar {
                x: r(x),
                y: r(chart.baseline - height),
                width: r(slot * 0.7),
                height: r(height),
                value: w.deployments,
                failed_height: r(scale(w.failures.min(w.deployments))),
                failures: w.failures,
                label: week_label(w),
                label_x: r(x + slot * 0.35),
            }
        })
        .collect();
    chart
}

/// The weekly median lead time as a line, in hours.
pub fn lead_time_per_week(weeks: &[Week]) -> Chart {
    let hours = |w: &Week| w.lead_time_median_seconds.map(|s| s / 3600.0);
    let max = weeks.iter().filter_map(hours).fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max } else { 1.0 };
    let mut chart = frame(format!("{top:.1} h"));
    let slot = (WIDTH - LEFT - RIGHT) / weeks.len().max(1) as f64;
    let plot = HEIGHT - TOP - BOTTOM;
    chart.points = weeks
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let h = hours(w)?;
            Some(Point {
                x: r(LEFT + slot * (i as f64 + 0.5)),
                y: r(chart.baseline - plot * h / top),
                hours: format!("{h:.1}"),
                label: week_label(w),
            })
        })
        .collect();
    chart.polyline = chart
        .points
        .iter()
        .map(|p| format!("{},{}", p.x, p.y))
        .collect::<Vec<_>>()
        .join(" ");
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn week(n: i64, deployments: u64, failures: u64, lead_hours: Option<f64>) -> Week {
        let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
            .unwrap()
            .to_utc();
        Week {
            start: start + chrono::Duration::weeks(n),
            deployments,
            changes: deployments,
            failures,
            lead_time_median_seconds: lead_hours.map(|h| h * 3600.0),
        }
    }

    #[test]
    fn bars_scale_to_the_busiest_week_and_stand_on_the_baseline() {
        let c = deploys_per_week(&[week(0, 4, 1, None), week(1, 2, 0, None), week(2, 0, 0, None)]);
        assert_eq!(c.max_label, "4");
        let heights: Vec<f64> = c.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, [168.0, 84.0, 0.0]);
        assert!(c.bars.iter().all(|b| (b.y + b.height - c.baseline).abs() < 0.01));
        assert_eq!(c.bars[0].failed_height, 42.0);
        assert_eq!(c.bars[1].label, "11-09");
    }

    #[test]
    fn the_lead_time_line_skips_weeks_without_changes() {
        let c = lead_time_per_week(&[
            week(0, 1, 0, Some(2.0)),
            week(1, 0, 0, None),
            week(2, 1, 0, Some(4.0)),
        ]);
        assert_eq!(c.points.len(), 2);
        assert_eq!(c.max_label, "4.0 h");
        assert_eq!(c.points[1].y, c.top);
        assert_eq!(c.points[0].y, c.baseline - 84.0);
        assert_eq!(c.polyline.split(' ').count(), 2);
    }
}
