//! `--plot FILE.svg`: per experiment, the relative lift of every metric and
//! variant against control with its confidence interval (a dashed line at 0),
//! and first exposures per day and variant. SVG only (`plotters` with just its
//! SVG backend, so no system fonts or image libraries are needed).

use std::path::Path;

use plotters::prelude::*;

use super::evaluate::ExperimentReport;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Writes the picture of `experiments` to `path`.
pub fn write_svg(path: &Path, experiments: &[ExperimentReport]) -> Result<(), String> {
    let rows = experiments.len().max(1);
    let root = SVGBackend::new(path, (1200, 360 * rows as u32)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| format!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((rows, 2));
    for (e, pair) in experiments.iter().zip(areas.chunks(2)) {
        lifts(&pair[0], e).map_err(err)?;
        daily(&pair[1], e).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

fn lifts<'a>(area: &Area<'a>, e: &ExperimentReport) -> DrawResult<'a> {
    let rows: Vec<(String, f64, f64, f64)> = e
        .results
        .iter()
        .filter_map(|r| {
            let c = r.comparison?;
            let (lo, hi) = c.rel_ci?;
            Some((
                format!("{} {}", r.metric, r.variant),
                lo * 100.0,
                c.rel_lift? * 100.0,
                hi * 100.0,
            ))
        })
        .collect();
    let (mut lo, mut hi) = rows
        .iter()
        .fold((-1.0f64, 1.0f64), |(a, b), r| (a.min(r.1), b.max(r.3)));
    let pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    let n = rows.len().max(1) as f64;
    let caption = if e.srm.iter().any(|t| t.mismatch) {
        format!("{}: SRM, effects halted", e.experiment)
    } else {
        format!("{}: relative lift vs {} (%)", e.experiment, e.control)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(140)
        .build_cartesian_2d(lo..hi, 0.0..n)?;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .y_labels(rows.len().max(1))
        .y_label_formatter(&|y| {
            let i = (*y - 0.5).round();
            if i >= 0.0 && (*y - 0.5 - i).abs() < 1e-6 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 0.0), (0.0, n)],
        BLACK.stroke_width(1),
    )))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        ErrorBar::new_horizontal(i as f64 + 0.5, r.1, r.2, r.3, PALETTE[i % 6].filled(), 8)
    }))?;
    Ok(())
}

fn daily<'a>(area: &Area<'a>, e: &ExperimentReport) -> DrawResult<'a> {
    let days: Vec<(&i64, &Vec<u64>)> = e.daily.iter().collect();
    let first = days.first().map_or(0, |d| *d.0);
    let last = days.last().map_or(1, |d| *d.0).max(first + 1);
    let top = days
        .iter()
        .flat_map(|d| d.1.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: first exposures per day", e.experiment),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(first as f64..last as f64, 0.0..top * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("days since 1970-01-01 (UTC)")
        .draw()?;
    for (v, name) in e.variants.iter().enumerate() {
        let color = PALETTE[v % 6];
        chart
            .draw_series(LineSeries::new(
                days.iter()
                    .map(|d| (*d.0 as f64, d.1.get(v).copied().unwrap_or(0) as f64)),
                color.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}
