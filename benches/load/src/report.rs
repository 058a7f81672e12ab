//! Medians over repetitions, the result table, and the targets printed beside the
//! measurements (as text and, optionally, Markdown).

use std::fmt::Write as _;

use crate::run::Measured;
use crate::stats::median;

/// One finished run.
#[derive(Debug)]
pub struct Row {
    pub system: String,
    pub calls: usize,
    pub outcome: Result<Measured, String>,
}

/// Medians of one (system, calls) step.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub system: String,
    pub calls: usize,
    pub streams: usize,
    pub runs: usize,
    pub failed: usize,
    pub loss_pct: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cpu_per_1000: Option<f64>,
    pub core_busy: Option<f64>,
    pub rss_kib_per_call: Option<f64>,
    pub setup_rate: Option<f64>,
    pub setup_cpu_ms: Option<f64>,
    pub gen_late_p99_ms: Option<f64>,
    pub own_drops: u64,
    pub first_error: Option<String>,
}

pub fn steps(rows: &[Row]) -> Vec<Step> {
    let mut keys: Vec<(String, usize)> = Vec::new();
    for r in rows {
        if !keys.iter().any(|(s, c)| *s == r.system && *c == r.calls) {
            keys.push((r.system.clone(), r.calls));
        }
    }
    keys.into_iter()
        .map(|(system, calls)| {
            let of: Vec<&Row> = rows.iter().filter(|r| r.system == system && r.calls == calls).collect();
            let ok: Vec<&Measured> = of.iter().filter_map(|r| r.outcome.as_ref().ok()).collect();
            let med = |f: &dyn Fn(&Measured) -> Option<f64>| median(&ok.iter().filter_map(|m| f(m)).collect::<Vec<_>>());
            Step {
                system,
                calls,
                streams: ok.first().map_or(2 * calls, |m| m.streams),
                runs: of.len(),
                failed: of.len() - ok.len(),
                loss_pct: med(&|m| Some(m.media.loss_pct())),
                p50_ms: med(&|m| m.media.delay.quantile_us(0.5).map(|u| u as f64 / 1000.0)),
                p99_ms: med(&|m| m.media.delay.quantile_us(0.99).map(|u| u as f64 / 1000.0)),
                cpu_per_1000: med(&|m| m.cpu_per_1000),
                core_busy: med(&|m| m.core_busy_pct),
                rss_kib_per_call: med(&|m| m.rss_kib_per_call),
                setup_rate: med(&|m| m.setup_rate),
                setup_cpu_ms: med(&|m| m.setup_cpu_ms),
                gen_late_p99_ms: med(&|m| m.media.lateness.quantile_us(0.99).map(|u| u as f64 / 1000.0)),
                own_drops: ok.iter().map(|m| m.media.own_drops).sum(),
                first_error: of.iter().find_map(|r| r.outcome.as_ref().err().cloned()),
            }
        })
        .collect()
}

fn f(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$}"))
}

const HEADER: [&str; 13] = [
    "system",
    "calls",
    "streams",
    "loss %",
    "p50 ms",
    "p99 ms",
    "CPU %/1000 str",
    "core busy %",
    "RSS KiB/call",
    "setups/s",
    "setup CPU ms/call",
    "gen late p99 ms",
    "runs ok",
];

fn cells(s: &Step) -> [String; 13] {
    [
        s.system.clone(),
        s.calls.to_string(),
        s.streams.to_string(),
        f(s.loss_pct, 3),
        f(s.p50_ms, 3),
        f(s.p99_ms, 3),
        f(s.cpu_per_1000, 1),
        f(s.core_busy, 1),
        f(s.rss_kib_per_call, 1),
        f(s.setup_rate, 0),
        f(s.setup_cpu_ms, 3),
        f(s.gen_late_p99_ms, 2),
        format!("{}/{}", s.runs - s.failed, s.runs),
    ]
}

/// The result table as aligned text.
pub fn table_text(steps: &[Step]) -> String {
    let rows: Vec<[String; 13]> = steps.iter().map(cells).collect();
    let mut w = HEADER.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    let line = |cols: &[String]| cols.iter().enumerate().map(|(i, c)| format!("{c:>width$}", width = w[i])).collect::<Vec<_>>().join("  ");
    out.push_str(&line(&HEADER.map(String::from)));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// The result table as Markdown.
pub fn table_markdown(steps: &[Step]) -> String {
    let mut out = format!("| {} |\n|{}\n", HEADER.join(" | "), "---:|".repeat(HEADER.len()));
    for s in steps {
        let _ = writeln!(out, "| {} |", cells(s).join(" | "));
    }
    out
}

fn find<'a>(steps: &'a [Step], system: &str, calls: usize) -> Option<&'a Step> {
    steps.iter().find(|s| s.system == system && s.calls == calls && s.failed < s.runs)
}

/// The targets beside what was measured; one line each.
pub fn targets(steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    let mut calls: Vec<usize> = steps.iter().map(|s| s.calls).collect();
    calls.sort_unstable();
    calls.dedup();
    for &c in &calls {
        if let (Some(cs), Some(rf)) = (find(steps, "callseal", c), find(steps, "reference", c)) {
            if let (Some(a), Some(b)) = (cs.cpu_per_1000, rf.cpu_per_1000) {
                let r = a / b.max(1e-9);
                out.push(format!(
                    "CPU per 1000 recorded streams <= 0.67 x rtpengine: {c} calls: callseal {a:.1} % / reference {b:.1} % = {r:.2} -> {}",
                    verdict(r <= 0.67)
                ));
            }
        }
    }
    let carried = |s: &Step| s.p99_ms.is_some_and(|p| p < 10.0) && s.loss_pct.is_some_and(|l| l < 0.1);
    for sys in ["callseal", "reference"] {
        let best = steps.iter().filter(|s| s.system == sys && s.failed < s.runs && carried(s)).map(|s| s.streams).max();
        if steps.iter().any(|s| s.system == sys) {
            out.push(format!(
                ">= 2000 streams on one core with p99 < 10 ms and loss < 0.1 %: {sys} carried {} streams -> {}",
                best.map_or("no step".into(), |b| b.to_string()),
                verdict(best.is_some_and(|b| b >= 2000))
            ));
        }
        if let Some(s) = steps.iter().find(|s| s.system == sys && s.streams == 1000 && s.failed < s.runs) {
            out.push(format!(
                "p99 < 1 ms at 1000 streams: {sys} {} ms -> {}",
                f(s.p99_ms, 3),
                verdict(s.p99_ms.is_some_and(|p| p < 1.0))
            ));
        }
    }
    for &c in &calls {
        if let (Some(on), Some(off)) = (find(steps, "callseal", c), find(steps, "callseal-norec", c)) {
            if let (Some(a), Some(b)) = (on.cpu_per_1000, off.cpu_per_1000) {
                let extra = 100.0 * (a / b.max(1e-9) - 1.0);
                out.push(format!(
                    "recording on vs off <= 5 % more CPU: {c} calls: {a:.1} % vs {b:.1} % = {extra:+.1} % -> {}",
                    verdict(extra <= 5.0)
                ));
            }
        }
    }
    for sys in ["callseal", "reference"] {
        if let Some(m) = steps.iter().filter(|s| s.system == sys).filter_map(|s| s.rss_kib_per_call).reduce(f64::max) {
            out.push(format!("memory < 64 KiB per call: {sys} at most {m:.1} KiB -> {}", verdict(m < 64.0)));
        }
    }
    for sys in ["callseal", "reference"] {
        if let Some(m) = steps.iter().filter(|s| s.system == sys).filter_map(|s| s.setup_rate).reduce(f64::max) {
            let flow = if sys == "callseal" { "through the consent flow" } else { "(proxy, no consent flow)" };
            out.push(format!("call setups/s >= 300 {flow}: {sys} {m:.0}/s -> {}", verdict(m >= 300.0)));
        }
    }
    out
}

pub const NOISE: &str = "Differences under ~15 % are noise on shared machines: compare medians, not single runs.";
