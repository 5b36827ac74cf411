//! Coalescing a batch's outputs: only the last `stat` (and `progress`) per key is worth
//! publishing.

use laurel_schemas::Output;
use rustc_hash::FxHashMap;

/// An output with the span of STATS positions that caused it: one event's position, or for
/// a coalesced `stat` output, the first and last event it folds. The durable shell derives
/// each output's message id from this span, so a re-fold of the same events gives the same
/// ids and a fold of other events (another batch boundary) gives other ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Caused {
    /// Position of the first event folded into the output.
    pub first: u64,
    /// Position of the last event folded into the output.
    pub last: u64,
    /// The output.
    pub output: Output,
}

/// Drops every `stat` and `progress` output that a later one in the batch supersedes,
/// keeping the order of what remains. A kept `stat` output takes the `previous` value of the
/// first one it supersedes: the value before the batch.
pub fn coalesce(outputs: &mut Vec<Output>) {
    let mut caused: Vec<Caused> = outputs
        .drain(..)
        .map(|output| Caused {
            first: 0,
            last: 0,
            output,
        })
        .collect();
    coalesce_caused(&mut caused);
    outputs.extend(caused.into_iter().map(|c| c.output));
}

/// [`coalesce`] over outputs with their causes: a kept `stat` output also takes the `first`
/// position of the earliest one it supersedes.
pub fn coalesce_caused(outputs: &mut Vec<Caused>) {
    let mut keep = vec![true; outputs.len()];
    // (kept index, superseded index), latest superseded first.
    let mut superseded = Vec::new();
    {
        let mut seen: FxHashMap<(&str, &str, u32), usize> = FxHashMap::default();
        for (i, caused) in outputs.iter().enumerate().rev() {
            let key = match &caused.output {
                Output::Stat(s) => (s.player_id.as_str(), s.stat.as_str(), u32::MAX),
                Output::Progress(p) => {
                    (p.player_id.as_str(), p.achievement_id.as_str(), p.condition)
                }
                Output::Unlocked(_) | Output::Rejected(_) | Output::Checkpoint(_) => continue,
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
        let first = outputs[earlier].first;
        let previous = match &outputs[earlier].output {
            Output::Stat(s) => s.previous,
            _ => continue,
        };
        let target = &mut outputs[kept];
        target.first = target.first.min(first);
        if let Output::Stat(s) = &mut target.output {
            s.previous = previous;
        }
    }
    let mut flags = keep.into_iter();
    outputs.retain(|_| flags.next().unwrap_or(true));
}
