//! Config errors that say where: file, experiment and field.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in the config, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file it was found in (or the directory, for cross-file problems).
    pub file: PathBuf,
    /// The experiment key, when the problem belongs to one.
    pub experiment: Option<String>,
    /// Path of the field inside the experiment (or document), e.g. `variants[1].weight`.
    pub field: Option<String>,
    /// What is wrong, written for the person fixing it.
    pub message: String,
    /// `experiment` holds a flagd-format flag's key (printed as `flag`).
    pub flagd: bool,
}

impl ConfigError {
    /// A problem with a whole file (unreadable, unparseable).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            experiment: None,
            field: None,
            message: message.into(),
            flagd: false,
        }
    }

    /// A problem with one field of one experiment.
    pub fn field(
        file: &Path,
        experiment: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.to_owned(),
            experiment: Some(experiment.to_owned()),
            field: Some(field.into()),
            message: message.into(),
            flagd: false,
        }
    }

    /// A problem with one field of one flagd-format flag.
    pub fn flag(
        file: &Path,
        flag: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            flagd: true,
            ..ConfigError::field(file, flag, field, message)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(e) = &self.experiment {
            let what = if self.flagd { "flag" } else { "experiment" };
            write!(f, ": {what} `{e}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config directory. A load never stops at the first one,
/// so `cohortd validate` can list them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// The first error, for one-line summaries (metrics labels, readiness detail).
    pub fn first(&self) -> Option<&ConfigError> {
        self.0.first()
    }
}
