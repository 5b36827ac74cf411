//! Coalescing a batch's outputs: only the last `stat` (and `progress`) per key is worth
//! publishing.

use laurel_schemas::Output;
use rustc_hash::FxHashMap;

/// Drops every `stat` and `progress` output that a later one in the batch supersedes,
/// keeping the order of what remains. A kept `stat` output takes the `previous` value of the
/// first one it supersedes: the value before the batch. A player's reset supersedes their
/// `stat`, `progress` and `rejected` outputs before it in the batch (they are applied after
/// it, with the batch's `changes`, so they would bring back what the reset took away).
pub fn coalesce(outputs: &mut Vec<Output>) {
    let mut keep = vec![true; outputs.len()];
    // (kept index, superseded index), latest superseded first.
    let mut superseded = Vec::new();
    {
        // A periodic stat's values of different periods are different keys.
        let mut seen: FxHashMap<(&str, &str, &str, u32), usize> = FxHashMap::default();
        // Players reset later in the batch than where the walk stands.
        let mut reset: Vec<&str> = Vec::new();
        for (i, output) in outputs.iter().enumerate().rev() {
            let player = match output {
                Output::Stat(s) => Some(s.player_id.as_str()),
                Output::Progress(p) => Some(p.player_id.as_str()),
                Output::Rejected(r) => Some(r.player_id.as_str()),
                Output::PlayerReset(r) => {
                    reset.push(r.player_id.as_str());
                    None
                }
                _ => None,
            };
            if player.is_some_and(|p| reset.contains(&p)) {
                keep[i] = false;
                continue;
            }
            let key = match output {
                Output::Stat(s) => (
                    s.player_id.as_str(),
                    s.stat.as_str(),
                    s.period.as_deref().unwrap_or(""),
                    u32::MAX,
                ),
                Output::Progress(p) => (
                    p.player_id.as_str(),
                    p.achievement_id.as_str(),
                    "",
                    p.condition,
                ),
                Output::Unlocked(_)
                | Output::Rejected(_)
                | Output::Checkpoint(_)
                | Output::Changes(_)
                | Output::Reward(_)
                | Output::RewardClaimed(_)
                | Output::PlayerReset(_) => continue,
            };
            match seen.get(&key) {
                Some(&kept) => {
                    keep[i] = false;
                    superseded.push((kept, i));
                }
                None => {
                    seen.insert(key, i);
                }
            }
        }
    }
    // The earliest superseded output comes last, so its `previous` is the one that stays.
    for (kept, earlier) in superseded {
        let previous = match &outputs[earlier] {
            Output::Stat(s) => s.previous,
            _ => continue,
        };
        if let Output::Stat(s) = &mut outputs[kept] {
            s.previous = previous;
        }
    }
    let mut flags = keep.into_iter();
    outputs.retain(|_| flags.next().unwrap_or(true));
}
