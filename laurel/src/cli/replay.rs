//! `laurel replay [--defs FILE] [--json] [--apply]`: asks a running Laurel to fold the STATS
//! history again against a definitions file (or the definitions in force), shows progress,
//! and prints who would gain and who would not earn again; `--apply` applies the file and
//! grants the gains (see `routes/replay.rs` for where and how the work runs).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use laurel_schemas::{ReplayLine, ReplayProgress, ReplayReport, ReplayRequest};

use super::defs::{Client, Target};

/// `laurel replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The definitions file to replay against (the format of `laurel defs`); without it, the
    /// definitions in force. What the file leaves out stays as it is.
    #[arg(long, env = "LAUREL_REPLAY_DEFS")]
    pub defs: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long, env = "LAUREL_REPLAY_JSON")]
    pub json: bool,
    /// Apply the definitions and grant every gain (each exactly once, marked `replay`).
    /// Nothing is ever revoked.
    #[arg(long, env = "LAUREL_REPLAY_APPLY")]
    pub apply: bool,
    /// Player ids named per achievement.
    #[arg(long, env = "LAUREL_REPLAY_SAMPLES", default_value_t = 5)]
    pub samples: usize,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
}

/// Runs `laurel replay`: the report goes to stdout, progress to stderr.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let definitions = match &args.defs {
        None => None,
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(super::defs::read_file(path, &text)?)
        }
    };
    let request = ReplayRequest {
        definitions,
        apply: args.apply,
        samples: Some(args.samples),
    };
    let client = Client::new(&args.target)?;
    let mut response = client.start_stream("/v1/admin/replay", &request).await?;
    let mut progress = Progress::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut report = None;
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the replay's answer")?
    {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice::<ReplayLine>(&line)
                .context("the replay's answer has a line that is not a replay line")?
            {
                ReplayLine::Progress(p) => progress.show(&p),
                ReplayLine::Report(r) => report = Some(r),
                ReplayLine::Error { detail } => {
                    progress.finish();
                    bail!("the replay failed: {detail}");
                }
            }
        }
    }
    progress.finish();
    let Some(report) = report else {
        bail!(
            "the replay's answer ended before its report (was the server stopped?); run it again: an apply picks up where it stopped"
        );
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", render(&report));
    }
    Ok(())
}

/// A progress bar with rate and ETA on a terminal; plain lines every few seconds elsewhere.
struct Progress {
    bar: Option<(String, ProgressBar)>,
    terminal: bool,
    /// The phase, count and time of the last plain line.
    last_line: Option<(String, u64, Instant)>,
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            last_line: None,
        }
    }

    fn show(&mut self, p: &ReplayProgress) {
        let unit = match p.phase.as_str() {
            "apply" => "grants",
            _ => "entries",
        };
        if !self.terminal {
            let (due, repeated) = match &self.last_line {
                None => (true, false),
                Some((phase, done, at)) => (
                    *phase != p.phase || at.elapsed() >= Duration::from_secs(2),
                    *phase == p.phase && *done == p.done,
                ),
            };
            if !repeated && (due || p.done >= p.total) {
                eprintln!("replay: {} {}/{} {unit}", p.phase, p.done, p.total);
                self.last_line = Some((p.phase.clone(), p.done, Instant::now()));
            }
            return;
        }
        if self.bar.as_ref().is_none_or(|(phase, _)| *phase != p.phase) {
            if let Some((_, bar)) = self.bar.take() {
                bar.finish();
            }
            let bar = ProgressBar::new(p.total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>5}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}"
                ))
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(p.phase.clone());
            self.bar = Some((p.phase.clone(), bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_length(p.total.max(p.done));
            bar.set_position(p.done);
        }
    }

    fn finish(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish();
        }
    }
}

/// The report as a designer reads it.
pub fn render(report: &ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay {}: {} events of {} players folded in {:.1} s",
        report.replay_id,
        report.events,
        report.players,
        report.elapsed_ms as f64 / 1000.0
    );
    for change in &report.definitions_changed {
        let _ = writeln!(out, "  definition: {change}");
    }
    let names = |players: &[laurel_schemas::PlayerId], total: u64| {
        let mut line = players
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if total > players.len() as u64 {
            let _ = write!(line, ", ... ({} more)", total - players.len() as u64);
        }
        line
    };
    for a in &report.achievements {
        let _ = writeln!(out, "{} \"{}\"", a.id, a.title);
        if a.gain > 0 {
            // A repeatable or periodic achievement: more earns than players.
            let earns = if a.earns > a.gain {
                format!("{} earns, ", a.earns)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "    + {} would earn it ({earns}+{} points): {}",
                a.gain,
                a.points_gained,
                names(&a.gain_sample, a.gain)
            );
            if !a.rewards.is_empty() {
                let rewards = serde_json::to_string(&a.rewards).unwrap_or_default();
                let _ = writeln!(out, "      each earn pays {rewards}");
            }
        }
        if a.lose > 0 {
            let _ = writeln!(
                out,
                "    - {} hold it but would not earn it now ({} points, kept: nothing is revoked): {}",
                a.lose,
                a.points_at_stake,
                names(&a.lose_sample, a.lose)
            );
        }
    }
    if report.achievements.is_empty() {
        let _ = writeln!(out, "no achievement's holders would change");
    }
    let _ = write!(
        out,
        "{} gains (+{} points), {} would-be losses (not revoked)",
        report.gained, report.points_gained, report.lost
    );
    if report.applied {
        let _ = write!(
            out,
            "\napplied: {} definition changes in force, {} grants appended (each unlocks once)",
            report.definitions_changed.len(),
            report.granted
        );
    } else {
        let _ = write!(
            out,
            "\ndry run: nothing changed (--apply applies the definitions and grants the gains)"
        );
    }
    out
}
