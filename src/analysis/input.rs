//! Reading input files as a stream of records, with every bad line reported.
//!
//! Files ending in `.csv` are CSV with a header row; anything else is JSON
//! lines, each line either an OTLP export request (the Collector's `file`
//! exporter) or a flat record (`flat.rs`). Lines are read one at a time with a
//! length limit, so memory does not grow with the file. A line that does not
//! parse is never dropped quietly: it is counted, and the first
//! [`MAX_EXAMPLES`] are kept with file, line number and reason.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::record::Record;
use super::{flat, otlp};

/// Longest accepted line (a Collector batch of a few thousand records fits easily).
pub const MAX_LINE: u64 = 64 << 20;
/// Bad lines kept verbatim in the report; the rest are only counted.
pub const MAX_EXAMPLES: usize = 20;

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
#[derive(Debug, Default, Clone, serde::Serialize)]
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

/// Reads every file once, calling `sink` for each record. When `stats` is
/// given, records and bad lines are counted into it (the second pass over the
/// same files passes `None` so nothing is counted twice).
pub fn scan(
    paths: &[PathBuf],
    mut stats: Option<&mut InputStats>,
    mut sink: impl FnMut(Record),
) -> Result<(), InputError> {
    let mut scratch = InputStats::default();
    for path in paths {
        let st = stats.as_deref_mut().unwrap_or(&mut scratch);
        st.files += 1;
        let file = File::open(path).map_err(|source| InputError {
            path: path.clone(),
            source,
        })?;
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let res = if is_csv {
            scan_csv(path, file, st, &mut sink)
        } else {
            scan_lines(path, file, st, &mut sink)
        };
        res.map_err(|source| InputError {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

fn count(st: &mut InputStats, r: &Record) {
    match r {
        Record::Exposure(_) => st.exposures += 1,
        Record::Outcome(_) => st.outcomes += 1,
    }
}

fn scan_lines(
    path: &Path,
    file: File,
    st: &mut InputStats,
    sink: &mut impl FnMut(Record),
) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') && n as u64 > MAX_LINE {
            // Skip the rest of the oversized line without holding it.
            let mut sink_buf = Vec::new();
            loop {
                sink_buf.clear();
                let m = reader
                    .by_ref()
                    .take(1 << 20)
                    .read_until(b'\n', &mut sink_buf)?;
                if m == 0 || sink_buf.last() == Some(&b'\n') {
                    break;
                }
            }
            st.bad(path, line_no, format!("line longer than {MAX_LINE} bytes"));
            continue;
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let head = &line[..line.len().min(64)];
        let otlp = head.windows(14).any(|w| w == b"\"resourceLogs\"");
        if otlp {
            match otlp::parse_line(line) {
                Ok(p) => {
                    st.other_records += p.other;
                    st.without_unit += p.no_unit;
                    for r in p.records {
                        count(st, &r);
                        sink(r);
                    }
                }
                Err(e) => st.bad(path, line_no, e),
            }
        } else {
            match flat::parse_json_line(line) {
                Ok(r) => {
                    count(st, &r);
                    sink(r);
                }
                Err(e) => st.bad(path, line_no, e),
            }
        }
    }
}

fn scan_csv(
    path: &Path,
    file: File,
    st: &mut InputStats,
    sink: &mut impl FnMut(Record),
) -> std::io::Result<()> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
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
                let row: Result<flat::Row, _> = rec.deserialize(Some(&headers));
                match row
                    .map_err(|e| format!("CSV: {e}"))
                    .and_then(flat::Row::into_record)
                {
                    Ok(r) => {
                        count(st, &r);
                        sink(r);
                    }
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
