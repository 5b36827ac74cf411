//! One stream's storage: append-only segment files of CRC-checked frames, and the thread
//! that makes them durable.
//!
//! A stream directory holds `00000000.seg`, `00000001.seg`, ...; only the last is written.
//! Each frame is one chunk of consecutive entries of one partition:
//!
//! ```text
//! [magic 0xF1][flags u8][partition u32][first seq u64][count u32][append time ms u64]
//! [body length u32][crc32 of everything before it and of the body u32][body]
//! ```
//!
//! (integers big-endian; flag bit 0: the body is LZ4-compressed; bit 1: it is sealed, see
//! [`crate::seal`], after compression, bound to the frame's partition and sequences). A
//! segment is synced whole
//! before the next one is created, so after a crash only the last segment can end in a torn
//! frame; opening checks the last segment's frames and cuts it after the last whole one.
//! Nothing past the last sync was ever acknowledged, so the cut loses nothing that was.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use tokio::sync::watch;

/// Size past which a stream starts a new segment.
pub(super) const SEGMENT_BYTES: u64 = 128 << 20;

/// Bytes of a frame header.
pub(super) const HEADER: usize = 34;
const MAGIC: u8 = 0xF1;
const FLAG_LZ4: u8 = 1;
const FLAG_SEALED: u8 = 2;
/// Largest body a frame may have: bounds what a corrupt length can make a reader allocate.
const MAX_BODY: usize = 64 << 20;

/// A frame's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub(super) partition: u32,
    pub(super) first: u64,
    pub(super) count: u32,
    pub(super) at_ms: u64,
    pub(super) encoding: Encoding,
    pub(super) len: u32,
    pub(super) crc: u32,
}

impl FrameHeader {
    fn parse(raw: &[u8; HEADER]) -> Option<Self> {
        if raw[0] != MAGIC || raw[1] & !(FLAG_LZ4 | FLAG_SEALED) != 0 {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes(raw[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
        let header = Self {
            encoding: Encoding {
                lz4: raw[1] & FLAG_LZ4 != 0,
                sealed: raw[1] & FLAG_SEALED != 0,
            },
            partition: u32_at(2),
            first: u64_at(6),
            count: u32_at(14),
            at_ms: u64_at(18),
            len: u32_at(26),
            crc: u32_at(30),
        };
        (header.len as usize <= MAX_BODY && header.count > 0 && header.first > 0).then_some(header)
    }

    /// The frame's checksum: of its header up to the checksum, then of its body.
    fn checksum(raw: &[u8], body: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&raw[..HEADER - 4]);
        hasher.update(body);
        hasher.finalize()
    }
}

/// How a frame's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Encoding {
    /// LZ4-compressed.
    pub(super) lz4: bool,
    /// Sealed (after compression).
    pub(super) sealed: bool,
}

impl Encoding {
    fn flags(self) -> u8 {
        (if self.lz4 { FLAG_LZ4 } else { 0 }) | (if self.sealed { FLAG_SEALED } else { 0 })
    }
}

/// What a sealed frame body is bound to: its partition and its entries' sequences.
pub(super) fn frame_aad(partition: u32, first: u64, count: u32) -> [u8; 16] {
    let mut aad = [0; 16];
    aad[..4].copy_from_slice(&partition.to_be_bytes());
    aad[4..12].copy_from_slice(&first.to_be_bytes());
    aad[12..].copy_from_slice(&count.to_be_bytes());
    aad
}

/// Appends one frame to `out`.
pub(super) fn push_frame(
    out: &mut Vec<u8>,
    partition: u32,
    first: u64,
    count: u32,
    at_ms: u64,
    encoding: Encoding,
    body: &[u8],
) {
    let start = out.len();
    out.push(MAGIC);
    out.push(encoding.flags());
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let crc = FrameHeader::checksum(&out[start..], body);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(body);
}

/// Where a frame is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Loc {
    /// Its first entry's sequence.
    pub(super) first: u64,
    /// Offset of its body in the segment.
    pub(super) offset: u64,
    pub(super) segment: u32,
    pub(super) len: u32,
    pub(super) count: u32,
    pub(super) encoding: Encoding,
}

/// A frame found when a stream is opened.
pub(super) struct Found {
    pub(super) header: FrameHeader,
    pub(super) loc: Loc,
}

/// The segment files of one stream. Readers read any segment; one writer appends to the
/// last.
pub(super) struct Segments {
    dir: PathBuf,
    files: RwLock<Vec<Arc<File>>>,
    /// The last segment, which the writer appends to.
    active: Mutex<Active>,
    roll_at: u64,
    syncer: Arc<Syncer>,
    completed: watch::Receiver<Synced>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Active {
    file: Arc<File>,
    segment: u32,
    /// Where the next frame goes.
    size: u64,
}

/// What the sync thread has made durable: every write up to this ticket, or the error that
/// stopped it (after a failed sync nothing more is taken for durable).
pub(super) type Synced = Result<u64, Arc<io::Error>>;

fn segment_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("{n:08}.seg"))
}

impl Segments {
    /// Opens the stream in `dir` (created if missing), calling `found` for every whole
    /// frame in order, and cuts a torn tail off the last segment.
    pub(super) fn open(
        dir: &Path,
        roll_at: u64,
        mut found: impl FnMut(Found, &File) -> io::Result<()>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut numbers = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let name = item?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<usize>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        if numbers.iter().enumerate().any(|(i, &n)| i != n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("missing segments in {}: found {numbers:?}", dir.display()),
            ));
        }
        let mut files = Vec::new();
        let mut size = 0;
        let last = numbers.len().saturating_sub(1);
        for n in numbers {
            let path = segment_path(dir, n);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let whole = scan(&file, n as u32, n == last, &mut found)?;
            let len = file.metadata()?.len();
            if whole < len {
                if n != last {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is corrupt at byte {whole}", path.display()),
                    ));
                }
                tracing::warn!(
                    file = %path.display(),
                    at = whole,
                    cut = len - whole,
                    "cutting a torn write off the log's tail (it was never acknowledged)"
                );
                file.set_len(whole)?;
                file.sync_all()?;
            }
            size = whole;
            files.push(Arc::new(file));
        }
        if files.is_empty() {
            files.push(Arc::new(create_segment(dir, 0)?));
        }
        let syncer = Arc::new(Syncer::default());
        let (done, completed) = watch::channel(Ok(0));
        let active = files.last().expect("one segment at least").clone();
        let thread = {
            let syncer = syncer.clone();
            std::thread::Builder::new()
                .name(format!("laurel-sync-{}", dir.display()))
                .spawn(move || syncer.run(active, done))?
        };
        let segment = files.len() as u32 - 1;
        Ok(Self {
            dir: dir.to_path_buf(),
            active: Mutex::new(Active {
                file: files[segment as usize].clone(),
                segment,
                size,
            }),
            files: RwLock::new(files),
            roll_at,
            syncer,
            completed,
            thread: Some(thread),
        })
    }

    /// Appends `frames` (whole frames, built with [`push_frame`]) to the last segment, after
    /// starting a new one when it is full. Returns the segment and the offset they start at.
    /// Called by one writer at a time. On failure nothing is written.
    pub(super) fn write(&self, frames: &[u8]) -> io::Result<(u32, u64)> {
        let mut active = self.active.lock().expect("active segment");
        if active.size > 0 && active.size + frames.len() as u64 > self.roll_at {
            // The full segment is made durable whole before the next exists, so only the
            // last segment can ever end torn.
            active.file.sync_data()?;
            let segment = active.segment + 1;
            let file = Arc::new(create_segment(&self.dir, segment as usize)?);
            self.syncer.switch(file.clone());
            self.files.write().expect("segments").push(file.clone());
            *active = Active {
                file,
                segment,
                size: 0,
            };
        }
        let at = active.size;
        if let Err(e) = active.file.write_all_at(frames, at) {
            // Leave no partial frame behind for the next write to follow.
            let _ = active.file.set_len(at);
            return Err(e);
        }
        active.size += frames.len() as u64;
        Ok((active.segment, at))
    }

    /// Waits until everything written before the call is durable.
    pub(super) async fn sync(&self) -> Result<(), Arc<io::Error>> {
        let ticket = self.syncer.request();
        let mut completed = self.completed.clone();
        let synced = completed
            .wait_for(|s| s.as_ref().map_or(true, |&done| done >= ticket))
            .await
            .map_err(|_| Arc::new(io::Error::other("the sync thread stopped")))?;
        synced.as_ref().map(|_| ()).map_err(Arc::clone)
    }

    /// Makes everything written durable, now, on this thread.
    pub(super) fn sync_now(&self) -> io::Result<()> {
        self.active.lock().expect("active segment").file.sync_data()
    }

    /// Reads the body at `loc`.
    pub(super) fn read(&self, loc: &Loc) -> io::Result<Vec<u8>> {
        let file = self.files.read().expect("segments")[loc.segment as usize].clone();
        let mut body = vec![0; loc.len as usize];
        file.read_exact_at(&mut body, loc.offset)?;
        Ok(body)
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        self.syncer.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Creates segment `n` and makes its name durable in the directory.
fn create_segment(dir: &Path, n: usize) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(segment_path(dir, n))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Walks the frames of one segment, checking each body's checksum when `check`; returns
/// where the last whole frame ends.
fn scan(
    file: &File,
    segment: u32,
    check: bool,
    found: &mut impl FnMut(Found, &File) -> io::Result<()>,
) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut reader = io::BufReader::with_capacity(1 << 20, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut at = 0u64;
    let mut raw = [0u8; HEADER];
    let mut body = Vec::new();
    while at + HEADER as u64 <= len {
        reader.read_exact(&mut raw)?;
        let Some(header) = FrameHeader::parse(&raw) else {
            break;
        };
        let end = at + HEADER as u64 + u64::from(header.len);
        if end > len {
            break;
        }
        if check {
            body.resize(header.len as usize, 0);
            reader.read_exact(&mut body)?;
            if FrameHeader::checksum(&raw, &body) != header.crc {
                break;
            }
        } else {
            reader.seek_relative(i64::from(header.len))?;
        }
        let loc = Loc {
            first: header.first,
            offset: at + HEADER as u64,
            segment,
            len: header.len,
            count: header.count,
            encoding: header.encoding,
        };
        found(Found { header, loc }, file)?;
        at = end;
    }
    Ok(at)
}

/// Group commit: writers take a ticket after writing; the sync thread syncs the last
/// segment and reports the highest ticket it covered, so one sync serves every write before
/// it. Under load syncs follow each other back to back, each carrying what arrived during
/// the one before; a lone write waits for one sync.
#[derive(Default)]
struct Syncer {
    state: Mutex<SyncState>,
    wake: Condvar,
}

#[derive(Default)]
struct SyncState {
    requested: u64,
    /// A new last segment to sync from now on.
    switched: Option<Arc<File>>,
    closed: bool,
}

impl Syncer {
    fn request(&self) -> u64 {
        let mut state = self.state.lock().expect("sync state");
        state.requested += 1;
        self.wake.notify_one();
        state.requested
    }

    fn switch(&self, file: Arc<File>) {
        self.state.lock().expect("sync state").switched = Some(file);
    }

    fn close(&self) {
        self.state.lock().expect("sync state").closed = true;
        self.wake.notify_one();
    }

    fn run(&self, mut active: Arc<File>, done: watch::Sender<Synced>) {
        let mut synced = 0;
        loop {
            let target = {
                let mut state = self.state.lock().expect("sync state");
                while state.requested == synced && !state.closed {
                    state = self.wake.wait(state).expect("sync state");
                }
                if state.requested == synced {
                    return; // closed, with nothing left to sync
                }
                if let Some(file) = state.switched.take() {
                    active = file; // the one before was synced whole when it was left
                }
                state.requested
            };
            match active.sync_data() {
                Ok(()) => {
                    synced = target;
                    let _previous = done.send_replace(Ok(target));
                }
                Err(e) => {
                    tracing::error!(error = %e, "syncing the embedded log failed; it takes no more writes");
                    let _previous = done.send_replace(Err(Arc::new(e)));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn frames(partition: u32, first: u64, bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            push_frame(
                &mut out,
                partition,
                first + i as u64,
                1,
                7,
                Encoding::default(),
                body,
            );
        }
        out
    }

    fn open(dir: &Path, roll_at: u64) -> (Segments, Vec<(FrameHeader, Vec<u8>)>) {
        let mut seen = Vec::new();
        let segments = Segments::open(dir, roll_at, |f, file| {
            let mut body = vec![0; f.loc.len as usize];
            file.read_exact_at(&mut body, f.loc.offset)?;
            seen.push((f.header, body));
            Ok(())
        })
        .unwrap();
        (segments, seen)
    }

    #[tokio::test]
    async fn frames_come_back_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (segments, seen) = open(dir.path(), 100);
            assert!(seen.is_empty());
            for i in 0..5u64 {
                let body = format!("body-{i}-{}", "x".repeat(40));
                segments
                    .write(&frames(3, i + 1, &[body.as_bytes()]))
                    .unwrap();
                segments.sync().await.unwrap();
            }
        }
        let (_, seen) = open(dir.path(), 100);
        let firsts: Vec<u64> = seen.iter().map(|(h, _)| h.first).collect();
        assert_eq!(firsts, vec![1, 2, 3, 4, 5]);
        assert!(seen.iter().all(|(h, _)| h.partition == 3 && h.at_ms == 7));
        assert!(seen[4].1.starts_with(b"body-4-"));
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(
            files >= 3,
            "frames over 100 bytes roll segments: {files} files"
        );
    }

    #[test]
    fn a_torn_tail_is_cut_and_writing_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (segments, _) = open(dir.path(), 1 << 20);
            segments.write(&frames(0, 1, &[b"one", b"two"])).unwrap();
            segments.sync_now().unwrap();
        }
        // A crash in the middle of a write: half of a third frame.
        let path = segment_path(dir.path(), 0);
        let whole = std::fs::metadata(&path).unwrap().len();
        let torn = frames(0, 3, &[b"three"]);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(file);
        {
            let (segments, seen) = open(dir.path(), 1 << 20);
            assert_eq!(seen.len(), 2);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
            segments.write(&frames(0, 3, &[b"three"])).unwrap();
            segments.sync_now().unwrap();
        }
        let (_, seen) = open(dir.path(), 1 << 20);
        let bodies: Vec<&[u8]> = seen.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bodies, vec![&b"one"[..], b"two", b"three"]);
    }

    #[test]
    fn a_flipped_bit_in_the_last_frame_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (segments, _) = open(dir.path(), 1 << 20);
            segments
                .write(&frames(1, 1, &[b"kept", b"damaged"]))
                .unwrap();
            segments.sync_now().unwrap();
        }
        let path = segment_path(dir.path(), 0);
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x20;
        std::fs::write(&path, raw).unwrap();
        let (_, seen) = open(dir.path(), 1 << 20);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, b"kept");
    }

    #[test]
    fn a_damaged_segment_before_the_last_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (segments, _) = open(dir.path(), 60);
            for i in 0..3 {
                segments.write(&frames(0, i + 1, &[&[b'x'; 40]])).unwrap();
            }
            segments.sync_now().unwrap();
        }
        let first = segment_path(dir.path(), 0);
        let raw = std::fs::read(&first).unwrap();
        std::fs::write(&first, &raw[..raw.len() - 3]).unwrap();
        let err = Segments::open(dir.path(), 60, |_, _| Ok(())).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
