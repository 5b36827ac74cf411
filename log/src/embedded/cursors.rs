//! Consumers' acknowledged positions, kept in the `cursors` file.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::fail::storage;
use crate::LogError;

/// How often acknowledged cursors are written out at most (and at every flush).
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Consumers' acknowledged positions: in memory, written out at most every
/// [`CURSOR_SAVE_INTERVAL`] and at every flush.
pub(super) struct Cursors {
    pub(super) path: PathBuf,
    pub(super) state: std::sync::Mutex<CursorState>,
}

pub(super) struct CursorState {
    pub(super) positions: HashMap<String, u64>,
    pub(super) dirty: bool,
    pub(super) saved: Instant,
}

impl Cursors {
    pub(super) fn open(path: PathBuf) -> Result<Self, LogError> {
        let positions = match std::fs::read_to_string(&path) {
            Ok(text) => parse_cursors(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(storage(e)),
        };
        Ok(Self {
            path,
            state: std::sync::Mutex::new(CursorState {
                positions,
                dirty: false,
                saved: Instant::now(),
            }),
        })
    }

    pub(super) fn get(&self, key: &str) -> u64 {
        let state = self.state.lock().expect("cursors");
        state.positions.get(key).copied().unwrap_or(0)
    }

    pub(super) fn set(&self, key: &str, seq: u64) -> Result<(), LogError> {
        let mut state = self.state.lock().expect("cursors");
        state.positions.insert(key.to_string(), seq);
        state.dirty = true;
        if state.saved.elapsed() >= CURSOR_SAVE_INTERVAL {
            self.save(&mut state)?;
        }
        Ok(())
    }

    pub(super) fn flush(&self) -> Result<(), LogError> {
        let mut state = self.state.lock().expect("cursors");
        self.save(&mut state)
    }

    pub(super) fn save(&self, state: &mut CursorState) -> Result<(), LogError> {
        if !state.dirty {
            return Ok(());
        }
        let mut text = String::new();
        for (key, seq) in &state.positions {
            text.push_str(&format!("{key} {seq}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(storage)?;
        state.dirty = false;
        state.saved = Instant::now();
        Ok(())
    }
}

pub(super) fn parse_cursors(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, seq) = line.rsplit_once(' ')?;
            Some((key.to_string(), seq.parse().ok()?))
        })
        .collect()
}
