//! GitHut 2.0's quarterly counts per language (2012Q2–2024Q1), bundled as the history of previous years.
//!
//! Four series, one per event type: pull requests, pushes, stars (`WatchEvent`) and issues, each counting the
//! events of a quarter per repository language (see `data/githut/SOURCE.md` for how GitHut computed them).
//! They become counters of the [`Dimension::GithutLanguage`] dimension at quarter granularity, keyed as the
//! runtime's own `type_language` counters (`PushEvent/Rust`), so the trends can put them side by side without
//! one source overwriting the other.

use forgecast_core::aggregate::{
    AggregateRow, Dimension, Granularity, quarter_start, type_language,
};

/// Each series: the event type it counts and the file's content.
pub const SERIES: [(&str, &[u8]); 4] = [
    (
        "PullRequestEvent",
        include_bytes!("../../../data/githut/gh-pull-request.json"),
    ),
    (
        "PushEvent",
        include_bytes!("../../../data/githut/gh-push-event.json"),
    ),
    (
        "WatchEvent",
        include_bytes!("../../../data/githut/gh-star-event.json"),
    ),
    (
        "IssuesEvent",
        include_bytes!("../../../data/githut/gh-issue-event.json"),
    ),
];

/// Reads one GitHut file as counters of `kind`.
pub fn parse(kind: &str, bytes: &[u8]) -> Result<Vec<AggregateRow>, String> {
    let counts = forgecast_core::githut::parse(bytes).map_err(|e| format!("{kind}: {e}"))?;
    Ok(counts
        .into_iter()
        .map(|c| AggregateRow {
            granularity: Granularity::Quarter,
            bucket: quarter_start(c.year, c.quarter),
            dimension: Dimension::GithutLanguage,
            key: type_language(kind, &c.language),
            count: c.count,
        })
        .collect())
}

/// Every bundled series as counters.
pub fn bundled() -> Result<Vec<AggregateRow>, String> {
    let mut all = Vec::new();
    for (kind, bytes) in SERIES {
        all.extend(parse(kind, bytes)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_history_has_every_row_of_the_four_series() {
        let rows = bundled().unwrap();
        assert_eq!(rows.len(), 4_757 + 4_753 + 4_564 + 3_912);
        let js = rows
            .iter()
            .find(|r| r.key == "PullRequestEvent/JavaScript" && r.bucket == quarter_start(2012, 2))
            .unwrap();
        assert!(js.count > 0);
    }

    #[test]
    fn a_bad_row_is_named() {
        let err = parse(
            "PushEvent",
            br#"[{"name":"Rust","year":"2020","quarter":"5","count":"1"}]"#,
        )
        .unwrap_err();
        assert!(err.contains("quarter \"5\" of Rust"), "{err}");
    }
}
