//! The docs run (docs/testing.md, "The docs test"): every shell block of README.md and
//! docs/*.md says, in an HTML comment on the line before it, what this test does with it,
//! so a doc and the server cannot disagree unnoticed:
//!
//! - `<!-- doc-test: run -->`: its commands run, one after another, in one bash (a
//!   terminal: variables carry over to the document's next `run` block), in a fresh
//!   directory with the `laurel` under test first on `PATH`; a `# -> TEXT` line after a
//!   command is what the command prints (several lines for several lines of output);
//! - `<!-- doc-test: background -->`: a terminal of its own that keeps running (a server,
//!   a live stream); the next block runs once its output shows its first `# ->` line, and
//!   at the end its output must start with what its `# ->` lines show;
//! - `<!-- doc-test: flags -->`: not run (production paths, other machines), but each
//!   `laurel` command in it is parsed by `laurel` (with `--help` added), so a renamed or
//!   mistyped flag fails;
//! - `<!-- doc-test: skip REASON -->`: neither (builds, installs).
//!
//! A shell block with no marker fails the test. In a `# ->` line, `...` stands for any text
//! (on one line or several); UUIDs and RFC 3339 times compare equal to any other. The ports
//! the docs use (8080, 8081, 8082, 4222, 8222) are replaced by free ones.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use laurel_tests::laurel_bin;

/// What the docs test does with a block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Run,
    Background,
    Flags,
    Skip,
}

/// A shell block of a document.
#[derive(Debug)]
struct Block {
    /// `file:line` of its opening fence.
    at: String,
    mode: Mode,
    steps: Vec<Step>,
}

/// A command of a block and the output the document shows for it.
#[derive(Debug)]
struct Step {
    at: String,
    command: String,
    expected: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The documents whose shell blocks the test knows.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![repo().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// The shell blocks of `path`, or the places where a block has no marker.
fn blocks(path: &Path) -> Result<Vec<Block>, Vec<String>> {
    let name = path
        .strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (mut found, mut unmarked) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let lang = fence.trim_start_matches('`').trim();
        let start = i;
        i += 1;
        let body_start = i;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            i += 1;
        }
        let body = &lines[body_start..i.min(lines.len())];
        i += 1;
        if !matches!(lang, "sh" | "bash" | "shell" | "console") {
            continue;
        }
        let at = format!("{name}:{}", start + 1);
        let marker = lines[..start]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- doc-test:"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(str::trim);
        let mode = match marker.map(|m| m.split_whitespace().next().unwrap_or("")) {
            Some("run") => Mode::Run,
            Some("background") => Mode::Background,
            Some("flags") => Mode::Flags,
            Some("skip") if marker.is_some_and(|m| m.len() > "skip ".len()) => Mode::Skip,
            _ => {
                unmarked.push(at);
                continue;
            }
        };
        found.push(Block {
            steps: steps(&name, body_start, body),
            at,
            mode,
        });
    }
    if unmarked.is_empty() {
        Ok(found)
    } else {
        Err(unmarked)
    }
}

/// The commands of a block (a line ending in `\` goes on), each with its `# ->` lines.
fn steps(name: &str, first_line: usize, body: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut pending: Option<Step> = None;
    for (n, line) in body.iter().enumerate() {
        if let Some(step) = pending.as_mut() {
            step.command.push('\n');
            step.command.push_str(line);
            if !line.ends_with('\\') {
                steps.extend(pending.take());
            }
            continue;
        }
        let trimmed = line.trim();
        if let Some(shown) = trimmed.strip_prefix("# ->") {
            let step = steps.last_mut().unwrap_or_else(|| {
                panic!("{name}:{}: `# ->` before any command", first_line + n + 1)
            });
            step.expected
                .push(shown.strip_prefix(' ').unwrap_or(shown).to_string());
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let step = Step {
            at: format!("{name}:{}", first_line + n + 1),
            command: line.to_string(),
            expected: Vec::new(),
        };
        if line.ends_with('\\') {
            pending = Some(step);
        } else {
            steps.push(step);
        }
    }
    steps.extend(pending);
    steps
}

/// `text` with UUIDs and RFC 3339 times masked, trailing spaces and blank edges trimmed.
fn normalize(text: &str) -> String {
    static MASKS: std::sync::OnceLock<[(regex::Regex, &str); 2]> = std::sync::OnceLock::new();
    let masks = MASKS.get_or_init(|| {
        [
            (
                regex::Regex::new(
                    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                )
                .unwrap(),
                "<uuid>",
            ),
            (
                regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
                    .unwrap(),
                "<time>",
            ),
        ]
    });
    let mut text = text.replace("\r\n", "\n");
    for (re, by) in masks {
        text = re.replace_all(&text, *by).into_owned();
    }
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_matches('\n').to_string()
}

/// Whether `actual` is what `shown` shows (`...` standing for any text); with `prefix`,
/// whether it starts so.
fn shows(shown: &str, actual: &str, prefix: bool) -> bool {
    let (shown, actual) = (normalize(shown), normalize(actual));
    let pieces: Vec<&str> = shown.split("...").collect();
    let mut rest = actual.as_str();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(piece) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == last && !prefix {
            return rest.len() >= piece.len() && rest.ends_with(piece);
        } else {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
    }
    prefix || rest.is_empty()
}

/// A bash process fed commands on its stdin, its output (stderr too) collected.
struct Terminal {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<String>>,
    commands: usize,
}

impl Terminal {
    fn open(dir: &Path, env: &[(String, String)]) -> Self {
        use std::os::unix::process::CommandExt as _;
        let mut child = Command::new("bash")
            .args(["--norc", "--noprofile"])
            .current_dir(dir)
            // As a newcomer's shell: Laurel's own default logging.
            .env_remove("LAUREL_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "exec 2>&1").unwrap();
        Terminal {
            child,
            stdin,
            output,
            commands: 0,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Types `command`, without waiting.
    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Runs `command` and returns what it printed.
    fn run(&mut self, command: &str, at: &str) -> String {
        self.commands += 1;
        let done = format!("@@doc-test-done-{}@@", self.commands);
        let start = self.output.lock().unwrap().len();
        self.send(&format!("{command}\nprintf '\\n{done}\\n'"));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            {
                let output = self.output.lock().unwrap();
                if let Some(end) = output[start..].find(&done) {
                    return output[start..start + end].to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{at}: `{command}` did not finish within 90 s; it printed:\n{}",
                &self.output()[start..]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // The terminal and whatever it left running in the background.
        // `--` first: procps' kill reads `-KILL -1234` as signal options and sends to -1,
        // every process there is.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// The ports the docs use, each mapped to a free one.
fn ports() -> HashMap<&'static str, String> {
    ["8080", "8081", "8082", "4222", "8222"]
        .into_iter()
        .map(|p| {
            let free = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            (p, free.to_string())
        })
        .collect()
}

/// `text` with each of the docs' ports (as a whole number) replaced by its free one.
fn with_ports(text: &str, ports: &HashMap<&str, String>) -> String {
    let mut out = text.to_string();
    for (from, to) in ports {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(from) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + from.len()..].chars().next();
            result.push_str(&rest[..at]);
            let whole = !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit());
            result.push_str(if whole { to } else { from });
            rest = &rest[at + from.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Runs a document's `run` and `background` blocks in a fresh directory; returns what
/// differed from what the document shows.
fn run_document(blocks: &[Block]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    // Where the docs say to be: the repository's files the commands name.
    std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("examples")).unwrap();
    let ports = ports();
    let bin_dir = laurel_bin().parent().unwrap().to_path_buf();
    let env = vec![
        (
            "PATH".to_string(),
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        // The defaults the docs rely on, on the free port in place of 8080: `laurel serve`
        // listens there, `laurel defs` and `replay` talk to it.
        (
            "LAUREL_LISTEN".to_string(),
            format!("127.0.0.1:{}", ports["8080"]),
        ),
        (
            "LAUREL_URL".to_string(),
            format!("http://127.0.0.1:{}", ports["8080"]),
        ),
    ];
    let mut failures = Vec::new();
    let mut terminal = Terminal::open(dir.path(), &env);
    let mut background: Vec<(&Block, Terminal)> = Vec::new();
    for block in blocks {
        match block.mode {
            Mode::Run => {
                for step in &block.steps {
                    let output = terminal.run(&with_ports(&step.command, &ports), &step.at);
                    let shown = with_ports(&step.expected.join("\n"), &ports);
                    if !step.expected.is_empty() && !shows(&shown, &output, false) {
                        failures.push(format!(
                            "{}: `{}`\n  the doc shows:\n{}\n  it printed:\n{}",
                            step.at,
                            step.command,
                            indent(&shown),
                            indent(&output)
                        ));
                    }
                }
            }
            Mode::Background => {
                let mut term = Terminal::open(dir.path(), &env);
                for step in &block.steps {
                    term.send(&with_ports(&step.command, &ports));
                }
                // Whoever reads the docs waits until it shows its first line.
                if let Some(first) = block.steps.iter().find_map(|s| s.expected.first()) {
                    let first = with_ports(first, &ports);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !term.output().lines().any(|l| shows(&first, l, false)) {
                        assert!(
                            Instant::now() < deadline,
                            "{}: never showed `{first}`; it printed:\n{}",
                            block.at,
                            term.output()
                        );
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                background.push((block, term));
            }
            Mode::Flags | Mode::Skip => {}
        }
    }
    for (block, term) in &background {
        let shown: Vec<String> = block
            .steps
            .iter()
            .flat_map(|s| s.expected.clone())
            .collect();
        let shown = with_ports(&shown.join("\n"), &ports);
        // A server or a stream goes on printing: what it printed starts as shown.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !shows(&shown, &term.output(), true) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !shows(&shown, &term.output(), true) {
            failures.push(format!(
                "{} (in the background)\n  the doc shows:\n{}\n  it printed:\n{}",
                block.at,
                indent(&shown),
                indent(&term.output())
            ));
        }
    }
    failures
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Every shell block says what the docs test does with it.
#[test]
fn every_shell_block_of_the_docs_is_run_parsed_or_skipped_for_a_reason() {
    let unmarked: Vec<String> = documents()
        .iter()
        .filter_map(|d| blocks(d).err())
        .flatten()
        .collect();
    assert!(
        unmarked.is_empty(),
        "shell blocks without a `<!-- doc-test: run|background|flags|skip REASON -->` line before them:\n{}",
        unmarked.join("\n")
    );
}

/// The README's quick start and walk, pasted into terminals as a newcomer would, print
/// what the README shows.
#[test]
fn the_readme_walk_prints_what_the_readme_shows() {
    let blocks = blocks(&repo().join("README.md")).unwrap();
    assert!(
        blocks.iter().filter(|b| b.mode == Mode::Run).count() >= 2,
        "the README's walk is marked `run`"
    );
    let failures = run_document(&blocks);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each document's runnable blocks (docs/deploy.md's one machine: a real nats-server,
/// two engines, two gateways) print what the document shows.
#[test]
fn the_runnable_blocks_of_docs_print_what_the_docs_show() {
    let mut ran = 0;
    for doc in documents().iter().skip(1) {
        let blocks = blocks(doc).unwrap();
        if !blocks
            .iter()
            .any(|b| matches!(b.mode, Mode::Run | Mode::Background))
        {
            continue;
        }
        ran += 1;
        let failures = run_document(&blocks);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
    assert!(
        ran >= 1,
        "docs/deploy.md's one-machine walk is marked `run`"
    );
}

/// The `laurel` commands of every block (run or not) parse: each flag exists and each value
/// is of its kind.
#[test]
fn every_laurel_command_in_the_docs_parses() {
    let mut checked = 0;
    for doc in documents() {
        for block in blocks(&doc).unwrap() {
            if block.mode == Mode::Skip {
                continue;
            }
            for step in &block.steps {
                let command = step.command.replace("\\\n", " ");
                let command = command.trim().trim_end_matches('&').trim();
                // The command itself: no trailing comment, no redirection.
                let command = command.split(" # ").next().unwrap_or(command);
                let command = command.split(" > ").next().unwrap_or(command).trim();
                let Some(args) = command.strip_prefix("laurel ") else {
                    continue;
                };
                let out = Command::new("bash")
                    .arg("-c")
                    .arg(format!("exec \"$LAUREL\" {args} --help"))
                    .env("LAUREL", laurel_bin())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}: `{command}` does not parse:\n{}",
                    step.at,
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} laurel commands found in the docs"
    );
}

#[test]
fn what_a_doc_shows_matches_with_ellipses_and_masks() {
    assert!(shows(r#"{"a":1,...}"#, r#"{"a":1,"b":2}"#, false));
    assert!(!shows(r#"{"a":1,...}"#, r#"{"a":2,"b":2}"#, false));
    assert!(shows(
        "id: 7a223a10-8297-53b5-ad74-12211b8a549b at 2026-12-04T05:37:56.17Z",
        "id: 00000000-0000-4000-8000-000000000000 at 2027-01-01T00:00:00Z",
        false
    ));
    assert!(!shows("token 8:1", "token 8:2", false));
    assert!(!shows("a", "ab", false));
    assert!(shows("a", "ab", true));
    assert!(shows(
        "...ready on x...",
        "log\nINFO ready on x addr",
        false
    ));
    assert_eq!(
        with_ports(
            "localhost:8080 18080 8:1",
            &HashMap::from([("8080", "5".to_string())])
        ),
        "localhost:5 18080 8:1"
    );
}

/// The subcommand paths of `laurel` (`[]`, `["serve"]`, `["defs", "apply"]`...), from its
/// own help.
fn subcommands(path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let help = Command::new(laurel_bin())
        .args(&path)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    out.push(path.clone());
    let listed = help
        .split("\nCommands:\n")
        .nth(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or("").to_string())
        .unwrap_or_default();
    for line in listed.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if !name.is_empty() && name != "help" {
            let mut next = path.clone();
            next.push(name.to_string());
            subcommands(next, out);
        }
    }
}

/// One story of what is done and what is next: the README's Status table. The help texts
/// and the README's prose say nothing of their own about it.
#[test]
fn only_the_status_table_says_what_is_still_to_come() {
    let words =
        regex::Regex::new(r"(?i)\bstill\b|\bnot yet\b|\bstand(s)? ?by\b|\byet to\b|\bto come\b")
            .unwrap();
    let mut paths = Vec::new();
    subcommands(Vec::new(), &mut paths);
    assert!(paths.len() >= 12, "{paths:?}");
    for path in &paths {
        for flag in ["-h", "--help"] {
            let out = Command::new(laurel_bin())
                .args(path)
                .arg(flag)
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&out.stdout);
            if let Some(found) = words.find(&help) {
                panic!(
                    "`laurel {} {flag}` says `{}`: what is done or next is said in the README's Status table only",
                    path.join(" "),
                    found.as_str()
                );
            }
        }
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for (n, line) in readme.lines().enumerate() {
        let in_table = line.starts_with('|');
        if let Some(found) = words.find(line).filter(|_| !in_table) {
            panic!(
                "README.md:{}: `{}` outside the Status table: {line}",
                n + 1,
                found.as_str()
            );
        }
    }
    assert!(
        readme.contains("| still to come |"),
        "the Status table has its `still to come` row"
    );
}

/// `laurel --version` names the commit it was built from; CHANGELOG.md keeps Keep a
/// Changelog's shape with a section for the version being built.
#[test]
fn the_version_names_its_commit_and_the_changelog_its_version() {
    let out = Command::new(laurel_bin())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(
        version.trim(),
        format!(
            "laurel {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            head.trim()
        )
    );

    let changelog = std::fs::read_to_string(repo().join("CHANGELOG.md")).unwrap();
    assert!(
        changelog.starts_with("# Changelog\n"),
        "Keep a Changelog's title"
    );
    assert!(
        changelog.contains("\n## [Unreleased]\n"),
        "an Unreleased section"
    );
    assert!(
        changelog.contains(&format!("\n## [{}] - ", env!("CARGO_PKG_VERSION"))),
        "a section for {}",
        env!("CARGO_PKG_VERSION")
    );
    let kinds = [
        "Added",
        "Changed",
        "Deprecated",
        "Removed",
        "Fixed",
        "Security",
    ];
    for line in changelog.lines().filter(|l| l.starts_with("### ")) {
        assert!(
            kinds.contains(&&line[4..]),
            "`{line}` is not a Keep a Changelog kind"
        );
    }
}
