//! Reading input files as a stream of records, with every bad line reported.
//!
//! Files ending in `.csv` are CSV with a header row; anything else is JSON
//! lines, each line either an OTLP export request (the Collector's `file`
//! exporter) or a flat record (`flat.rs`). A line that does not parse is never
//! dropped quietly: it is counted, and the first [`MAX_EXAMPLES`] are kept with
//! file, line number and reason.
//!
//! JSON lines are cut into chunks of whole lines ([`CHUNK`] bytes or so) that
//! worker threads parse ([`parse_lines`]) into a [`Packed`] batch; the calling
//! thread takes the batches back in file order and hands their records to the
//! sink, so what the sink sees (records, order, counts, bad-line examples) does
//! not depend on the number of threads, and the fold (first exposures, float
//! sums, event-id dedup) gives bit-identical results. Chunks in flight are
//! bounded ([`in_flight`]), so memory does not grow with the file. CSV is read
//! on the calling thread: a quoted field may span lines, so it cannot be cut at
//! line breaks.
//!
//! The outcome pass ([`Pass::Outcomes`]) skips, before parsing, lines that
//! cannot hold an outcome: every outcome record spells `outcome` (the flat
//! `type` or the OTLP event name and attribute names) unless the line escapes
//! characters, so a line with neither `outcome` nor a backslash is exposures
//! only.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::flat::{self, Row, COLUMNS};
use super::otlp;
use super::record::{Exposure, Outcome, Record};

/// Longest accepted line (a Collector batch of a few thousand records fits easily).
pub const MAX_LINE: u64 = 64 << 20;
/// Bad lines kept verbatim in the report; the rest are only counted.
pub const MAX_EXAMPLES: usize = 20;
/// Bytes of whole lines per chunk handed to a parsing thread.
pub const CHUNK: usize = 2 << 20;

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BadLine {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// What was wrong.
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// What the reader saw.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct InputStats {
    /// Files read.
    pub files: usize,
    /// Exposure records.
    pub exposures: u64,
    /// Outcome records.
    pub outcomes: u64,
    /// Log records that are neither (ignored).
    pub other_records: u64,
    /// Records without a unit id (exported with `--exposure-unit-id omit`): unusable.
    pub without_unit: u64,
    /// Lines that did not parse.
    pub bad_lines: u64,
    /// The first few of them.
    pub bad_examples: Vec<BadLine>,
}

impl InputStats {
    fn bad(&mut self, file: &Path, line: u64, reason: String) {
        self.bad_lines += 1;
        if self.bad_examples.len() < MAX_EXAMPLES {
            self.bad_examples.push(BadLine {
                file: file.to_owned(),
                line,
                reason,
            });
        }
    }

    /// Adds the counts of a later part of the input (examples stay in order).
    fn merge(&mut self, later: InputStats) {
        self.files += later.files;
        self.exposures += later.exposures;
        self.outcomes += later.outcomes;
        self.other_records += later.other_records;
        self.without_unit += later.without_unit;
        self.bad_lines += later.bad_lines;
        let room = MAX_EXAMPLES.saturating_sub(self.bad_examples.len());
        self.bad_examples
            .extend(later.bad_examples.into_iter().take(room));
    }

    fn count(&mut self, r: &Record<'_>) {
        match r {
            Record::Exposure(_) => self.exposures += 1,
            Record::Outcome(_) => self.outcomes += 1,
        }
    }
}

/// A file that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct InputError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Which records a pass over the input wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every record, every line parsed and counted.
    All,
    /// Outcomes only; lines that cannot hold one are skipped unparsed.
    Outcomes,
}

/// The parsing threads to use by default: one per core, at most 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Reads every file once, calling `sink` for each record (each outcome only,
/// for [`Pass::Outcomes`]) in file order, and counting into `stats`. `threads`
/// parse JSON lines in parallel (1: all on the calling thread); the records,
/// their order and the counts are the same for any number.
pub fn scan(
    paths: &[PathBuf],
    threads: usize,
    pass: Pass,
    stats: &mut InputStats,
    mut sink: impl FnMut(Record<'_>),
) -> Result<(), InputError> {
    for path in paths {
        stats.files += 1;
        let file = File::open(path).map_err(|source| InputError {
            path: path.clone(),
            source,
        })?;
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let res = if is_csv {
            scan_csv(path, file, pass, stats, &mut sink)
        } else {
            scan_json_lines(path, file, threads, pass, stats, &mut sink)
        };
        res.map_err(|source| InputError {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Records of one chunk, their strings packed into one buffer so the batch can
/// cross threads with a few allocations instead of several per record.
#[derive(Debug, Default)]
pub struct Packed {
    text: String,
    recs: Vec<PackedRecord>,
    lists: Vec<Span>,
}

#[derive(Debug, Clone, Copy)]
struct Span(usize, usize);

#[derive(Debug)]
enum PackedRecord {
    Exposure {
        time_ns: u64,
        epoch: u32,
        unit: Span,
        experiment: Span,
        variant: Span,
        version: Span,
        salt_fingerprint: Span,
        stratum: Option<Span>,
    },
    Outcome {
        time_ns: u64,
        value: f64,
        unit: Span,
        metric: Span,
        event_id: Span,
        experiments: (usize, usize),
    },
}

impl Packed {
    fn span(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span(start, self.text.len())
    }

    fn get(&self, s: Span) -> &str {
        &self.text[s.0..s.1]
    }

    fn push(&mut self, r: &Record<'_>) {
        let p = match r {
            Record::Exposure(x) => PackedRecord::Exposure {
                time_ns: x.time_ns,
                epoch: x.epoch,
                unit: self.span(&x.unit),
                experiment: self.span(&x.experiment),
                variant: self.span(&x.variant),
                version: self.span(&x.version),
                salt_fingerprint: self.span(&x.salt_fingerprint),
                stratum: x.stratum.as_deref().map(|s| self.span(s)),
            },
            Record::Outcome(o) => {
                let start = self.lists.len();
                for e in &o.experiments {
                    let s = self.span(e);
                    self.lists.push(s);
                }
                PackedRecord::Outcome {
                    time_ns: o.time_ns,
                    value: o.value,
                    unit: self.span(&o.unit),
                    metric: self.span(&o.metric),
                    event_id: self.span(&o.event_id),
                    experiments: (start, self.lists.len()),
                }
            }
        };
        self.recs.push(p);
    }

    /// Hands each record to `sink`, in the order they were parsed.
    pub fn for_each(&self, mut sink: impl FnMut(Record<'_>)) {
        for r in &self.recs {
            let rec = match *r {
                PackedRecord::Exposure {
                    time_ns,
                    epoch,
                    unit,
                    experiment,
                    variant,
                    version,
                    salt_fingerprint,
                    stratum,
                } => Record::Exposure(Exposure {
                    time_ns,
                    unit: self.get(unit).into(),
                    experiment: self.get(experiment).into(),
                    variant: self.get(variant).into(),
                    version: self.get(version).into(),
                    epoch,
                    salt_fingerprint: self.get(salt_fingerprint).into(),
                    stratum: stratum.map(|s| self.get(s).into()),
                }),
                PackedRecord::Outcome {
                    time_ns,
                    value,
                    unit,
                    metric,
                    event_id,
                    experiments,
                } => Record::Outcome(Outcome {
                    time_ns,
                    unit: self.get(unit).into(),
                    metric: self.get(metric).into(),
                    value,
                    event_id: self.get(event_id).into(),
                    experiments: self.lists[experiments.0..experiments.1]
                        .iter()
                        .map(|&s| self.get(s).into())
                        .collect(),
                }),
            };
            sink(rec);
        }
    }
}

/// Whether a line may hold an outcome record (see the module docs).
fn may_hold_outcome(line: &[u8]) -> bool {
    memchr::memchr(b'\\', line).is_some() || memchr::memmem::find(line, b"outcome").is_some()
}

/// Parses whole JSON lines (`chunk`, whose first line is line `first_line` of
/// `path`) into `out`, counting records and bad lines into `st`. Pure: the
/// same chunk always gives the same batch, on any thread.
pub fn parse_lines(
    path: &Path,
    chunk: &[u8],
    first_line: u64,
    pass: Pass,
    st: &mut InputStats,
    out: &mut Packed,
) {
    let wanted = |r: &Record<'_>| pass == Pass::All || matches!(r, Record::Outcome(_));
    for (i, raw) in chunk.split(|&b| b == b'\n').enumerate() {
        let line_no = first_line + i as u64;
        let line = raw.trim_ascii();
        if line.is_empty() || (pass == Pass::Outcomes && !may_hold_outcome(line)) {
            continue;
        }
        let head = &line[..line.len().min(64)];
        if head.windows(14).any(|w| w == b"\"resourceLogs\"") {
            match otlp::parse_line(line) {
                Ok(p) => {
                    st.other_records += p.other;
                    st.without_unit += p.no_unit;
                    for r in p.records.iter().filter(|r| wanted(r)) {
                        st.count(r);
                        out.push(r);
                    }
                }
                Err(e) => st.bad(path, line_no, e),
            }
        } else {
            match flat::parse_json_line(line) {
                Ok(r) if wanted(&r) => {
                    st.count(&r);
                    out.push(&r);
                }
                Ok(_) => {}
                Err(e) => st.bad(path, line_no, e),
            }
        }
    }
}

/// One piece of a JSON-lines file, cut at a line break.
struct Chunk {
    seq: u64,
    /// Number of the first line.
    first_line: u64,
    bytes: Vec<u8>,
    /// The piece is one line longer than [`MAX_LINE`], skipped unread.
    oversized: bool,
}

/// Cuts a file into [`Chunk`]s of whole lines.
struct Cutter<R> {
    reader: R,
    carry: Vec<u8>,
    next_line: u64,
    seq: u64,
    eof: bool,
}

impl<R: Read> Cutter<R> {
    fn new(reader: R) -> Self {
        Cutter {
            reader,
            carry: Vec::new(),
            next_line: 1,
            seq: 0,
            eof: false,
        }
    }

    /// Reads until `buf` holds `want` bytes or the file ends.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<()> {
        if buf.len() < want && !self.eof {
            let n = (&mut self.reader)
                .take((want - buf.len()) as u64)
                .read_to_end(buf)?;
            self.eof = n == 0 || buf.len() < want;
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut buf = std::mem::take(&mut self.carry);
        buf.reserve(CHUNK.saturating_sub(buf.len()));
        self.fill(&mut buf, CHUNK)?;
        if buf.is_empty() {
            return Ok(None);
        }
        let mut searched = 0;
        let cut = loop {
            if let Some(i) = memchr::memrchr(b'\n', &buf[searched..]) {
                break searched + i + 1;
            }
            if buf.len() as u64 > MAX_LINE {
                // One line longer than allowed: skip to its end without holding it.
                let line = self.next_line;
                self.skip_line()?;
                return Ok(Some(self.emit(Vec::new(), line, 1, true)));
            }
            if self.eof {
                break buf.len();
            }
            // A line longer than a chunk: read on until it ends (or is too long).
            searched = buf.len();
            let want = (buf.len() + CHUNK).min(MAX_LINE as usize + 1);
            self.fill(&mut buf, want)?;
        };
        self.carry = buf[cut..].to_vec();
        buf.truncate(cut);
        let lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
        let lines = lines + u64::from(buf.last() != Some(&b'\n'));
        let first = self.next_line;
        Ok(Some(self.emit(buf, first, lines, false)))
    }

    fn emit(&mut self, bytes: Vec<u8>, first_line: u64, lines: u64, oversized: bool) -> Chunk {
        self.next_line += lines;
        self.seq += 1;
        Chunk {
            seq: self.seq - 1,
            first_line,
            bytes,
            oversized,
        }
    }

    /// Discards the rest of the current line, newline included.
    fn skip_line(&mut self) -> std::io::Result<()> {
        let mut scratch = Vec::with_capacity(1 << 16);
        loop {
            scratch.clear();
            let n = (&mut self.reader).take(1 << 16).read_to_end(&mut scratch)?;
            if n == 0 {
                self.eof = true;
                return Ok(());
            }
            if let Some(i) = memchr::memchr(b'\n', &scratch) {
                self.carry = scratch[i + 1..].to_vec();
                return Ok(());
            }
        }
    }
}

/// What parsing one chunk produced.
struct Parsed {
    stats: InputStats,
    packed: Packed,
}

fn parse_chunk(path: &Path, c: &Chunk, pass: Pass) -> Parsed {
    let mut stats = InputStats::default();
    let mut packed = Packed::default();
    if c.oversized {
        stats.bad(
            path,
            c.first_line,
            format!("line longer than {MAX_LINE} bytes"),
        );
    } else {
        parse_lines(path, &c.bytes, c.first_line, pass, &mut stats, &mut packed);
    }
    Parsed { stats, packed }
}

/// Chunks in flight at once (being read, parsed, or waiting for their turn):
/// bounds memory to about this many times [`CHUNK`], twice over.
pub fn in_flight(threads: usize) -> usize {
    2 * threads + 2
}

fn scan_json_lines(
    path: &Path,
    file: File,
    threads: usize,
    pass: Pass,
    st: &mut InputStats,
    sink: &mut impl FnMut(Record<'_>),
) -> std::io::Result<()> {
    let mut cutter = Cutter::new(file);
    if threads <= 1 {
        while let Some(c) = cutter.next_chunk()? {
            let p = parse_chunk(path, &c, pass);
            st.merge(p.stats);
            p.packed.for_each(&mut *sink);
        }
        return Ok(());
    }
    let slots = in_flight(threads);
    let (work_tx, work_rx) = sync_channel::<Chunk>(slots);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = sync_channel::<(u64, std::io::Result<Parsed>)>(slots);
    let (credit_tx, credit_rx) = sync_channel::<()>(slots);
    for _ in 0..slots {
        let _ = credit_tx.send(());
    }
    std::thread::scope(|s| {
        let reader_done = done_tx.clone();
        s.spawn(move || read_chunks(cutter, &credit_rx, &work_tx, &reader_done));
        for _ in 0..threads {
            let (rx, tx) = (&work_rx, done_tx.clone());
            s.spawn(move || loop {
                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(c) = next else { return };
                // A parser bug must fail the run, not leave the others waiting.
                let parsed =
                    std::panic::catch_unwind(|| parse_chunk(path, &c, pass)).map_err(|_| {
                        std::io::Error::other(format!(
                            "internal error: the parser panicked on the chunk from line {}",
                            c.first_line
                        ))
                    });
                if tx.send((c.seq, parsed)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        // Take the batches back in file order; keep draining after an error
        // so no thread is left blocked.
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        let mut failure = None;
        for (seq, res) in done_rx.iter() {
            waiting.insert(seq, res);
            while let Some(res) = waiting.remove(&next) {
                next += 1;
                match res {
                    Ok(p) if failure.is_none() => {
                        st.merge(p.stats);
                        p.packed.for_each(&mut *sink);
                    }
                    Ok(_) => {}
                    Err(e) => failure = failure.or(Some(e)),
                }
                let _ = credit_tx.send(());
            }
        }
        drop(credit_tx);
        failure.map_or(Ok(()), Err)
    })
}

/// The reading thread: one chunk per credit, until the file ends or fails.
fn read_chunks<R: Read>(
    mut cutter: Cutter<R>,
    credits: &Receiver<()>,
    work: &SyncSender<Chunk>,
    done: &SyncSender<(u64, std::io::Result<Parsed>)>,
) {
    while credits.recv().is_ok() {
        match cutter.next_chunk() {
            Ok(Some(c)) => {
                if work.send(c).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = done.send((cutter.seq, Err(e)));
                return;
            }
        }
    }
}

/// Reads CSV from `input` (named `path` in reports) on the calling thread.
pub fn scan_csv(
    path: &Path,
    input: impl Read,
    pass: Pass,
    st: &mut InputStats,
    sink: &mut impl FnMut(Record<'_>),
) -> std::io::Result<()> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::with_capacity(1 << 16, input));
    let columns: [Option<usize>; 12] = match rdr.byte_headers() {
        Ok(h) => COLUMNS.map(|c| h.iter().position(|f| f == c.as_bytes())),
        Err(e) => {
            st.bad(path, 1, format!("CSV header: {e}"));
            return Ok(());
        }
    };
    let mut rec = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line() + 1;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = rec.position().map_or(line, |p| p.line());
                if rec.as_slice().len() as u64 > MAX_LINE {
                    st.bad(path, line, format!("row longer than {MAX_LINE} bytes"));
                    continue;
                }
                let row = csv_row(&rec, &columns);
                match row.and_then(Row::into_record) {
                    Ok(r) if pass == Pass::All || matches!(r, Record::Outcome(_)) => {
                        st.count(&r);
                        sink(r);
                    }
                    Ok(_) => {}
                    Err(e) => st.bad(path, line, e),
                }
            }
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(std::io::Error::other(e.to_string()));
                }
                let line = e.position().map_or(line, |p| p.line());
                st.bad(path, line, format!("CSV: {e}"));
            }
        }
    }
}

/// The documented columns of one CSV record; a field that is not UTF-8 is an error.
fn csv_row<'r>(rec: &'r csv::ByteRecord, columns: &[Option<usize>; 12]) -> Result<Row<'r>, String> {
    let mut cells = [None; 12];
    for (i, col) in columns.iter().enumerate() {
        if let Some(bytes) = col.and_then(|c| rec.get(c)) {
            let s = std::str::from_utf8(bytes)
                .map_err(|_| format!("CSV: column {:?} is not UTF-8", COLUMNS[i]))?;
            cells[i] = Some(s);
        }
    }
    Ok(Row::from_cells(cells))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks of `data`: first line, text, oversized.
    fn cut(data: &[u8]) -> Vec<(u64, String, bool)> {
        let mut c = Cutter::new(data);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push((
                ch.first_line,
                String::from_utf8(ch.bytes).unwrap(),
                ch.oversized,
            ));
        }
        out
    }

    #[test]
    fn chunks_end_at_line_breaks_and_number_their_lines() {
        let line = "x".repeat(1000);
        let text: String = (0..5000).map(|_| format!("{line}\n")).collect();
        let chunks = cut(text.as_bytes());
        assert!(chunks.len() > 1);
        let mut next = 1;
        for (first, bytes, oversized) in &chunks {
            assert!(!oversized);
            assert_eq!(*first, next);
            assert!(bytes.ends_with('\n'));
            next += bytes.matches('\n').count() as u64;
        }
        assert_eq!(
            chunks.iter().map(|c| c.1.as_str()).collect::<String>(),
            text
        );
        // A last line without a newline is still a line.
        let chunks = cut(b"a\nb");
        let want = [(1, "a\n", false), (2, "b", false)].map(|(l, t, o)| (l, t.to_owned(), o));
        assert_eq!(chunks, want);
    }

    #[test]
    fn a_line_longer_than_a_chunk_stays_whole() {
        let long = "y".repeat(3 * CHUNK + 7);
        let text = format!("a\n{long}\nb\n");
        let chunks = cut(text.as_bytes());
        let all: String = chunks.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(all, text);
        let holding = chunks.iter().find(|c| c.1.contains(&long)).unwrap();
        assert!(holding.1.lines().any(|l| l == long));
    }
}
