//! GitHut 2.0's files (`data/githut/gh-*.json`): a JSON array of `{name, year, quarter, count}` strings, the
//! events of one type per repository language and quarter. Read once here for the runtime's counters and for the
//! forecasts' share series.

use serde::Deserialize;

/// One language's events in one quarter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithutCount {
    /// The language.
    pub language: String,
    /// The year.
    pub year: i32,
    /// The quarter, 1 to 4.
    pub quarter: u8,
    /// Events.
    pub count: u64,
}

#[derive(Deserialize)]
struct Row {
    name: String,
    year: String,
    quarter: String,
    count: String,
}

/// Reads a GitHut file; the error names the row and field that is not a number.
pub fn parse(bytes: &[u8]) -> Result<Vec<GithutCount>, String> {
    let rows: Vec<Row> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a GitHut file: {e}"))?;
    rows.into_iter()
        .map(|r| {
            let bad = |field: &str, value: &str| {
                format!("{field} {value:?} of {} is not a number", r.name)
            };
            let year: i32 = r.year.parse().map_err(|_| bad("year", &r.year))?;
            let quarter: u8 = r
                .quarter
                .parse()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .ok_or_else(|| bad("quarter", &r.quarter))?;
            let count: u64 = r.count.parse().map_err(|_| bad("count", &r.count))?;
            Ok(GithutCount {
                language: r.name,
                year,
                quarter,
                count,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_and_bad_numbers_named() {
        let rows = parse(br#"[{"name":"Rust","year":"2024","quarter":"1","count":"12"}]"#).unwrap();
        assert_eq!(
            rows,
            [GithutCount {
                language: "Rust".into(),
                year: 2024,
                quarter: 1,
                count: 12
            }]
        );
        let bad = parse(br#"[{"name":"Go","year":"2024","quarter":"5","count":"1"}]"#).unwrap_err();
        assert!(bad.contains("quarter \"5\" of Go"), "{bad}");
    }
}
