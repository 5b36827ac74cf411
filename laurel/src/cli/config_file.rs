//! `--config FILE` (or `LAUREL_CONFIG`): a TOML file of settings for any `laurel` command.
//!
//! Keys are flag names (`data-dir = "/var/lib/laurel"`, `data_dir` alike). A command takes
//! the keys it has flags for and leaves the others (one file serves `serve`, `token` and
//! `defs`); a key no command knows is an error, so a typo does not go unnoticed.
//! Precedence: a flag on the command line, then its `LAUREL_...` environment variable, then
//! the file, then the default. The file's settings become command-line arguments for those
//! flags that neither the command line nor the environment set, so clap checks them as it
//! checks any argument.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::CommandFactory;

use super::Cli;

/// The config file named by `--config FILE`, `--config=FILE` or `LAUREL_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("LAUREL_CONFIG").map(PathBuf::from)
}

/// The subcommand chain named on the command line (`["defs", "apply"]`), as clap commands.
fn invoked(args: &[OsString]) -> Vec<clap::Command> {
    let mut chain = vec![Cli::command()];
    let mut skip_value = false;
    for arg in args.iter().skip(1) {
        let arg = arg.to_string_lossy();
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg == "--config" {
            skip_value = true;
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        let next = chain
            .last()
            .and_then(|c| c.find_subcommand(arg.as_ref()))
            .cloned();
        match next {
            Some(command) => chain.push(command),
            None => break,
        }
    }
    chain
}

/// Every long flag of every command, for telling a typo from a key of another command.
fn every_flag(command: &clap::Command, out: &mut Vec<String>) {
    out.extend(
        command
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string)),
    );
    for sub in command.get_subcommands() {
        every_flag(sub, out);
    }
}

/// `args` with the config file's settings added (see the module docs). Unchanged when no
/// file is named.
pub fn with_config_file(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let chain = invoked(&args);
    let command = chain.last().expect("the root at least");
    let mut known = Vec::new();
    every_flag(&Cli::command(), &mut known);
    let given = |long: &str| {
        args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{long}") || a.starts_with(&format!("--{long}="))
        })
    };
    let mut out = args.clone();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        if long == "config" {
            bail!("{}: `config` cannot name another file", path.display());
        }
        if !known.contains(&long) {
            bail!(
                "{}: unknown setting `{key}` (settings are the flags of `laurel ... --help`)",
                path.display()
            );
        }
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
        else {
            continue; // another command's setting
        };
        let from_env = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some());
        if given(&long) || from_env {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if !takes_value => {
                    if *b {
                        out.push(format!("--{long}").into());
                    }
                    continue;
                }
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!(
                    "{}: `{key}` must be a string, number or boolean, not {}",
                    path.display(),
                    other.type_str()
                ),
            };
            if !takes_value {
                bail!(
                    "{}: `{key}` is a switch: write true or false",
                    path.display()
                );
            }
            out.push(format!("--{long}").into());
            out.push(text.into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn with_file(content: &str, line: &str) -> anyhow::Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("laurel.toml");
        std::fs::write(&path, content).unwrap();
        let line = format!("{line} --config {}", path.display());
        Ok(with_config_file(args(&line))?
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[test]
    fn the_command_line_wins_and_other_commands_settings_are_left() {
        let out = with_file(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/laurel\"\nmax-batch = 500\ndry-run = true\n",
            "laurel serve --data-dir /here",
        )
        .unwrap();
        let added = &out[6..];
        assert_eq!(added, ["--listen", "0.0.0.0:9000", "--max-batch", "500"]);
    }

    #[test]
    fn the_example_file_is_valid_for_serve() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/laurel.toml");
        let out = with_config_file(args(&format!("laurel serve --config {example}"))).unwrap();
        assert!(out.len() > 4, "the example sets something");
        let cli = Cli::try_parse_from(out).unwrap();
        let crate::cli::Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.limits.max_batch, 1000);
        assert_eq!(serve.checkpoint_interval_ms, 5000);
    }

    /// The handoff is on unless turned off: by `--handoff=false`, or `handoff = false` in
    /// the file; `--handoff` alone still means on.
    #[test]
    fn the_handoff_is_on_by_default_and_turns_off() {
        let handoff = |out: Vec<String>| {
            let crate::cli::Command::Serve(serve) = Cli::try_parse_from(out).unwrap().command
            else {
                panic!("serve")
            };
            serve.handoff
        };
        let line = |l: &str| {
            args(l)
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
        };
        assert!(handoff(line("laurel serve").collect()));
        assert!(handoff(line("laurel serve --handoff").collect()));
        assert!(!handoff(line("laurel serve --handoff=false").collect()));
        assert!(!handoff(
            with_file("handoff = false\n", "laurel serve").unwrap()
        ));
        assert!(handoff(
            with_file("handoff = true\n", "laurel serve").unwrap()
        ));
    }

    #[test]
    fn switches_and_typos() {
        let out = with_file(
            "dry_run = true\nprune = false\n",
            "laurel defs apply f.json",
        )
        .unwrap();
        assert_eq!(&out[6..], ["--dry-run"]);
        let first = with_config_file(args("laurel --config /nonexistent serve"));
        assert!(first.is_err(), "the file is read wherever --config stands");
        let typo = with_file("lisen = \"x\"\n", "laurel serve").unwrap_err();
        assert!(
            typo.to_string().contains("unknown setting `lisen`"),
            "{typo}"
        );
        let wrong = with_file("dry-run = \"yes\"\n", "laurel defs apply f.json").unwrap_err();
        assert!(wrong.to_string().contains("is a switch"), "{wrong}");
    }
}
