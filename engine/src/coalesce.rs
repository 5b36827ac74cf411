//! Coalescing a batch's outputs: only the last `stat` (and `progress`) per key is worth
//! publishing.

use laurel_schemas::Output;
use rustc_hash::FxHashSet;

/// Drops every `stat` and `progress` output that a later one in the batch supersedes,
/// keeping the order of what remains.
pub fn coalesce(outputs: &mut Vec<Output>) {
    let mut keep = vec![true; outputs.len()];
    {
        let mut seen: FxHashSet<(&str, &str, u32)> = FxHashSet::default();
        for (i, output) in outputs.iter().enumerate().rev() {
            let key = match output {
                Output::Stat(s) => (s.player_id.as_str(), s.stat.as_str(), u32::MAX),
                Output::Progress(p) => {
                    (p.player_id.as_str(), p.achievement_id.as_str(), p.condition)
                }
                Output::Unlocked(_) | Output::Rejected(_) | Output::Checkpoint(_) => continue,
            };
            keep[i] = seen.insert(key);
        }
    }
    let mut flags = keep.into_iter();
    outputs.retain(|_| flags.next().unwrap_or(true));
}
