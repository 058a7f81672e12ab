//! Medians over repetitions, the result table, the gateway/reference ratios and the
//! targets printed beside the measurements (as text and, optionally, Markdown).

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
    pub mem_kib_per_call: Option<f64>,
    pub setup_rate: Option<f64>,
    pub setup_cpu_ms: Option<f64>,
    pub gen_late_p99_ms: Option<f64>,
    pub own_drops: u64,
    /// Most streams silent when the window began, over the step's runs.
    pub silent_streams: usize,
    /// Probes received "before" they were sent: the wall clock stepped during the run.
    pub clock_steps: u64,
    pub first_error: Option<String>,
}

/// The medians of every step, in the order the steps were first run.
pub fn steps(rows: &[Row]) -> Vec<Step> {
    let mut keys: Vec<(String, usize)> = Vec::new();
    for r in rows {
        if !keys.iter().any(|(s, c)| *s == r.system && *c == r.calls) {
            keys.push((r.system.clone(), r.calls));
        }
    }
    keys.into_iter()
        .map(|(system, calls)| {
            let of: Vec<&Row> = rows
                .iter()
                .filter(|r| r.system == system && r.calls == calls)
                .collect();
            let ok: Vec<&Measured> = of.iter().filter_map(|r| r.outcome.as_ref().ok()).collect();
            let med = |f: &dyn Fn(&Measured) -> Option<f64>| {
                median(&ok.iter().filter_map(|m| f(m)).collect::<Vec<_>>())
            };
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
                mem_kib_per_call: med(&|m| m.mem_kib_per_call),
                setup_rate: med(&|m| m.setup_rate),
                setup_cpu_ms: med(&|m| m.setup_cpu_ms),
                gen_late_p99_ms: med(&|m| {
                    m.media
                        .lateness
                        .quantile_us(0.99)
                        .map(|u| u as f64 / 1000.0)
                }),
                own_drops: ok.iter().map(|m| m.media.own_drops).sum(),
                silent_streams: ok.iter().map(|m| m.media.silent_streams).max().unwrap_or(0),
                clock_steps: ok.iter().map(|m| m.media.delay.negative()).sum(),
                first_error: of.iter().find_map(|r| r.outcome.as_ref().err().cloned()),
            }
        })
        .collect()
}

/// The one-line summary printed after each run.
pub fn run_line(m: &Measured) -> String {
    let mut out = format!(
        "loss {:.3} %  p50 {} ms  p99 {} ms",
        m.media.loss_pct(),
        ms(m.media.delay.quantile_us(0.5)),
        ms(m.media.delay.quantile_us(0.99))
    );
    if let Some(c) = m.cpu_per_1000 {
        let parts: Vec<String> = m
            .cpu_by_name
            .iter()
            .filter(|(_, p)| *p > 0.0)
            .map(|(n, p)| format!("{n} {p:.1}"))
            .collect();
        let _ = write!(
            out,
            "  CPU {c:.1} %/1000 streams ({} % of a core)",
            if parts.is_empty() {
                "0".into()
            } else {
                parts.join(", ")
            }
        );
    }
    if let Some(r) = m.setup_rate {
        let _ = write!(out, "  {r:.0} setups/s");
    }
    if let Some(n) = m.recordings {
        let _ = write!(out, "  {n} recordings");
    }
    let _ = write!(out, "  warm-up {:.1} s", m.media.warmup.as_secs_f64());
    if m.media.silent_streams > 0 {
        let _ = write!(
            out,
            "  ({} streams silent when the window began)",
            m.media.silent_streams
        );
    }
    if m.teardown_failed > 0 {
        let _ = write!(out, "  {} BYEs unanswered", m.teardown_failed);
    }
    let threads: Vec<String> = m
        .cpu_by_thread
        .iter()
        .filter(|(_, u, k)| u + k >= 0.1)
        .map(|(n, u, k)| format!("{n} {u:.1}+{k:.1}"))
        .collect();
    if !threads.is_empty() {
        let _ = write!(
            out,
            "\n      threads, user+kernel % of a core: {}",
            threads.join(", ")
        );
    }
    out
}

fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| "-".into(), |u| format!("{:.3}", u as f64 / 1000.0))
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
    "KiB/call",
    "setups/s",
    "setup CPU ms/call",
    "gen late p99 ms",
    "runs ok",
];

fn cells(s: &Step) -> Vec<String> {
    vec![
        s.system.clone(),
        s.calls.to_string(),
        s.streams.to_string(),
        f(s.loss_pct, 3),
        f(s.p50_ms, 3),
        f(s.p99_ms, 3),
        f(s.cpu_per_1000, 1),
        f(s.core_busy, 1),
        f(s.mem_kib_per_call, 1),
        f(s.setup_rate, 0),
        f(s.setup_cpu_ms, 3),
        f(s.gen_late_p99_ms, 2),
        format!("{}/{}", s.runs - s.failed, s.runs),
    ]
}

/// A table as aligned text or Markdown.
fn table(header: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---:|".repeat(header.len()));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        return out;
    }
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.len());
            }
        }
    }
    let line = |cols: Vec<&str>| {
        cols.iter()
            .enumerate()
            .map(|(i, c)| format!("{c:>width$}", width = w.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn find<'a>(steps: &'a [Step], system: &str, calls: usize) -> Option<&'a Step> {
    steps
        .iter()
        .find(|s| s.system == system && s.calls == calls && s.failed < s.runs)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Gateway/reference ratios per step (below 1 = the gateway needs less).
fn ratio_rows(steps: &[Step]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for c in step_calls(steps) {
        for gw in ["callseal", "callseal-norec"] {
            if let (Some(g), Some(r)) = (find(steps, gw, c), find(steps, "reference", c)) {
                out.push(vec![
                    format!("{gw}/reference"),
                    c.to_string(),
                    f(ratio(g.cpu_per_1000, r.cpu_per_1000), 2),
                    f(ratio(g.p99_ms, r.p99_ms), 2),
                    f(ratio(g.mem_kib_per_call, r.mem_kib_per_call), 2),
                    f(ratio(g.setup_rate, r.setup_rate), 2),
                ]);
            }
        }
    }
    out
}

fn step_calls(steps: &[Step]) -> Vec<usize> {
    let mut calls: Vec<usize> = steps.iter().map(|s| s.calls).collect();
    calls.sort_unstable();
    calls.dedup();
    calls
}

/// The whole report: medians, ratios, the noise note, the targets, warnings.
pub fn render(steps: &[Step], reps: usize, markdown: bool) -> String {
    let mut out = format!(
        "Medians over {reps} repetition(s). streams = RTP directions of 50 packets/s; CPU = utime+stime of every \
         process of the system (kamailio children and rtpengine included) as % of one core per 1000 streams; \
         KiB/call = growth of the system's proportional set size (PSS) per call; delay = one-way, \
         generator send to kernel receive stamp.\n\n"
    );
    out.push_str(&table(
        &HEADER,
        &steps.iter().map(cells).collect::<Vec<_>>(),
        markdown,
    ));
    let ratios = ratio_rows(steps);
    if !ratios.is_empty() {
        out.push_str(
            "\nGateway / reference (median against median; below 1 = the gateway needs less):\n\n",
        );
        out.push_str(&table(
            &[
                "ratio",
                "calls",
                "CPU/1000 streams",
                "p99 delay",
                "KiB/call",
                "setups/s",
            ],
            &ratios,
            markdown,
        ));
    }
    let _ = writeln!(out, "\n{NOISE}");
    let targets = targets(steps);
    if !targets.is_empty() {
        out.push_str("\nTargets:\n");
        if markdown {
            out.push('\n');
        }
        for t in &targets {
            let _ = writeln!(out, "{}{t}", if markdown { "- " } else { "  " });
        }
    }
    for s in steps {
        if s.own_drops > 0 {
            let _ = writeln!(
                out,
                "warning: {}: the generator's own sockets dropped {} datagrams; loss figures are overstated",
                s.system, s.own_drops
            );
        }
        if s.silent_streams > 0 {
            let _ = writeln!(
                out,
                "warning: {} at {} calls: up to {} of {} streams delivered nothing before the window: the system did not keep up",
                s.system, s.calls, s.silent_streams, s.streams
            );
        }
        if s.clock_steps > 0 {
            let _ = writeln!(
                out,
                "warning: {}: {} probes arrived before their send time: the wall clock stepped; delays are unreliable",
                s.system, s.clock_steps
            );
        }
        if let Some(l) = s.gen_late_p99_ms.filter(|l| *l > 5.0) {
            let _ = writeln!(
                out,
                "warning: {} at {} calls: the generator ran late (p99 {l:.1} ms): it may be saturated",
                s.system, s.calls
            );
        }
    }
    out
}

/// The targets beside what was measured; one line each.
pub fn targets(steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let calls = step_calls(steps);
    for &c in &calls {
        if let (Some(cs), Some(rf)) = (find(steps, "callseal", c), find(steps, "reference", c))
            && let (Some(a), Some(b)) = (cs.cpu_per_1000, rf.cpu_per_1000)
        {
            let r = a / b.max(1e-9);
            out.push(format!(
                    "CPU per 1000 recorded streams <= 0.67 x rtpengine's: {c} calls: callseal {a:.1} % / reference {b:.1} % = {r:.2} -> {}",
                    verdict(r <= 0.67)
                ));
        }
    }
    let carried =
        |s: &Step| s.p99_ms.is_some_and(|p| p < 10.0) && s.loss_pct.is_some_and(|l| l < 0.1);
    for sys in ["callseal", "reference"] {
        if !steps.iter().any(|s| s.system == sys && s.failed < s.runs) {
            continue;
        }
        let best = steps
            .iter()
            .filter(|s| s.system == sys && s.failed < s.runs && carried(s))
            .map(|s| s.streams)
            .max();
        out.push(format!(
            ">= 2000 streams on one core with p99 < 10 ms and loss < 0.1 %: {sys} carried {} -> {}",
            best.map_or("no step".into(), |b| format!("{b} streams")),
            verdict(best.is_some_and(|b| b >= 2000))
        ));
        if let Some(s) = steps
            .iter()
            .find(|s| s.system == sys && s.streams == 1000 && s.failed < s.runs)
        {
            out.push(format!(
                "p99 < 1 ms at 1000 streams: {sys} {} ms -> {}",
                f(s.p99_ms, 3),
                verdict(s.p99_ms.is_some_and(|p| p < 1.0))
            ));
        }
    }
    for &c in &calls {
        if let (Some(on), Some(off)) =
            (find(steps, "callseal", c), find(steps, "callseal-norec", c))
            && let (Some(a), Some(b)) = (on.cpu_per_1000, off.cpu_per_1000)
        {
            let extra = 100.0 * (a / b.max(1e-9) - 1.0);
            out.push(format!(
                    "recording on vs off <= 5 % more CPU: {c} calls: {a:.1} % vs {b:.1} % = {extra:+.1} % -> {}",
                    verdict(extra <= 5.0)
                ));
        }
    }
    for sys in ["callseal", "reference"] {
        if let Some(m) = steps
            .iter()
            .filter(|s| s.system == sys)
            .filter_map(|s| s.mem_kib_per_call)
            .reduce(f64::max)
        {
            let scale = if sys == "callseal" {
                ""
            } else {
                " (the gateway's target: for scale only)"
            };
            out.push(format!(
                "memory < 64 KiB per call{scale}: {sys} at most {m:.1} KiB -> {}",
                verdict(m < 64.0)
            ));
        }
    }
    for sys in ["callseal", "reference"] {
        if let Some(m) = steps
            .iter()
            .filter(|s| s.system == sys)
            .filter_map(|s| s.setup_rate)
            .reduce(f64::max)
        {
            let flow = if sys == "callseal" {
                "through the consent flow"
            } else {
                "(proxy, no consent flow: for scale only)"
            };
            out.push(format!(
                "call setups/s >= 300 {flow}: {sys} {m:.0}/s -> {}",
                verdict(m >= 300.0)
            ));
        }
    }
    out
}

/// Printed with every result table.
pub const NOISE: &str = "Differences under ~15 % are noise on shared machines: compare medians of repeated, alternating runs, not single runs.";

#[cfg(test)]
mod tests {
    use super::*;

    fn step(system: &str, calls: usize, cpu: f64, p99: f64, loss: f64) -> Step {
        Step {
            system: system.into(),
            calls,
            streams: 2 * calls,
            runs: 3,
            cpu_per_1000: Some(cpu),
            p99_ms: Some(p99),
            loss_pct: Some(loss),
            mem_kib_per_call: Some(40.0),
            setup_rate: Some(350.0),
            ..Default::default()
        }
    }

    #[test]
    fn targets_compare_gateway_and_reference_at_the_same_step() {
        let steps = [
            step("reference", 1000, 60.0, 3.0, 0.0),
            step("callseal", 1000, 30.0, 2.0, 0.0),
            step("callseal-norec", 1000, 29.0, 2.0, 0.0),
            step("callseal", 500, 40.0, 0.5, 0.0),
        ];
        let t = targets(&steps);
        assert!(t.iter().any(|l| l.contains("1000 calls: callseal 30.0 % / reference 60.0 % = 0.50 -> met")), "{t:?}");
        assert!(
            t.iter()
                .any(|l| l.contains("callseal carried 2000 streams -> met")),
            "{t:?}"
        );
        assert!(
            t.iter()
                .any(|l| l.contains("p99 < 1 ms at 1000 streams: callseal 0.500 ms -> met")),
            "{t:?}"
        );
        assert!(
            t.iter()
                .any(|l| l.contains("30.0 % vs 29.0 % = +3.4 % -> met")),
            "{t:?}"
        );
        let lossy = [
            step("reference", 1000, 60.0, 3.0, 0.0),
            step("callseal", 1000, 50.0, 12.0, 0.5),
        ];
        let t = targets(&lossy);
        assert!(t.iter().any(|l| l.contains("= 0.83 -> NOT MET")), "{t:?}");
        assert!(
            t.iter()
                .any(|l| l.contains("callseal carried no step -> NOT MET")),
            "{t:?}"
        );
    }

    #[test]
    fn report_has_ratios_and_the_noise_note_in_both_formats() {
        let steps = [
            step("reference", 250, 60.0, 4.0, 0.0),
            step("callseal", 250, 30.0, 2.0, 0.0),
        ];
        for md in [false, true] {
            let r = render(&steps, 3, md);
            assert!(r.contains(NOISE));
            assert!(r.contains("callseal/reference"), "{r}");
            let ratio_line = r
                .lines()
                .find(|l| l.contains("callseal/reference"))
                .unwrap_or_default();
            assert!(ratio_line.contains("0.50"), "{ratio_line}");
        }
        assert!(render(&steps, 3, true).contains("|---:|"));
    }

    #[test]
    fn failed_steps_are_excluded_from_ratios() {
        let mut bad = step("reference", 250, 60.0, 4.0, 0.0);
        bad.failed = 3;
        let steps = [bad, step("callseal", 250, 30.0, 2.0, 0.0)];
        assert!(ratio_rows(&steps).is_empty());
    }
}
