//! `laurel defs apply FILE` / `laurel defs export`: definitions as code. A reviewed JSON file
//! in the game's repository holds every stat and achievement; `apply` prints the diff
//! against a running Laurel and makes it so through `PUT /v1/admin/definitions`, which
//! checks the file whole (on a dry run too) and applies it in one step, all or nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use laurel_schemas::{AchievementDefinition, AchievementSpec, StatDefinition};
use serde::Serialize;
use serde_json::Value;

use super::keys::DevKeyArgs;
use laurel_gateway::auth::{ADMIN_SCOPE, mint_dev_token};

/// The definitions file.
pub use laurel_schemas::DefinitionsFile as DefsFile;

/// What a running Laurel holds, with versions.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Stat definitions by name.
    pub stats: BTreeMap<String, StatDefinition>,
    /// Achievement definitions by id, archived ones included.
    pub achievements: BTreeMap<String, AchievementDefinition>,
    /// Seasons by id.
    pub seasons: BTreeMap<String, laurel_schemas::SeasonDefinition>,
}

/// One change `apply` makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Define a new season, or change one's window (`changes` lists the fields).
    PutSeason {
        /// The season.
        id: String,
        /// Whether it exists already.
        exists: bool,
        /// `field: old -> new` lines (empty for a new season).
        changes: Vec<String>,
    },
    /// Define a new stat, or change one (`changes` lists the fields).
    PutStat {
        /// The stat.
        name: String,
        /// Whether it exists already.
        exists: bool,
        /// `field: old -> new` lines (empty for a new stat).
        changes: Vec<String>,
    },
    /// Define a new achievement, change one, or bring back an archived one.
    PutAchievement {
        /// The achievement.
        id: String,
        /// The version it replaces (`If-Match`), when it exists.
        replaces: Option<u64>,
        /// `field: old -> new` lines (empty for a new achievement).
        changes: Vec<String>,
    },
    /// Archive an achievement the file no longer holds (only with `--prune`).
    Archive {
        /// The achievement.
        id: String,
    },
}

/// The diff between the file and what runs, in the order it can be applied (seasons, then
/// stats, then achievements after those they require).
pub fn diff(file: &DefsFile, current: &Current, prune: bool) -> Vec<Change> {
    let mut out = Vec::new();
    for (id, spec) in &file.seasons {
        let running = current
            .seasons
            .get(id)
            .map(|def| laurel_schemas::SeasonSpec {
                starts_at: def.starts_at,
                ends_at: def.ends_at,
            });
        // The same instants in another offset are the same window.
        let changes = match &running {
            Some(old) if old.starts_at != spec.starts_at || old.ends_at != spec.ends_at => {
                fields_changed(old, spec)
            }
            _ => Vec::new(),
        };
        if running.is_none() || !changes.is_empty() {
            out.push(Change::PutSeason {
                id: id.clone(),
                exists: running.is_some(),
                changes,
            });
        }
    }
    for (name, spec) in &file.stats {
        match current.stats.get(name) {
            None => out.push(Change::PutStat {
                name: name.clone(),
                exists: false,
                changes: Vec::new(),
            }),
            Some(def) => {
                let changes = fields_changed(&def.to_spec(), spec);
                if !changes.is_empty() {
                    out.push(Change::PutStat {
                        name: name.clone(),
                        exists: true,
                        changes,
                    });
                }
            }
        }
    }
    for id in dependency_order(&file.achievements) {
        let spec = &file.achievements[&id];
        match current.achievements.get(&id) {
            None => out.push(Change::PutAchievement {
                id,
                replaces: None,
                changes: Vec::new(),
            }),
            Some(def) => {
                let mut changes = fields_changed(&def.to_spec(), spec);
                if def.archived {
                    changes.insert(0, "archived: true -> false".into());
                }
                if !changes.is_empty() {
                    out.push(Change::PutAchievement {
                        id,
                        replaces: Some(def.version),
                        changes,
                    });
                }
            }
        }
    }
    if prune {
        for (id, def) in &current.achievements {
            if !def.archived && !file.achievements.contains_key(id) {
                out.push(Change::Archive { id: id.clone() });
            }
        }
    }
    out
}

/// Achievement ids with every achievement after those it requires (when they are in the
/// file too); ties and cycles fall back to id order (the server refuses a cycle).
fn dependency_order(achievements: &BTreeMap<String, AchievementSpec>) -> Vec<String> {
    let mut placed: Vec<String> = Vec::with_capacity(achievements.len());
    let mut left: Vec<&String> = achievements.keys().collect();
    while !left.is_empty() {
        let ready = |id: &&String| {
            achievements[*id].requires.iter().all(|r| {
                !achievements.contains_key(r.as_str()) || placed.iter().any(|p| p == r.as_str())
            })
        };
        let (now, later): (Vec<&String>, Vec<&String>) = left.iter().partition(|id| ready(id));
        if now.is_empty() {
            placed.extend(later.into_iter().cloned());
            break;
        }
        placed.extend(now.into_iter().cloned());
        left = later;
    }
    placed
}

/// `field: old -> new` for each top-level field that differs, in JSON.
fn fields_changed<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let as_map = |v: &T| match serde_json::to_value(v) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (old.get(k), new.get(k));
            (a != b).then(|| {
                let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
                format!("{k}: {} -> {}", show(a), show(b))
            })
        })
        .collect()
}

/// The diff as a reviewer reads it.
pub fn render(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        let (sign, what, details): (&str, String, &[String]) = match change {
            Change::PutSeason {
                id,
                exists,
                changes,
            } => (
                if *exists { "~" } else { "+" },
                format!("season {id}"),
                changes,
            ),
            Change::PutStat {
                name,
                exists,
                changes,
            } => (
                if *exists { "~" } else { "+" },
                format!("stat {name}"),
                changes,
            ),
            Change::PutAchievement {
                id,
                replaces,
                changes,
            } => (
                if replaces.is_some() { "~" } else { "+" },
                format!("achievement {id}"),
                changes,
            ),
            Change::Archive { id } => ("-", format!("achievement {id} (archive)"), &[]),
        };
        let _ = writeln!(out, "{sign} {what}");
        for detail in details {
            let _ = writeln!(out, "    {detail}");
        }
    }
    let _ = write!(
        out,
        "{} change{}",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    );
    out
}

/// A definitions file's contents; an error names the file and the field's path
/// (`achievements.WINTER_HERO.points: invalid type...`).
pub fn read_file(file: &std::path::Path, text: &[u8]) -> anyhow::Result<DefsFile> {
    let mut json = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let at = e.path().to_string();
        let at = if at == "." {
            String::new()
        } else {
            format!("{at}: ")
        };
        anyhow::anyhow!(
            "{} is not a definitions file: {at}{}",
            file.display(),
            e.into_inner()
        )
    })
}

/// Which Laurel, and as whom.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The Laurel HTTP API.
    #[arg(long, env = "LAUREL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin token (`laurel:admin`); without it, one is made from the data dir's dev key.
    #[arg(long, env = "LAUREL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The data dir whose dev key makes the token when `--token` is not given.
    #[arg(long, env = "LAUREL_DATA_DIR", default_value = "./laurel-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dev_key: DevKeyArgs,
    /// A CA certificate (PEM) to trust for an `https://` `--url`, besides the public roots
    /// (a server whose certificate a private CA signed).
    #[arg(long, env = "LAUREL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// `laurel defs`.
#[derive(Debug, Subcommand)]
pub enum DefsCommand {
    /// Print the diff between FILE and the running definitions, then apply it.
    Apply {
        /// The definitions file (JSON: `{"stats": {...}, "achievements": {...}}`).
        file: PathBuf,
        /// Print the diff only; change nothing.
        #[arg(long, env = "LAUREL_DEFS_DRY_RUN")]
        dry_run: bool,
        /// Archive achievements that are not in the file.
        #[arg(long, env = "LAUREL_DEFS_PRUNE")]
        prune: bool,
        #[command(flatten)]
        #[allow(missing_docs)]
        target: Target,
    },
    /// Print the running definitions (archived achievements left out) as a definitions file.
    Export {
        #[command(flatten)]
        #[allow(missing_docs)]
        target: Target,
    },
}

/// An admin API client.
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    pub(crate) fn new(target: &Target) -> anyhow::Result<Self> {
        let token = match &target.token {
            Some(token) => token.clone(),
            None => {
                let key = target
                    .dev_key
                    .key(&target.data_dir, false)
                    .context("no --token given, and no dev key to make one")?;
                mint_dev_token(&key, "laurel-defs", ADMIN_SCOPE, 300)
            }
        };
        // No overall timeout: a replay's answer streams for as long as the work takes.
        let mut http =
            reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10));
        if let Some(path) = &target.ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificate", path.display()))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: http.build()?,
            url: target.url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Posts `body` as JSON and returns the response once its status is known, for its
    /// body to be read as it arrives; a refusal is an error with its problem document.
    pub(crate) async fn start_stream<T: Serialize>(
        &self,
        path: &str,
        body: &T,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await?;
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            bail!(
                "POST {path}: {status}: {}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Ok(response)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        if_match: Option<u64>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .timeout(std::time::Duration::from_secs(30))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        if let Some(version) = if_match {
            request = request.header(reqwest::header::IF_MATCH, format!("\"{version}\""));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Ok(json)
    }

    async fn current(&self) -> anyhow::Result<Current> {
        let stats: Vec<StatDefinition> = serde_json::from_value(
            self.send(reqwest::Method::GET, "/v1/admin/stats", None, None)
                .await?["stats"]
                .take(),
        )?;
        let achievements: Vec<AchievementDefinition> = serde_json::from_value(
            self.send(reqwest::Method::GET, "/v1/admin/achievements", None, None)
                .await?["achievements"]
                .take(),
        )?;
        let seasons: Vec<laurel_schemas::SeasonDefinition> = serde_json::from_value(
            self.send(reqwest::Method::GET, "/v1/admin/seasons", None, None)
                .await?["seasons"]
                .take(),
        )?;
        Ok(Current {
            seasons: seasons.into_iter().map(|d| (d.id.to_string(), d)).collect(),
            stats: stats.into_iter().map(|d| (d.name.to_string(), d)).collect(),
            achievements: achievements
                .into_iter()
                .map(|d| (d.id.to_string(), d))
                .collect(),
        })
    }
}

/// The running definitions as a file (archived achievements left out).
pub fn export(current: &Current) -> DefsFile {
    DefsFile {
        stats: current
            .stats
            .iter()
            .map(|(name, d)| (name.clone(), d.to_spec()))
            .collect(),
        achievements: current
            .achievements
            .iter()
            .filter(|(_, d)| !d.archived)
            .map(|(id, d)| (id.clone(), d.to_spec()))
            .collect(),
        seasons: current
            .seasons
            .iter()
            .map(|(id, d)| (id.clone(), d.to_spec()))
            .collect(),
    }
}

/// Runs a `laurel defs` command, printing to stdout.
pub async fn run(command: DefsCommand) -> anyhow::Result<()> {
    match command {
        DefsCommand::Export { target } => {
            let client = Client::new(&target)?;
            let file = export(&client.current().await?);
            println!("{}", serde_json::to_string_pretty(&file)?);
        }
        DefsCommand::Apply {
            file,
            dry_run,
            prune,
            target,
        } => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let wanted = read_file(&file, &text)?;
            let client = Client::new(&target)?;
            let changes = diff(&wanted, &client.current().await?, prune);
            if changes.is_empty() {
                println!(
                    "nothing to change: the definitions in force match {}",
                    file.display()
                );
                return Ok(());
            }
            println!("{}", render(&changes));
            // The server checks the file whole and applies it in one step, or not at all.
            let body = serde_json::json!({
                "definitions": wanted,
                "prune": prune,
                "dry_run": dry_run,
            });
            let answer = client
                .send(
                    reqwest::Method::PUT,
                    "/v1/admin/definitions",
                    Some(serde_json::to_vec(&body)?),
                    None,
                )
                .await?;
            let made = answer["changes"].as_array().map_or(0, Vec::len);
            if dry_run {
                println!("dry run: the server checked the file; nothing applied");
            } else {
                println!(
                    "applied {made} change{} in one step",
                    if made == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: Value) -> DefsFile {
        serde_json::from_value(json).unwrap()
    }

    fn running(defs: &DefsFile, version: u64) -> Current {
        Current {
            stats: defs
                .stats
                .iter()
                .map(|(n, s)| {
                    let name = laurel_schemas::StatName::new(n.as_str()).unwrap();
                    (
                        n.clone(),
                        StatDefinition::from_spec(name, s.clone(), version),
                    )
                })
                .collect(),
            achievements: defs
                .achievements
                .iter()
                .map(|(i, s)| {
                    let id = laurel_schemas::AchievementId::new(i.as_str()).unwrap();
                    (
                        i.clone(),
                        AchievementDefinition::from_spec(id, s.clone(), version),
                    )
                })
                .collect(),
            seasons: Default::default(),
        }
    }

    fn game() -> DefsFile {
        file(serde_json::json!({
            "stats": {"kills": {"aggregation": "sum", "kind": "int"}},
            "achievements": {
                "B": {"title": "B", "points": 5, "requires": ["A"], "conditions": [{"stat": "kills", "at_least": 10}]},
                "A": {"title": "A", "conditions": [{"stat": "kills", "at_least": 1}]}
            }
        }))
    }

    #[test]
    fn a_new_game_is_all_additions_with_requirements_first() {
        let changes = diff(&game(), &Current::default(), false);
        let order: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::PutSeason { id, .. } => format!("season {id}"),
                Change::PutStat { name, .. } => format!("stat {name}"),
                Change::PutAchievement { id, .. } => id.clone(),
                Change::Archive { id } => format!("archive {id}"),
            })
            .collect();
        assert_eq!(order, ["stat kills", "A", "B"]);
        assert!(render(&changes).ends_with("3 changes"));
    }

    #[test]
    fn what_runs_already_is_no_change() {
        let game = game();
        assert_eq!(diff(&game, &running(&game, 3), true), Vec::new());
        assert_eq!(export(&running(&game, 3)), game);
    }

    #[test]
    fn a_changed_field_is_named_with_old_and_new_and_the_version_it_replaces() {
        let mut next = game();
        next.achievements.get_mut("B").unwrap().points = 20;
        let changes = diff(&next, &running(&game(), 4), false);
        assert_eq!(
            changes,
            vec![Change::PutAchievement {
                id: "B".into(),
                replaces: Some(4),
                changes: vec!["points: 5 -> 20".into()],
            }]
        );
    }

    #[test]
    fn achievements_left_out_are_archived_only_with_prune() {
        let mut next = game();
        next.achievements.remove("B");
        let current = running(&game(), 1);
        assert_eq!(diff(&next, &current, false), Vec::new());
        assert_eq!(
            diff(&next, &current, true),
            vec![Change::Archive { id: "B".into() }]
        );
    }

    #[test]
    fn seasons_are_changes_too_and_come_first() {
        let with_season = |ends: &str| {
            file(serde_json::json!({
                "seasons": {"winter": {"starts_at": "2026-12-01T00:00:00Z", "ends_at": ends}},
                "stats": {"ore": {"aggregation": "sum", "kind": "int", "period": {"season": "winter"}}}
            }))
        };
        let game = with_season("2027-03-01T00:00:00Z");
        let changes = diff(&game, &Current::default(), false);
        assert!(
            matches!(&changes[0], Change::PutSeason { id, exists: false, .. } if id == "winter")
        );
        assert!(render(&changes).starts_with("+ season winter\n+ stat ore\n2 changes"));

        let mut current = running(&game, 1);
        let spec = &game.seasons["winter"];
        current.seasons.insert(
            "winter".into(),
            laurel_schemas::SeasonDefinition {
                id: laurel_schemas::SeasonId::new("winter").unwrap(),
                starts_at: spec.starts_at,
                ends_at: spec.ends_at,
                version: 1,
            },
        );
        // The same end in another offset is no change; a later end is one.
        assert_eq!(
            diff(&with_season("2027-03-01T01:00:00+01:00"), &current, false),
            Vec::new()
        );
        assert_eq!(
            diff(&with_season("2027-04-01T00:00:00Z"), &current, false),
            vec![Change::PutSeason {
                id: "winter".into(),
                exists: true,
                changes: vec![
                    "ends_at: \"2027-03-01T00:00:00Z\" -> \"2027-04-01T00:00:00Z\"".into()
                ],
            }]
        );
    }

    #[test]
    fn an_archived_achievement_in_the_file_comes_back() {
        let mut current = running(&game(), 2);
        current.achievements.get_mut("A").unwrap().archived = true;
        let changes = diff(&game(), &current, false);
        assert_eq!(
            changes,
            vec![Change::PutAchievement {
                id: "A".into(),
                replaces: Some(2),
                changes: vec!["archived: true -> false".into()],
            }]
        );
    }
}
