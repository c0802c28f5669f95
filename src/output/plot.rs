//! An experiment's figure drawn as the paper draws it (plotters, SVG, no
//! fonts needed: text is left to the viewer): the mean as a line with
//! 1st–99th percentile bars, the paper's published points beside ours, and
//! a density as its own panel below.

use dht::experiments::published::Paper;
use dht::experiments::{Figure, Measure};
use plotters::prelude::*;

/// Ours and the paper's.
const OURS: RGBColor = RGBColor(31, 119, 180);
const PAPERS: RGBColor = RGBColor(214, 39, 40);

/// The figure as an SVG document.
pub fn svg(fig: &Figure, paper: Option<&Paper>) -> Result<String, String> {
    let panels = fig.measures.len() + usize::from(fig.pdf.is_some());
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (760, 340 * panels as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels, 1));
        for (m, area) in fig.measures.iter().zip(&areas) {
            draw_measure(area, fig, m, paper).map_err(|e| e.to_string())?;
        }
        if let Some(pdf) = &fig.pdf {
            let area = &areas[panels - 1];
            let xmax = pdf.points.iter().rposition(|p| p.1 > 0.0).unwrap_or(0) as f64 + 1.0;
            let ymax = pdf.points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1 + 1e-9;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("density of {}", pdf.label), ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..xmax, 0.0..ymax)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_label_formatter(&tick)
                .x_desc(pdf.label.split(',').next().unwrap_or(""))
                .y_desc("probability")
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    pdf.points.iter().map(|&(v, p)| (v as f64, p)),
                    OURS.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn draw_measure<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    fig: &Figure,
    m: &Measure,
    paper: Option<&Paper>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let theirs: Vec<_> = paper
        .and_then(|p| p.measures.get(&m.name))
        .cloned()
        .unwrap_or_default();
    let xs = m.points.iter().map(|p| p.x);
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let top = m
        .points
        .iter()
        .map(|p| p.p99.unwrap_or(p.mean))
        .chain(theirs.iter().filter_map(|p| p.p99.or(p.mean)))
        .fold(0.0, f64::max);
    // Room above the highest bar; an all-zero measure still gets an axis.
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    // Ring sizes double: a log axis spaces them evenly, as Fig. 10 does.
    let log_x = x0 > 0.0 && x1 / x0 >= 64.0;
    let pad = if x1 > x0 { (x1 - x0) * 0.05 } else { 1.0 };
    let title = format!("{} ({})", m.name, fig.reproduces);
    let mut b = ChartBuilder::on(area);
    b.caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_label_formatter(&tick)
                .x_desc(fig.x_label.as_str())
                .y_desc(m.name.as_str())
                .draw()?;
            chart
                .draw_series(LineSeries::new(
                    m.points.iter().map(|p| (p.x, p.mean)),
                    OURS.stroke_width(2),
                ))?
                .label("ours: mean, 1st-99th percentile")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], OURS.stroke_width(2)));
            chart.draw_series(m.points.iter().filter_map(|p| {
                Some(ErrorBar::new_vertical(
                    p.x,
                    p.p1?,
                    p.mean,
                    p.p99?,
                    OURS.stroke_width(1),
                    8,
                ))
            }))?;
            if !theirs.is_empty() {
                chart
                    .draw_series(
                        theirs
                            .iter()
                            .filter_map(|p| Some(Circle::new((p.x, p.mean?), 4, PAPERS.filled()))),
                    )?
                    .label(
                        paper
                            .map(|p| format!("paper ({})", p.kind))
                            .unwrap_or_default(),
                    )
                    .legend(|(x, y)| Circle::new((x + 9, y), 4, PAPERS.filled()));
                chart.draw_series(theirs.iter().filter_map(|p| {
                    Some(ErrorBar::new_vertical(
                        p.x,
                        p.p1?,
                        p.mean?,
                        p.p99?,
                        PAPERS.stroke_width(1),
                        12,
                    ))
                }))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    if log_x {
        body!(b.build_cartesian_2d((x0 / 1.3..x1 * 1.3).log_scale(), 0.0..top)?);
    } else {
        body!(b.build_cartesian_2d(x0 - pad..x1 + pad, 0.0..top)?);
    }
    Ok(())
}

/// An axis label: whole numbers without a point.
fn tick(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}
