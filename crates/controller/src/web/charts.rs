//! Charts drawn by the server as SVG: one metric, one line per node (or the cluster's
//! combined line), a time axis and the value range, gaps where nothing was recorded. A
//! pure function of the series, so it is tested without a browser.

use std::fmt::Write as _;

use nines_model::api::ChartSeries;

/// Line colours, distinguishable in light and dark (and each line is named in the legend,
/// so colour is never the only key).
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// A value for an axis label: 1234567 → 1.23M, 0.0042 → 0.0042.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of `series` (all of one metric), `w`×`h` pixels.
pub fn svg(title: &str, unit: &str, series: &[ChartSeries], w: u32, h: u32) -> String {
    let (left, right, top, bottom) = (56.0, 8.0, 22.0, 34.0);
    let (wf, hf) = (f64::from(w), f64::from(h));
    let (pw, ph) = (wf - left - right, hf - top - bottom);
    let times: Vec<i64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.at.timestamp_millis()))
        .collect();
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.value))
        .filter(|v| v.is_finite())
        .collect();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" class=\"chart\" aria-label=\"{t}\">\
         <title>{t}</title><text x=\"{left}\" y=\"14\" class=\"ct\">{t}{u}</text>",
        t = esc(title),
        u = if unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", esc(unit))
        },
    );
    let (Some(&t0), Some(&t1), false) = (times.iter().min(), times.iter().max(), values.is_empty())
    else {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" class=\"cl\">no data in this window</text></svg>",
            left + 10.0,
            top + ph / 2.0
        ));
        return out;
    };
    let vmin = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let mut vmax = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !vmax.is_finite() || vmax <= vmin {
        vmax = vmin + 1.0;
    }
    let span_t = ((t1 - t0).max(1)) as f64;
    let x = |t: i64| left + (t - t0) as f64 / span_t * pw;
    let y = |v: f64| top + ph - (v - vmin) / (vmax - vmin) * ph;
    // Axes, the range and the window's ends.
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" class=\"ax\"/>\
         <line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"ax\"/>\
         <text x=\"{lx}\" y=\"{ty}\" class=\"cl\" text-anchor=\"end\">{max}</text>\
         <text x=\"{lx}\" y=\"{b}\" class=\"cl\" text-anchor=\"end\">{min}</text>",
        b = top + ph,
        r = left + pw,
        lx = left - 4.0,
        ty = top + 8.0,
        max = short(vmax),
        min = short(vmin),
    );
    let fmt_t = |t: i64| {
        chrono::DateTime::from_timestamp_millis(t)
            .map(|d| d.format("%H:%M").to_string())
            .unwrap_or_default()
    };
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{ly}\" class=\"cl\">{a}</text>\
         <text x=\"{r}\" y=\"{ly}\" class=\"cl\" text-anchor=\"end\">{z} UTC</text>",
        ly = top + ph + 16.0,
        r = left + pw,
        a = fmt_t(t0),
        z = fmt_t(t1),
    );
    // One path per series; a missing point breaks the line.
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut d = String::new();
        // Points with no neighbour on either side are drawn as dots (a path of one point
        // draws nothing).
        let mut dots = String::new();
        let finite: Vec<Option<f64>> = s
            .points
            .iter()
            .map(|p| p.value.filter(|v| v.is_finite()))
            .collect();
        for (k, p) in s.points.iter().enumerate() {
            let Some(v) = finite[k] else { continue };
            let before = k > 0 && finite[k - 1].is_some();
            let after = finite.get(k + 1).copied().flatten().is_some();
            let (px, py) = (x(p.at.timestamp_millis()), y(v));
            if !before && !after {
                let _ = write!(
                    dots,
                    "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"2.5\" fill=\"{colour}\"/>"
                );
            } else {
                let _ = write!(d, "{}{px:.1},{py:.1} ", if before { "L" } else { "M" });
            }
        }
        out.push_str(&dots);
        let name = s.node.as_deref().unwrap_or("cluster");
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"><title>{}</title></path>\
             <text x=\"{}\" y=\"{}\" class=\"cl\" fill=\"{colour}\">— {}</text>",
            d.trim_end(),
            esc(name),
            left + 10.0 + (i as f64) * 150.0,
            hf - 4.0,
            esc(name),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};
    use nines_model::api::SeriesPoint;

    fn series(node: &str, values: &[Option<f64>]) -> ChartSeries {
        ChartSeries {
            name: "queries_per_second".into(),
            unit: "1/s".into(),
            node: Some(node.into()),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| SeriesPoint {
                    at: Utc.timestamp_opt(1_700_000_000 + i as i64 * 60, 0).unwrap(),
                    value: *v,
                })
                .collect(),
        }
    }

    #[test]
    fn lines_break_at_gaps_and_name_their_nodes() {
        let s = svg(
            "queries",
            "1/s",
            &[
                series("10.0.0.1:3306", &[Some(1.0), None, Some(3.0), Some(4.0)]),
                series("<x>", &[Some(0.0)]),
            ],
            600,
            200,
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        // The gap leaves the first point alone (a dot) and starts a new segment after it.
        let first = s
            .split("<path d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(first.matches('M').count(), 1, "{first}");
        assert_eq!(first.matches('L').count(), 1, "{first}");
        assert_eq!(s.matches("<circle").count(), 2, "two lone points: {s}");
        assert!(s.contains("10.0.0.1:3306"));
        assert!(
            s.contains("&lt;x&gt;") && !s.contains("<x>"),
            "names are escaped"
        );
        // The range is labelled from 0 to the largest value.
        assert!(s.contains(">4.00<") && s.contains(">0<"), "{s}");
    }

    #[test]
    fn empty_windows_say_so_and_labels_are_short() {
        assert!(svg("q", "1/s", &[], 300, 100).contains("no data in this window"));
        assert!(svg("q", "1/s", &[series("a", &[None, None])], 300, 100).contains("no data"));
        let cases = [
            (0.0, "0"),
            (0.5, "0.5000"),
            (12.345, "12.35"),
            (250.0, "250"),
            (12_345.0, "12.3k"),
            (2_500_000.0, "2.50M"),
            (3e9, "3.00G"),
        ];
        for (v, want) in cases {
            assert_eq!(short(v), want, "{v}");
        }
    }
}
