//! "Did you mean": the closest known names to a misspelt one, for unknown
//! experiment keys, config fields and enum values.
//!
//! Lives in `config` (the bottom layer) so every layer above can use it.

/// Up to three candidates close to `word`, best first: a normalised
/// Damerau-Levenshtein similarity of at least 0.7, or a candidate that contains
/// `word` or is contained in it (a truncated or versioned key).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let lower = word.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter(|c| *c != word)
        .filter_map(|c| {
            let cl = c.to_ascii_lowercase();
            let mut score = strsim::normalized_damerau_levenshtein(&lower, &cl);
            if lower.len() >= 3 && (cl.contains(&lower) || lower.contains(&cl)) {
                score = score.max(0.7);
            }
            (score >= 0.7).then_some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// `"; did you mean `a`?"` (or `` `a` or `b` ``), or an empty string when
/// nothing is close: ready to append to an error message.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let found = closest(word, candidates);
    if found.is_empty() {
        return String::new();
    }
    let names: Vec<String> = found.iter().map(|c| format!("`{c}`")).collect();
    format!("; did you mean {}?", names.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_and_nothing_for_strangers() {
        let keys = ["exp-checkout-flow-v3", "payments-enabled", "search-ranking"];
        assert_eq!(
            closest("exp-checkout-flow-v4", keys),
            ["exp-checkout-flow-v3"]
        );
        assert_eq!(closest("payments", keys), ["payments-enabled"]);
        assert!(closest("zzz", keys).is_empty());
        assert_eq!(
            did_you_mean("runing", ["draft", "running", "paused"]),
            "; did you mean `running`?"
        );
        assert_eq!(did_you_mean("x", ["draft"]), "");
    }
}
