//! Parsing many config files on two threads, with results in file order.
//!
//! Parsing is most of a large reload's time (10,000 experiments in 100 files:
//! about two thirds of the reload, `benches/tools/reload_time.rs`), and files
//! parse independently, so a reload splits the files into two contiguous halves
//! of about equal size in bytes and parses the second half on a scoped thread
//! while the reload thread parses the first. Results are concatenated in file
//! order, so documents and errors are exactly those of a sequential parse (the
//! `parse_parallel` tests compare the two; the threads are `crate::halves`).
//! Small configs (below [`PARALLEL_BYTES`]) parse on the calling thread: starting
//! a thread costs more than they take.

use std::borrow::Borrow;

use crate::config::{ConfigDocument, ConfigError, RawFile};

/// Total size under which files are parsed on the calling thread alone.
pub const PARALLEL_BYTES: usize = 256 * 1024;

/// One file's parse: the document as far as it could be read, and its problems.
pub type Parsed = (Option<ConfigDocument>, Vec<ConfigError>);

/// [`crate::config::parse::parse_file_partial`] for every file of `raw`, in
/// order (files or references to them: a reload parses only those that changed).
pub fn parse_all<F: Borrow<RawFile> + Sync>(raw: &[F]) -> Vec<Parsed> {
    let total: usize = raw.iter().map(|f| f.borrow().bytes.len()).sum();
    if raw.len() < 2 || total < PARALLEL_BYTES {
        return parse_run(raw);
    }
    let (mut out, rest) =
        crate::halves::run_in_two(raw, split_point(raw), "cohortd-parse", parse_run);
    out.extend(rest);
    out
}

fn parse_run<F: Borrow<RawFile>>(files: &[F]) -> Vec<Parsed> {
    files
        .iter()
        .map(|f| crate::config::parse::parse_file_partial(&f.borrow().path, &f.borrow().bytes))
        .collect()
}

/// The index that splits `raw` into two runs of about half the bytes each (at
/// least one file in each).
fn split_point<F: Borrow<RawFile>>(raw: &[F]) -> usize {
    crate::halves::split_point(raw.iter().map(|f| f.borrow().bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(name: &str, text: String) -> RawFile {
        RawFile {
            path: PathBuf::from(name),
            bytes: text.into_bytes(),
        }
    }

    /// Files large enough together to take the two-thread path, some valid and
    /// some with errors, so both documents and error order are compared.
    fn mixed_files() -> Vec<RawFile> {
        (0..40)
            .map(|i| {
                let items: Vec<String> = (0..100)
                    .map(|j| {
                        if (i + j) % 37 == 0 {
                            format!(r#"{{"key":"e{i}-{j}","status":"running","variants":[],"bogus":1}}"#)
                        } else {
                            format!(
                                r#"{{"key":"e{i}-{j}","status":"running","variants":["a","b"],"description":"{}"}}"#,
                                "x".repeat(40)
                            )
                        }
                    })
                    .collect();
                let text = if i == 7 {
                    "{ not json".to_owned()
                } else {
                    format!("[{}]", items.join(","))
                };
                file(&format!("f{i:02}.json"), text)
            })
            .collect()
    }

    #[test]
    fn two_threads_give_the_sequential_result() {
        let raw = mixed_files();
        let total: usize = raw.iter().map(|f| f.bytes.len()).sum();
        assert!(
            total >= PARALLEL_BYTES,
            "the test must take the parallel path"
        );
        let parallel = parse_all(&raw);
        let sequential = parse_run(&raw);
        assert_eq!(parallel.len(), raw.len());
        assert_eq!(parallel, sequential);
        assert!(
            parallel.iter().any(|(_, e)| !e.is_empty()),
            "errors are compared too"
        );
        assert!(
            parallel[7].0.is_none(),
            "the unparseable file has no document"
        );
    }

    #[test]
    fn split_point_halves_by_bytes_and_keeps_a_file_on_each_side() {
        let sizes = |v: &[usize]| -> Vec<RawFile> {
            v.iter()
                .enumerate()
                .map(|(i, n)| file(&format!("{i}"), "x".repeat(*n)))
                .collect()
        };
        let raw = sizes(&[10, 10, 10, 10]);
        assert_eq!(split_point(&raw), 2);
        let raw = sizes(&[1000, 1, 1]);
        assert_eq!(split_point(&raw), 1);
        let raw = sizes(&[1, 1, 1000]);
        assert_eq!(split_point(&raw), 2);
        let raw = sizes(&[5, 5]);
        assert_eq!(split_point(&raw), 1);
    }
}
