//! GitHut 2.0's counts per language and quarter (`data/githut/gh-*.json`) as share series.
//!
//! The share of a language in a period is its count divided by the total of every language the file lists in that
//! period; a language the file does not list in a period has share 0 there. The top languages are those with the
//! largest count over the whole file, as in the project's reference script. (The files are read by
//! `forgecast_core::githut`, as the runtime's counters are.)

use std::collections::{BTreeMap, HashMap};

use super::{ForecastError, Series};

/// The period shares are computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// Calendar quarters: every quarter the file has.
    Quarter,
    /// Calendar years: only years whose four quarters are all in the file.
    Year,
}

/// Share series over the same periods.
#[derive(Clone, Debug, PartialEq)]
pub struct Shares {
    /// The periods, oldest first: `2012Q2` or `2013`.
    pub periods: Vec<String>,
    /// One series per language, largest total first.
    pub series: Vec<Series>,
}

/// The shares of the `top` languages of a GitHut file (a JSON array of `{name, year, quarter, count}` strings)
/// per `granularity`.
pub fn shares(json: &[u8], granularity: Granularity, top: usize) -> Result<Shares, ForecastError> {
    let rows = forgecast_core::githut::parse(json).map_err(ForecastError::Githut)?;
    // Counts per (year, quarter) and language.
    let mut counts: BTreeMap<(i32, u8), HashMap<String, u64>> = BTreeMap::new();
    let mut totals: HashMap<String, u64> = HashMap::new();
    for r in &rows {
        *counts
            .entry((r.year, r.quarter))
            .or_default()
            .entry(r.language.clone())
            .or_default() += r.count;
        *totals.entry(r.language.clone()).or_default() += r.count;
    }
    let mut languages: Vec<(&String, &u64)> = totals.iter().collect();
    languages.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let languages: Vec<&String> = languages
        .into_iter()
        .take(top)
        .map(|(name, _)| name)
        .collect();

    let periods: Vec<(String, Vec<&HashMap<String, u64>>)> = match granularity {
        Granularity::Quarter => counts
            .iter()
            .map(|((year, quarter), c)| (format!("{year}Q{quarter}"), vec![c]))
            .collect(),
        Granularity::Year => {
            let mut years: BTreeMap<i32, Vec<&HashMap<String, u64>>> = BTreeMap::new();
            for ((year, _), c) in &counts {
                years.entry(*year).or_default().push(c);
            }
            years
                .into_iter()
                .filter(|(_, quarters)| quarters.len() == 4)
                .map(|(year, quarters)| (year.to_string(), quarters))
                .collect()
        }
    };
    let series = languages
        .iter()
        .map(|name| Series {
            key: (*name).clone(),
            values: periods
                .iter()
                .map(|(_, quarters)| {
                    let own: u64 = quarters.iter().filter_map(|c| c.get(*name)).sum();
                    let all: u64 = quarters.iter().flat_map(|c| c.values()).sum();
                    own as f64 / all as f64
                })
                .collect(),
        })
        .collect();
    Ok(Shares {
        periods: periods.into_iter().map(|(p, _)| p).collect(),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"[
        {"name": "Rust", "year": "2020", "quarter": "4", "count": "10"},
        {"name": "Go", "year": "2020", "quarter": "4", "count": "30"},
        {"name": "Rust", "year": "2021", "quarter": "1", "count": "20"},
        {"name": "Go", "year": "2021", "quarter": "1", "count": "20"},
        {"name": "Zig", "year": "2021", "quarter": "1", "count": "10"},
        {"name": "Rust", "year": "2021", "quarter": "2", "count": "1"},
        {"name": "Rust", "year": "2021", "quarter": "3", "count": "1"},
        {"name": "Rust", "year": "2021", "quarter": "4", "count": "1"}
    ]"#;

    #[test]
    fn shares_divide_by_every_listed_language_of_the_period() {
        let s = shares(FILE.as_bytes(), Granularity::Quarter, 2).unwrap();
        assert_eq!(
            s.periods,
            ["2020Q4", "2021Q1", "2021Q2", "2021Q3", "2021Q4"]
        );
        // Go (50) and Rust (33) are the top two; Zig counts in the 2021Q1 total only.
        assert_eq!(s.series[0].key, "Go");
        assert_eq!(s.series[0].values, [0.75, 0.4, 0.0, 0.0, 0.0]);
        assert_eq!(s.series[1].values, [0.25, 0.4, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn years_sum_their_four_quarters_and_incomplete_years_are_left_out() {
        let s = shares(FILE.as_bytes(), Granularity::Year, 3).unwrap();
        assert_eq!(s.periods, ["2021"]);
        // 2021: Rust 23, Go 20, Zig 10 of 53.
        let rust = s.series.iter().find(|s| s.key == "Rust").unwrap();
        assert_eq!(rust.values, [23.0 / 53.0]);
    }

    #[test]
    fn a_bad_row_is_named() {
        let err = shares(
            br#"[{"name":"Rust","year":"2020","quarter":"5","count":"1"}]"#,
            Granularity::Quarter,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("quarter \"5\" of Rust"), "{err}");
    }
}
