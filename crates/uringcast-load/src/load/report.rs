//! `--report`: one self-contained HTML file with SVG charts drawn by
//! plotters — the latency histogram and packets/s and loss over time of the
//! last step, and in sweep mode CPU-µs per egress packet against viewers.

use plotters::prelude::*;

use super::Figures;

/// Why a report could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the report: {0}")]
pub struct ReportError(String);

fn err(e: impl std::fmt::Display) -> ReportError {
    ReportError(e.to_string())
}

const SIZE: (u32, u32) = (760, 320);

/// The whole report for `steps` (one per sweep step; at least one).
pub fn html(steps: &[Figures]) -> Result<String, ReportError> {
    let last = steps.last().ok_or_else(|| err("no step to report"))?;
    let mut body = String::new();
    body.push_str("<h1>uringcast-load</h1>\n");
    for step in steps {
        body.push_str(&format!(
            "<h2>{} room(s) × {} viewers</h2>\n<pre>{}</pre>\n",
            step.publishers,
            step.subscribers,
            escape(&step.table())
        ));
    }
    if steps.len() > 1 {
        body.push_str("<h2>CPU-µs per egress packet vs viewers</h2>\n");
        body.push_str(&sweep_chart(steps)?);
    }
    body.push_str("<h2>One-way latency (last step)</h2>\n");
    body.push_str(&latency_histogram(&last.latencies_us)?);
    body.push_str("<h2>Packets per second (last step)</h2>\n");
    body.push_str(&rate_chart(last)?);
    body.push_str("<h2>Loss so far (last step)</h2>\n");
    body.push_str(&loss_chart(last)?);
    Ok(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>uringcast-load report</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:820px;margin:2em auto;color:#222}}\
         pre{{background:#f4f4f6;padding:1em;border-radius:6px}}</style></head><body>\n{body}</body></html>\n"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn latency_histogram(latencies: &[u64]) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable();
        let top = crate::client::report::percentile(&sorted, 99.5).max(10);
        let bins = 50u64;
        let width = top.div_ceil(bins).max(1);
        let mut counts = vec![0u64; bins as usize + 1];
        for &l in latencies {
            let bin = (l / width).min(bins) as usize;
            counts[bin] += 1;
        }
        let peak = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(
                (0u64..bins + 1).into_segmented(),
                0u64..peak + peak / 10 + 1,
            )
            .map_err(err)?;
        let label = move |v: &SegmentValue<u64>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => format!("{}", i * width),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .x_desc("µs (last bin: ≥ p99.5)")
            .y_desc("packets")
            .x_labels(10)
            .x_label_formatter(&label)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(BLUE.filled())
                    .margin(1)
                    .data(counts.iter().enumerate().map(|(i, &c)| (i as u64, c))),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn rate_chart(step: &Figures) -> Result<String, ReportError> {
    let expected: Vec<(u32, f64)> = step
        .series
        .iter()
        .map(|s| (s.t, (s.sent * step.subscribers as u64) as f64))
        .collect();
    let received: Vec<(u32, f64)> = step
        .series
        .iter()
        .map(|s| (s.t, s.received as f64))
        .collect();
    line_chart(
        "packets/s",
        &[
            ("expected at viewers", &expected, &RED),
            ("received", &received, &BLUE),
        ],
    )
}

fn loss_chart(step: &Figures) -> Result<String, ReportError> {
    // Cumulative: a single second is noisy (packets in flight cross its end).
    let (mut expected, mut received) = (0u64, 0u64);
    let loss: Vec<(u32, f64)> = step
        .series
        .iter()
        .map(|s| {
            expected += s.sent * step.subscribers as u64;
            received += s.received;
            let ratio = if expected == 0 {
                0.0
            } else {
                (1.0 - received as f64 / expected as f64).max(0.0)
            };
            (s.t, ratio * 100.0)
        })
        .collect();
    line_chart("cumulative loss %", &[("loss so far", &loss, &RED)])
}

/// One line of a chart: its legend, its points (second, value), its colour.
type Line<'a> = (&'a str, &'a [(u32, f64)], &'a RGBColor);

fn line_chart(y_desc: &str, lines: &[Line<'_>]) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let t_max = lines
            .iter()
            .flat_map(|l| l.1.iter().map(|p| p.0))
            .max()
            .unwrap_or(1)
            .max(1);
        let y_max = lines
            .iter()
            .flat_map(|l| l.1.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            .max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0u32..t_max, 0f64..y_max * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("second")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (label, points, color) in lines {
            let color = **color;
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn sweep_chart(steps: &[Figures]) -> Result<String, ReportError> {
    let points: Vec<(u32, f64)> = steps
        .iter()
        .filter_map(|s| {
            s.server_cpu_us_per_egress_packet
                .map(|c| (s.subscribers as u32, c))
        })
        .collect();
    if points.is_empty() {
        return Ok("<p>No server CPU figures: run with <code>--server-pid</code>.</p>\n".into());
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let x_max = points.iter().map(|p| p.0).max().unwrap_or(1) + 1;
        let y_max = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(0.1);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0u32..x_max, 0f64..y_max * 1.2)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("viewers per publisher")
            .y_desc("CPU-µs per egress packet")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
