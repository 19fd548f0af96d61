//! The event parser against `serde_json` on the bundled real events: every line gives the fields a plain JSON
//! tree gives, and lines damaged byte by byte (truncated, a byte replaced by a quote, a bracket, a backslash, a
//! control character, …) are refused exactly when `serde_json` refuses them, or else read alike.

use forgecast_core::EventFields;
use forgecast_core::time::parse_timestamp;
use forgecast_gharchive::replay::sample_lines;
use serde_json::Value;

/// id, type, actor, repository, organisation, creation time, language.
type Fields = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
);

/// What a plain JSON tree says the parser should give, or `None` when it should refuse the line.
fn expected(line: &str) -> Option<Fields> {
    let value: Value = serde_json::from_str(line).ok()?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let id = match &value["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return None,
    };
    let kind = text(&value["type"])?;
    let actor = text(&value["actor"]["login"])?;
    let repo = text(&value["repo"]["name"])?;
    let org = match &value["org"] {
        Value::Null => None,
        org => Some(text(&org["login"])?).filter(|o| !o.is_empty()),
    };
    if id.is_empty() || kind.is_empty() || repo.is_empty() {
        return None;
    }
    let created_at = parse_timestamp(value["created_at"].as_str()?)?;
    let language = kind
        .starts_with("PullRequest")
        .then(|| text(&value["payload"]["pull_request"]["base"]["repo"]["language"]))
        .flatten()
        .filter(|l| !l.is_empty());
    Some((id, kind, actor, repo, org, created_at, language))
}

fn parsed(line: &str) -> Option<Fields> {
    let e = EventFields::parse(line).ok()?;
    Some((
        e.id.into_owned(),
        e.kind.into_owned(),
        e.actor.into_owned(),
        e.repo.into_owned(),
        e.org.map(|o| o.into_owned()),
        e.created_at,
        e.language.map(|l| l.into_owned()),
    ))
}

#[test]
fn every_bundled_event_reads_as_a_json_tree_says() {
    let lines = sample_lines();
    assert!(lines.len() > 3_000);
    let mut languages = 0;
    for line in &lines {
        let want = expected(line);
        assert!(want.is_some(), "a bundled line is not an event: {line}");
        languages += usize::from(want.as_ref().is_some_and(|w| w.6.is_some()));
        assert_eq!(parsed(line), want, "{line}");
    }
    assert!(languages > 0, "some pull requests carry their language");
}

#[test]
fn damaged_lines_are_refused_exactly_when_serde_json_refuses_them() {
    let replacements: &[u8] = b"\"\\{}[],:0 \x01x-e.";
    let mut refused = 0;
    let mut compared = 0;
    for line in sample_lines().iter().step_by(101) {
        let bytes = line.as_bytes();
        for at in (0..bytes.len()).step_by(61) {
            let mut cut = line.clone();
            cut.truncate(line.floor_char_boundary(at));
            let mut damaged = vec![cut];
            if line.is_char_boundary(at) && line.is_char_boundary(at + 1) {
                for r in replacements {
                    let mut changed = bytes.to_vec();
                    changed[at] = *r;
                    damaged.push(String::from_utf8(changed).unwrap());
                }
            }
            for text in damaged {
                // A number too large for a float is valid JSON that a JSON tree cannot hold: not comparable.
                if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()
                    && serde_json::from_str::<Value>(&text).is_err()
                {
                    continue;
                }
                let (want, got) = (expected(&text), parsed(&text));
                refused += usize::from(want.is_none());
                compared += 1;
                assert_eq!(got, want, "{text}");
            }
        }
    }
    assert!(
        compared > 5_000 && refused > 1_000,
        "{compared} compared, {refused} refused"
    );
}
