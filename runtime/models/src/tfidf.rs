//! The tf-idf vectoriser: word n-grams and character n-grams within word boundaries, fitted on training texts
//! only.
//!
//! The idf of every term is stored when the vectoriser is fitted, so one text alone is weighed exactly as it
//! would be in a batch (linfa's `TfIdfVectorizer` recomputes idf from each batch it transforms, which is why this
//! is written here). Terms carry a one-letter prefix naming their block (`c` characters, `w` words) and the
//! vocabulary is sorted, so the same training texts always give the same feature indices, the same saved bytes,
//! and the character block first. Each block of a row is L2-normalised on its own and the row then scaled to unit
//! length, so that a text's many character n-grams do not drown its few words.

use serde::{Deserialize, Serialize};

use crate::sparse::{SparseMatrix, SparseVec};
use crate::text::{self, TokenKind};

/// The prefix of character n-gram terms.
const CHAR_BLOCK: char = 'c';
/// The prefix of word n-gram terms.
const WORD_BLOCK: char = 'w';

type TermIndex = foldhash::HashMap<Box<str>, u32>;

/// What the vectoriser extracts and how it weighs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureParams {
    /// The smallest and largest number of tokens in a word n-gram; `(1, 2)` is unigrams and bigrams.
    pub word_ngrams: (usize, usize),
    /// The smallest and largest character n-gram, taken inside each word padded with one space on either side;
    /// `None` leaves characters out.
    pub char_ngrams: Option<(usize, usize)>,
    /// Whether words after a negation become `not_word` (see [`text::mark_negation`]).
    pub negation: bool,
    /// Terms found in fewer training texts than this are dropped.
    pub min_df: usize,
    /// Whether a term counted `tf` times weighs `1 + ln(tf)` rather than `tf`.
    pub sublinear_tf: bool,
}

impl Default for FeatureParams {
    fn default() -> Self {
        FeatureParams {
            word_ngrams: (1, 2),
            char_ngrams: Some((2, 5)),
            negation: true,
            min_df: 2,
            sublinear_tf: true,
        }
    }
}

impl FeatureParams {
    /// Calls `emit` with every term of `text`, repeated terms as often as they occur. The same buffer is reused for
    /// every term, so nothing is allocated per term.
    pub fn for_each_term(&self, text: &str, emit: &mut dyn FnMut(&str)) {
        let mut tokens = text::tokenize(&text::normalize(text));
        if self.negation {
            text::mark_negation(&mut tokens);
        }
        let mut term = String::new();
        let (low, high) = self.word_ngrams;
        // Word n-grams stay inside a clause; breaks themselves are not features.
        for clause in tokens.split(|t| t.kind == TokenKind::Break) {
            for start in 0..clause.len() {
                for n in low.max(1)..=high {
                    if start + n > clause.len() {
                        break;
                    }
                    term.clear();
                    term.push(WORD_BLOCK);
                    for (k, token) in clause[start..start + n].iter().enumerate() {
                        if k > 0 {
                            term.push(' ');
                        }
                        if token.negated {
                            term.push_str("not_");
                        }
                        term.push_str(&token.text);
                    }
                    emit(&term);
                }
            }
        }
        let Some((low, high)) = self.char_ngrams else {
            return;
        };
        for token in tokens.iter().filter(|t| t.kind == TokenKind::Word) {
            let padded: Vec<char> = std::iter::once(' ')
                .chain(token.text.chars())
                .chain(std::iter::once(' '))
                .collect();
            for n in low.max(1)..=high {
                for window in padded.windows(n.min(padded.len())) {
                    term.clear();
                    term.push(CHAR_BLOCK);
                    term.extend(window);
                    emit(&term);
                }
                // A word shorter than n is counted once, as a whole, like scikit-learn's char_wb.
                if padded.len() <= n {
                    break;
                }
            }
        }
    }
}

/// Texts analysed once into interned terms, so that cross-validation fits a vectoriser per fold without
/// tokenising again. Holding every text's terms says nothing about the folds: what a fitted vectoriser keeps
/// depends only on the documents it is fitted on.
#[derive(Debug)]
pub struct Corpus {
    params: FeatureParams,
    terms: Vec<Box<str>>,
    docs: Vec<Vec<(u32, u32)>>,
}

impl Corpus {
    /// Analyses `texts` with `params`.
    pub fn new<S: AsRef<str>>(params: &FeatureParams, texts: &[S]) -> Self {
        let mut index = TermIndex::default();
        let mut terms = Vec::new();
        let mut docs = Vec::with_capacity(texts.len());
        let mut counts: foldhash::HashMap<u32, u32> = foldhash::HashMap::default();
        for text in texts {
            counts.clear();
            params.for_each_term(text.as_ref(), &mut |term| {
                let id = match index.get(term) {
                    Some(id) => *id,
                    None => {
                        let id = terms.len() as u32;
                        terms.push(Box::from(term));
                        index.insert(Box::from(term), id);
                        id
                    }
                };
                *counts.entry(id).or_insert(0) += 1;
            });
            let mut doc: Vec<(u32, u32)> = counts.iter().map(|(id, count)| (*id, *count)).collect();
            doc.sort_unstable();
            docs.push(doc);
        }
        Corpus {
            params: params.clone(),
            terms,
            docs,
        }
    }

    /// The number of texts.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the corpus holds no text.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// A fitted vectoriser: the sorted vocabulary and the idf of each of its terms.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "TfIdfData", into = "TfIdfData")]
pub struct TfIdf {
    params: FeatureParams,
    terms: Vec<Box<str>>,
    idf: Vec<f32>,
    /// Where the word block starts: every term before it is a character n-gram.
    word_start: u32,
    index: TermIndex,
}

/// The stored form of [`TfIdf`]: the lookup index is rebuilt on load.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TfIdfData {
    params: FeatureParams,
    terms: Vec<Box<str>>,
    idf: Vec<f32>,
}

impl From<TfIdf> for TfIdfData {
    fn from(v: TfIdf) -> Self {
        TfIdfData {
            params: v.params,
            terms: v.terms,
            idf: v.idf,
        }
    }
}

impl TryFrom<TfIdfData> for TfIdf {
    type Error = String;

    fn try_from(data: TfIdfData) -> Result<Self, String> {
        if data.terms.len() != data.idf.len() {
            return Err(format!(
                "{} terms but {} idf values",
                data.terms.len(),
                data.idf.len()
            ));
        }
        if !data.terms.windows(2).all(|w| w[0] < w[1]) {
            return Err("the vocabulary is not sorted".to_owned());
        }
        Ok(TfIdf::from_sorted(data.params, data.terms, data.idf))
    }
}

impl TfIdf {
    /// Fits a vectoriser on `texts`.
    pub fn fit<S: AsRef<str>>(params: &FeatureParams, texts: &[S]) -> Self {
        let corpus = Corpus::new(params, texts);
        let all: Vec<usize> = (0..corpus.len()).collect();
        TfIdf::fit_corpus(&corpus, &all)
    }

    /// Fits a vectoriser on the texts of `corpus` at positions `docs` (document frequencies, `min_df` and idf are
    /// computed from those texts alone).
    pub fn fit_corpus(corpus: &Corpus, docs: &[usize]) -> Self {
        let mut df = vec![0u32; corpus.terms.len()];
        for &doc in docs {
            for (term, _) in &corpus.docs[doc] {
                df[*term as usize] += 1;
            }
        }
        let min_df = corpus.params.min_df.max(1) as u32;
        let mut kept: Vec<(&str, u32)> = df
            .iter()
            .enumerate()
            .filter(|(_, d)| **d >= min_df)
            .map(|(t, d)| (&*corpus.terms[t], *d))
            .collect();
        kept.sort_unstable();
        // scikit-learn's smooth idf: as if one more text held every term once.
        let n = docs.len() as f64;
        let idf = kept
            .iter()
            .map(|(_, d)| (((1.0 + n) / (1.0 + f64::from(*d))).ln() + 1.0) as f32)
            .collect();
        let terms = kept.into_iter().map(|(t, _)| Box::from(t)).collect();
        TfIdf::from_sorted(corpus.params.clone(), terms, idf)
    }

    fn from_sorted(params: FeatureParams, terms: Vec<Box<str>>, idf: Vec<f32>) -> Self {
        let word_start = terms.partition_point(|t| !t.starts_with(WORD_BLOCK)) as u32;
        let index = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        TfIdf {
            params,
            terms,
            idf,
            word_start,
            index,
        }
    }

    /// The parameters the vectoriser was fitted with.
    pub fn params(&self) -> &FeatureParams {
        &self.params
    }

    /// The number of features (the vocabulary's size).
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The term of feature `index`, with its block prefix (`c` or `w`).
    pub fn term(&self, index: u32) -> &str {
        &self.terms[index as usize]
    }

    /// The idf of each feature.
    pub fn idf(&self) -> &[f32] {
        &self.idf
    }

    /// The weighted, normalised row of one text.
    pub fn transform(&self, text: &str) -> SparseVec {
        let mut counts: Vec<(u32, f32)> = Vec::new();
        self.params.for_each_term(text, &mut |term| {
            if let Some(index) = self.index.get(term) {
                counts.push((*index, 1.0));
            }
        });
        self.weigh(SparseVec::from_pairs(counts))
    }

    /// The rows of the texts of `corpus` at positions `docs`, which need not be those the vectoriser was fitted on.
    pub fn transform_corpus(&self, corpus: &Corpus, docs: &[usize]) -> SparseMatrix {
        assert_eq!(
            corpus.params, self.params,
            "the corpus was analysed with other parameters"
        );
        let mapping: Vec<Option<u32>> = corpus
            .terms
            .iter()
            .map(|t| self.index.get(t).copied())
            .collect();
        let mut matrix = SparseMatrix::new(self.len());
        for &doc in docs {
            let counts = corpus.docs[doc]
                .iter()
                .filter_map(|(t, c)| mapping[*t as usize].map(|i| (i, *c as f32)))
                .collect();
            matrix.push(self.weigh(SparseVec::from_pairs(counts)));
        }
        matrix
    }

    /// Turns raw counts into tf-idf, normalises each block and then the whole row.
    fn weigh(&self, counts: SparseVec) -> SparseVec {
        let pairs = counts.iter().map(|(i, tf)| {
            let tf = if self.params.sublinear_tf {
                1.0 + tf.ln()
            } else {
                tf
            };
            (i, tf * self.idf[i as usize])
        });
        let (chars, words): (Vec<_>, Vec<_>) = pairs.partition(|(i, _)| *i < self.word_start);
        let mut row = SparseVec::from_pairs(chars);
        let mut words = SparseVec::from_pairs(words);
        row.l2_normalize();
        words.l2_normalize();
        row.extend_shifted(&words, 0);
        row.l2_normalize();
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_only() -> FeatureParams {
        FeatureParams {
            word_ngrams: (1, 1),
            char_ngrams: None,
            negation: false,
            min_df: 1,
            sublinear_tf: false,
        }
    }

    fn terms(params: &FeatureParams, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        params.for_each_term(text, &mut |t| out.push(t.to_owned()));
        out
    }

    #[test]
    fn tfidf_of_a_tiny_corpus() {
        // Three texts; "good" is in two, "bad" in one, "code" in one (twice).
        let tfidf = TfIdf::fit(&words_only(), &["good good", "good bad", "code code"]);
        let vocab: Vec<&str> = (0..tfidf.len() as u32).map(|i| tfidf.term(i)).collect();
        assert_eq!(vocab, ["wbad", "wcode", "wgood"]);
        // idf = ln((1 + 3) / (1 + df)) + 1
        let expected = [
            (4f64 / 2.0).ln() + 1.0,
            (4f64 / 2.0).ln() + 1.0,
            (4f64 / 3.0).ln() + 1.0,
        ];
        for (got, want) in tfidf.idf().iter().zip(expected) {
            assert!((f64::from(*got) - want).abs() < 1e-6);
        }
        // "good bad" alone: tf 1 each, weighed by the stored idf, then unit length.
        let row = tfidf.transform("good bad");
        let (bad, good) = (expected[0], expected[2]);
        let norm = (bad * bad + good * good).sqrt();
        assert_eq!(row.indices(), [0, 2]);
        assert!((f64::from(row.values()[0]) - bad / norm).abs() < 1e-6);
        assert!((f64::from(row.values()[1]) - good / norm).abs() < 1e-6);
        // A text alone is weighed with the training idf, not its own.
        assert_eq!(
            tfidf.transform("good bad"),
            tfidf
                .transform_corpus(&Corpus::new(&words_only(), &["good bad"]), &[0])
                .row(0)
                .clone()
        );
    }

    #[test]
    fn sublinear_tf_and_min_df() {
        let params = FeatureParams {
            sublinear_tf: true,
            min_df: 2,
            ..words_only()
        };
        let tfidf = TfIdf::fit(&params, &["good good good", "good bad", "fine"]);
        assert_eq!(tfidf.len(), 1);
        let row = tfidf.transform("good good good bad");
        assert_eq!(row.indices(), [0]);
        assert!((row.values()[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn word_and_character_ngrams() {
        let params = FeatureParams {
            word_ngrams: (1, 2),
            char_ngrams: Some((2, 3)),
            negation: true,
            ..words_only()
        };
        let got = terms(&params, "Not ok. Yes");
        let words: Vec<&str> = got
            .iter()
            .filter(|t| t.starts_with('w'))
            .map(|t| &t[1..])
            .collect();
        assert_eq!(words, ["not", "not not_ok", "not_ok", "yes"]);
        let chars: Vec<&str> = got
            .iter()
            .filter(|t| t.starts_with('c'))
            .map(|t| &t[1..])
            .collect();
        assert_eq!(
            chars,
            [
                " n", "no", "ot", "t ", " no", "not", "ot ", " o", "ok", "k ", " ok", "ok ", " y",
                "ye", "es", "s ", " ye", "yes", "es "
            ]
        );
    }

    #[test]
    fn blocks_are_normalised_apart() {
        let params = FeatureParams {
            char_ngrams: Some((3, 3)),
            ..words_only()
        };
        let tfidf = TfIdf::fit(&params, &["ab"]);
        // One word term and one character term (" ab "), each its own block of norm 1, then the row scaled.
        let row = tfidf.transform("ab");
        assert_eq!(row.nnz(), 3);
        let half = std::f32::consts::FRAC_1_SQRT_2;
        let chars = 1.0 / 2f32.sqrt() * half;
        assert!((row.norm() - 1.0).abs() < 1e-6);
        assert!(
            (row.values()[2] - half).abs() < 1e-6,
            "word block keeps half the row's weight"
        );
        assert!((row.values()[0] - chars).abs() < 1e-6);
    }

    #[test]
    fn the_stored_form_round_trips() {
        let tfidf = TfIdf::fit(
            &FeatureParams {
                min_df: 1,
                ..FeatureParams::default()
            },
            &["this is fine :)", "not fine"],
        );
        let bytes = postcard::to_stdvec(&tfidf).expect("serialises");
        let back: TfIdf = postcard::from_bytes(&bytes).expect("deserialises");
        assert_eq!(
            back.transform("fine, not fine :)"),
            tfidf.transform("fine, not fine :)")
        );
    }
}
