//! Config: the file format people write, and reading it from disk.
//!
//! This is the first stage of the pipeline `config -> snapshot -> engine ->
//! transports`: nothing here is on the request path.

pub mod error;
pub mod flagd;
pub mod flagd_schema;
pub mod lenient;
pub mod load;
pub mod model;
pub mod parse;
pub mod parse_parallel;
pub mod read_limits;
pub mod redact;
pub mod schema;
pub mod suggest;

pub use error::{ConfigError, ConfigErrors};
pub use load::{load_path, parse_sources, read_sources, read_sources_with, RawFile};
pub use model::*;
pub use parse::{parse_file, SourceFile};
pub use read_limits::ReadLimits;
