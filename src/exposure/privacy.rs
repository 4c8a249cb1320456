//! What to export as `feature_flag.context.id`: the raw unit id, a pseudonym, or
//! nothing, for deployments that must not export raw user ids.

use std::str::FromStr;

/// How the unit id is exported (`--exposure-unit-id`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnitIdMode {
    /// The unit id as the caller sent it.
    #[default]
    Raw,
    /// A 128-bit hex hash of the unit id: joins across pods and exposures still
    /// work, but it is a pseudonym (an unsalted hash of a guessable id space can
    /// be reversed by enumeration), not anonymisation.
    Hash,
    /// No `feature_flag.context.id` attribute at all.
    Omit,
}

/// An unknown `--exposure-unit-id` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit id mode `{0}`: expected raw, hash or omit")]
pub struct UnknownMode(pub String);

impl FromStr for UnitIdMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "raw" => Ok(UnitIdMode::Raw),
            "hash" => Ok(UnitIdMode::Hash),
            "omit" => Ok(UnitIdMode::Omit),
            _ => Err(UnknownMode(s.to_owned())),
        }
    }
}

impl UnitIdMode {
    /// The exported value of `feature_flag.context.id` for `unit`, if any.
    pub fn export(self, unit: &str) -> Option<String> {
        match self {
            UnitIdMode::Raw => Some(unit.to_owned()),
            UnitIdMode::Hash => Some(hash_unit(unit)),
            UnitIdMode::Omit => None,
        }
    }

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitIdMode::Raw => "raw",
            UnitIdMode::Hash => "hash",
            UnitIdMode::Omit => "omit",
        }
    }
}

/// The pseudonym of a unit id: two independently seeded seahash halves of the
/// unit's bytes, as 32 lowercase hex digits (stable across pods and versions).
pub fn hash_unit(unit: &str) -> String {
    let a = seahash::hash_seeded(
        unit.as_bytes(),
        0x756e_6974_5f69_645f,
        0x6861_7368_5f76_315f,
        0x636f_686f_7274_6421,
        0x2545_f491_4f6c_dd1d,
    );
    let b = seahash::hash_seeded(
        unit.as_bytes(),
        0x756e_6974_5f69_645f,
        0x6861_7368_5f76_315f,
        0x636f_686f_7274_6422,
        0x9fb2_1c65_1e98_df25,
    );
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_export() {
        assert_eq!("raw".parse::<UnitIdMode>(), Ok(UnitIdMode::Raw));
        assert_eq!(" HASH ".parse::<UnitIdMode>(), Ok(UnitIdMode::Hash));
        assert_eq!("omit".parse::<UnitIdMode>(), Ok(UnitIdMode::Omit));
        assert_eq!("sha".parse::<UnitIdMode>(), Err(UnknownMode("sha".into())));
        assert_eq!(UnitIdMode::Raw.export("u1").as_deref(), Some("u1"));
        assert_eq!(UnitIdMode::Omit.export("u1"), None);
        let h = UnitIdMode::Hash.export("u1").unwrap();
        assert_eq!(h.len(), 32);
        assert!(!h.contains("u1"));
        assert_eq!(h, hash_unit("u1"));
        assert_ne!(h, hash_unit("u2"));
    }
}
