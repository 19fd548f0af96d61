//! Text normalisation and tokenisation for developer discussions.
//!
//! [`normalize`] turns a comment into a lowercase string of space-separated tokens: quoted replies and code are
//! dropped (code leaves a `<code>` mark behind, since "a comment that is mostly code" says something), URLs,
//! @mentions and numbers become `<url>`, `<user>` and `<num>`, emoticons, GitHub shortcodes and emoji stay as
//! tokens, `!`/`?` runs become marks and sentence punctuation becomes a `.` break. [`tokenize`] reads that string
//! back as typed [`Token`]s, and [`mark_negation`] flags the words that follow a negation up to the next break.

/// What a token stands for; the feature extractor treats each kind differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A lowercase word (letters, digits after the first letter, `_`, inner apostrophes).
    Word,
    /// `<url>`, `<user>`, `<num>` or `<code>`.
    Placeholder,
    /// An emoticon (`:)`), a GitHub shortcode (`:tada:`) or an emoji character.
    Symbol,
    /// `!`, `?`, `!!`, `??`, `?!` or `...`.
    Mark,
    /// The end of a clause (`.`, `,`, `;`, `:`); ends a negation's scope and is never a feature itself.
    Break,
}

/// One token of a normalised text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The token's text as it appears in the normalised string.
    pub text: String,
    /// What the token stands for.
    pub kind: TokenKind,
    /// Whether the token lies in the scope of a preceding negation (set by [`mark_negation`]).
    pub negated: bool,
}

/// The placeholders [`normalize`] writes.
pub const PLACEHOLDERS: [&str; 4] = ["<url>", "<user>", "<num>", "<code>"];

/// ASCII emoticons, longest first so that `:-)` is not read as `:-` and `)`. Each maps to its nose-less form.
const EMOTICONS: [(&str, &str); 31] = [
    (">:(", ">:("),
    (":'(", ":'("),
    (":-)", ":)"),
    (":-(", ":("),
    (":-d", ":d"),
    (":-p", ":p"),
    (":-/", ":/"),
    (":-|", ":|"),
    (";-)", ";)"),
    ("^_^", "^^"),
    ("-_-", "-_-"),
    ("t_t", "t_t"),
    (":o)", ":)"),
    (":)", ":)"),
    (":(", ":("),
    (":]", ":)"),
    (":[", ":("),
    (":d", ":d"),
    (":p", ":p"),
    (":/", ":/"),
    (":\\", ":/"),
    (":|", ":|"),
    (":s", ":s"),
    (":o", ":o"),
    (";)", ";)"),
    (";d", ";d"),
    ("=)", ":)"),
    ("=(", ":("),
    ("=d", ":d"),
    ("^^", "^^"),
    ("<3", "<3"),
];

/// Words that open a negation's scope besides those ending in `n't`.
const NEGATIONS: [&str; 27] = [
    "not", "no", "never", "cannot", "nothing", "nobody", "none", "nowhere", "neither", "nor",
    "without", "dont", "doesnt", "didnt", "cant", "couldnt", "wont", "wouldnt", "shouldnt", "isnt",
    "arent", "wasnt", "werent", "havent", "hasnt", "hadnt", "aint",
];

/// Normalises a comment into lowercase space-separated tokens (see the module documentation).
pub fn normalize(text: &str) -> String {
    let unquoted = drop_quoted_lines(text);
    let without_code = replace_code(&unquoted);
    let mut out = String::with_capacity(without_code.len());
    scan(&without_code, &mut out);
    if out.ends_with(" .") {
        out.truncate(out.len().saturating_sub(2));
    }
    out
}

/// Reads a string written by [`normalize`] back as tokens.
pub fn tokenize(normalized: &str) -> Vec<Token> {
    normalized
        .split_whitespace()
        .map(|t| Token {
            text: t.to_owned(),
            kind: kind_of(t),
            negated: false,
        })
        .collect()
}

/// Flags every word after a negation word up to the next break, `!`/`?` mark or placeholder (Das and Chen's
/// scheme, as used by Pang, Lee and Vaithyanathan 2002), so that "not good" and "good" become different features.
pub fn mark_negation(tokens: &mut [Token]) {
    let mut in_scope = false;
    for token in tokens {
        match token.kind {
            TokenKind::Word if is_negation(&token.text) => in_scope = true,
            TokenKind::Word => token.negated = in_scope,
            TokenKind::Symbol => {}
            TokenKind::Placeholder | TokenKind::Mark | TokenKind::Break => in_scope = false,
        }
    }
}

fn is_negation(word: &str) -> bool {
    word.ends_with("n't") || NEGATIONS.contains(&word)
}

fn kind_of(token: &str) -> TokenKind {
    let first = token.chars().next().unwrap_or(' ');
    if PLACEHOLDERS.contains(&token) {
        TokenKind::Placeholder
    } else if token == "." {
        TokenKind::Break
    } else if matches!(token, "!" | "?" | "!!" | "??" | "?!" | "...") {
        TokenKind::Mark
    } else if first.is_alphanumeric() {
        TokenKind::Word
    } else {
        TokenKind::Symbol
    }
}

/// Drops the lines of a reply that quote an earlier message (`> ...`): their sentiment is someone else's.
fn drop_quoted_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if !line.trim_start().starts_with('>') {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Replaces fenced blocks (```` ``` ```` or `~~~`, closed or running to the end) and inline `code` spans with
/// ` <code> `. Fences are found anywhere, not only at line starts, because many stored comments lost their line
/// breaks.
fn replace_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let fence = ["```", "~~~"]
            .iter()
            .filter_map(|f| rest.find(f).map(|at| (at, *f)))
            .min();
        let Some((start, fence)) = fence else {
            replace_inline_code(rest, &mut out);
            return out;
        };
        replace_inline_code(&rest[..start], &mut out);
        out.push_str(" <code> ");
        let body = &rest[start + fence.len()..];
        rest = match body.find(fence) {
            Some(end) => &body[end + fence.len()..],
            None => "",
        };
    }
}

fn replace_inline_code(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let body = &rest[start + 1..];
        // A span ends on the same line; a lone backtick is only punctuation.
        match body.find('`').filter(|end| !body[..*end].contains('\n')) {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str(" <code> ");
                rest = &body[end + 1..];
            }
            None => {
                out.push_str(&rest[..start]);
                out.push(' ');
                rest = body;
            }
        }
    }
    out.push_str(rest);
}

const CODE: [char; 6] = ['<', 'c', 'o', 'd', 'e', '>'];

/// The character scanner behind [`normalize`]: URLs, mentions, shortcodes, emoticons, emoji, numbers, words,
/// marks and breaks, in that order of precedence.
fn scan(text: &str, out: &mut String) {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        if matches!(c, '.' | ',' | ';' | ':' | '\n') && !starts_token(&chars[i..], prev) {
            if !out.ends_with(" .") && !out.is_empty() {
                push(out, ".");
            }
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if chars[i..].starts_with(&CODE) {
            push(out, "<code>");
            i += CODE.len();
        } else if let Some(len) = url_len(&chars[i..]) {
            push(out, "<url>");
            i += len;
        } else if c == '@'
            && !is_word_char(prev)
            && chars.get(i + 1).is_some_and(|n| is_word_char(*n))
        {
            push(out, "<user>");
            i += 1 + chars[i + 1..]
                .iter()
                .take_while(|n| is_word_char(**n) || **n == '-')
                .count();
        } else if let Some(len) = shortcode_len(&chars[i..]) {
            push(out, &chars[i..i + len].iter().collect::<String>());
            i += len;
        } else if let Some((len, canonical)) = emoticon(&chars[i..], prev) {
            push(out, canonical);
            i += len;
        } else if is_emoji(c) {
            push(out, c.encode_utf8(&mut [0; 4]));
            i += 1;
        } else if c.is_ascii_digit() {
            push(out, "<num>");
            i += number_len(&chars[i..]);
        } else if c.is_alphanumeric() {
            let len = word_len(&chars[i..]);
            push(out, &squeeze_repeats(&chars[i..i + len]));
            i += len;
        } else if c == '!' || c == '?' {
            let run = chars[i..]
                .iter()
                .take_while(|n| **n == '!' || **n == '?')
                .count();
            let marks = &chars[i..i + run];
            let mark = match (marks.contains(&'!'), marks.contains(&'?'), run) {
                (true, true, _) => "?!",
                (true, false, 1) => "!",
                (true, false, _) => "!!",
                (false, _, 1) => "?",
                (false, _, _) => "??",
            };
            push(out, mark);
            i += run;
        } else if c == '.' && chars[i..].iter().take_while(|n| **n == '.').count() >= 3 {
            push(out, "...");
            i += chars[i..].iter().take_while(|n| **n == '.').count();
        } else {
            i += 1;
        }
    }
}

/// Whether punctuation at the start of `chars` opens a token (`:)`, `:tada:`, `...`) rather than ending a clause.
fn starts_token(chars: &[char], prev: char) -> bool {
    shortcode_len(chars).is_some()
        || emoticon(chars, prev).is_some()
        || chars.iter().take_while(|c| **c == '.').count() >= 3
}

fn push(out: &mut String, token: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn url_len(chars: &[char]) -> Option<usize> {
    let starts = ["http://", "https://", "www."];
    let is_url = starts
        .iter()
        .any(|s| chars.len() >= s.len() && s.chars().zip(chars).all(|(a, b)| a == *b));
    if !is_url {
        return None;
    }
    let mut len = chars
        .iter()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>'))
        .count();
    // A sentence's own punctuation after a link is not part of it.
    while len > 0
        && matches!(
            chars[len - 1],
            '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '\''
        )
    {
        len -= 1;
    }
    Some(len.max(1))
}

/// GitHub's `:name:` shortcodes (`:tada:`, `:+1:`, `:-1:`).
fn shortcode_len(chars: &[char]) -> Option<usize> {
    if chars.first() != Some(&':') {
        return None;
    }
    let name = chars[1..]
        .iter()
        .take_while(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '+' | '-')
        })
        .count();
    let first_ok = chars
        .get(1)
        .is_some_and(|c| c.is_ascii_lowercase() || matches!(c, '+' | '-'));
    (first_ok && (2..=32).contains(&name) && chars.get(1 + name) == Some(&':')).then_some(name + 2)
}

fn emoticon(chars: &[char], prev: char) -> Option<(usize, &'static str)> {
    // Faces are ASCII (tested): their first bytes rule out nearly every entry cheaply, where `starts_with(char)`
    // would compare through `memcmp` for each face.
    let first = *chars.first()?;
    if !first.is_ascii() {
        return None;
    }
    EMOTICONS
        .iter()
        .filter(|(face, _)| face.as_bytes().first() == Some(&(first as u8)))
        .find_map(|(face, canonical)| {
            let len = face.chars().count();
            let matches = chars.len() >= len && face.chars().zip(chars).all(|(a, b)| a == *b);
            let ends_in_letter = face.chars().last().is_some_and(|c| c.is_alphabetic());
            let starts_in_letter = face.chars().next().is_some_and(|c| c.is_alphabetic());
            // `:p` in `note:please` or `t_t` inside `get_type` are not faces.
            let glued_after = ends_in_letter && chars.get(len).is_some_and(|c| is_word_char(*c));
            let glued_before = starts_in_letter && is_word_char(prev);
            (matches && !glued_after && !glued_before).then_some((len, *canonical))
        })
}

/// Pictographic characters: the emoji blocks, dingbats and the miscellaneous symbols.
fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x1F000..=0x1F2FF)
}

/// A number with its inner separators and unit-like suffix (`3.4.1`, `1,000`, `2nd`, `10px`).
fn number_len(chars: &[char]) -> usize {
    let mut len = 0;
    while len < chars.len() {
        let c = chars[len];
        let inner_separator =
            matches!(c, '.' | ',') && chars.get(len + 1).is_some_and(|n| n.is_ascii_digit());
        if is_word_char(c) || inner_separator {
            len += 1;
        } else {
            break;
        }
    }
    len
}

/// A word, with inner apostrophes (`don't`, `it’s`).
fn word_len(chars: &[char]) -> usize {
    let mut len = 0;
    while len < chars.len() {
        let c = chars[len];
        let apostrophe =
            matches!(c, '\'' | '’') && chars.get(len + 1).is_some_and(|n| n.is_alphabetic());
        if is_word_char(c) || apostrophe {
            len += 1;
        } else {
            break;
        }
    }
    len
}

/// Shortens runs of three or more equal characters to two (`sooooo` -> `soo`), and writes `’` as `'`.
fn squeeze_repeats(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut run = 0;
    let mut last = None;
    for &c in chars {
        let c = if c == '’' { '\'' } else { c };
        run = if Some(c) == last { run + 1 } else { 1 };
        last = Some(c);
        if run <= 2 {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_reply_and_code_block_are_dropped() {
        let text = "> You broke the build!\n> Again.\nSorry :( the fix:\n```rust\nlet x = 1;\n```\nnow `cargo test` passes";
        assert_eq!(
            normalize(text),
            "sorry :( the fix . <code> . now <code> passes"
        );
    }

    #[test]
    fn urls_mentions_numbers_become_placeholders() {
        let text = "@octocat see https://github.com/a/b/pull/12, fixed in 3.4.1 (thanks @bob-2!)";
        assert_eq!(
            normalize(text),
            "<user> see <url> . fixed in <num> thanks <user> !"
        );
    }

    #[test]
    fn faces_are_ascii() {
        assert!(
            EMOTICONS
                .iter()
                .all(|(face, _)| !face.is_empty() && face.is_ascii())
        );
    }

    #[test]
    fn emoticons_shortcodes_and_emoji_are_tokens() {
        assert_eq!(
            normalize("Great :-) :tada: 🎉 LOL:D"),
            "great :) :tada: 🎉 lol :d"
        );
        // A colon before a word is punctuation, not a face.
        assert_eq!(normalize("Note:please"), "note . please");
    }

    #[test]
    fn words_are_lowercased_and_squeezed() {
        assert_eq!(
            normalize("Sooooo GOOD!!!  Don’t... really?!"),
            "soo good !! don't ... really ?!"
        );
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end() {
        assert_eq!(normalize("see ``` fn main() {} // awful"), "see <code>");
    }

    #[test]
    fn negation_reaches_the_next_break() {
        let mut tokens = tokenize(&normalize("This doesn't look good, but fine."));
        mark_negation(&mut tokens);
        let negated: Vec<&str> = tokens
            .iter()
            .filter(|t| t.negated)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(negated, ["look", "good"]);
        assert_eq!(
            tokens.iter().find(|t| t.text == ".").map(|t| t.kind),
            Some(TokenKind::Break)
        );
    }

    #[test]
    fn token_kinds() {
        let kinds: Vec<TokenKind> = tokenize("<url> ok ?! :) .")
            .iter()
            .map(|t| t.kind)
            .collect();
        use TokenKind::*;
        assert_eq!(kinds, [Placeholder, Word, Mark, Symbol, Break]);
    }
}
