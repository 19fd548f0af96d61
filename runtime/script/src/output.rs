//! Typed values from what scripts return.
//!
//! Every conversion names the bad field and what was expected, so an analyst reading the log line or the
//! `forgecast check` output knows what to change.

use std::collections::BTreeMap;
use std::sync::Arc;

use forgecast_core::topic::validate_topic;
use rhai::{Array, Dynamic, Map};
use serde::Serialize;

/// Where `route` sends an event: no topics means the event is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteDecision {
    /// Topics, without duplicates, in the order the script gave them.
    pub topics: Vec<Arc<str>>,
    /// Partition key; the repository name when the script gives none.
    pub key: Option<Arc<str>>,
}

/// One feature value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FeatureValue {
    /// Integers and floats.
    Number(f64),
    /// Text, for categorical features.
    Text(String),
    /// Flags.
    Bool(bool),
}

/// What `features` returns: feature name → value.
pub type Features = BTreeMap<String, FeatureValue>;

/// What `should_retrain` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetrainDecision {
    /// Whether to train a challenger now.
    pub retrain: bool,
    /// Why, for the log and the model registry.
    pub reason: String,
    /// How the challenger learns, when the script says: `online` or `batch` (the model's default otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger: Option<String>,
    /// How many of the most recent labels it learns, when the script says (the model's default otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<u64>,
}

/// The kinds of challenger a retrain policy may ask for.
pub const CHALLENGERS: [&str; 2] = ["online", "batch"];
/// The fewest and most labels a retrain policy may ask a challenger to learn.
pub const CHALLENGER_LABELS: std::ops::RangeInclusive<u64> = 50..=100_000;

pub use forgecast_core::source::QuerySpec;

fn describe(value: &Dynamic) -> String {
    let shown = value.to_string();
    let shown = if shown.chars().count() > 40 {
        format!("{}…", shown.chars().take(40).collect::<String>())
    } else {
        shown
    };
    format!("{shown} ({})", value.type_name())
}

fn topic(value: &Dynamic, at: &str) -> Result<Arc<str>, String> {
    let name = value
        .clone()
        .into_immutable_string()
        .map_err(|_| format!("{at} is {}; expected a topic name", describe(value)))?;
    validate_topic(&name).map_err(|e| format!("{at}: {e}"))?;
    Ok(Arc::from(name.as_str()))
}

fn topics(value: &Dynamic, at: &str, into: &mut Vec<Arc<str>>) -> Result<(), String> {
    let push = |into: &mut Vec<Arc<str>>, t: Arc<str>| {
        if !into.contains(&t) {
            into.push(t);
        }
    };
    if value.is_unit() {
        Ok(())
    } else if let Some(items) = value.read_lock::<Array>() {
        for (i, item) in items.iter().enumerate() {
            push(into, topic(item, &format!("{at}[{i}]"))?);
        }
        Ok(())
    } else {
        push(into, topic(value, at)?);
        Ok(())
    }
}

impl RouteDecision {
    /// From `route`'s result: `()`, a topic, an array of topics, or `#{ topics: …, key: … }`.
    pub fn from_dynamic(value: &Dynamic) -> Result<RouteDecision, String> {
        let mut decision = RouteDecision::default();
        if let Some(map) = value.read_lock::<Map>() {
            for (field, v) in map.iter() {
                match field.as_str() {
                    "topic" | "topics" => topics(
                        v,
                        &format!("route returned `{field}`, which"),
                        &mut decision.topics,
                    )?,
                    "key" if v.is_unit() => {}
                    "key" => {
                        let key = v.clone().into_immutable_string().map_err(|_| {
                            format!("route returned `key` {}; expected a string", describe(v))
                        })?;
                        decision.key = Some(Arc::from(key.as_str()));
                    }
                    other => {
                        return Err(format!(
                            "route returned unknown field `{other}`; use `topics` and `key`"
                        ));
                    }
                }
            }
        } else {
            topics(value, "route returned a value that", &mut decision.topics)?;
        }
        Ok(decision)
    }
}

fn feature(name: &str, value: &Dynamic) -> Result<FeatureValue, String> {
    if let Ok(i) = value.as_int() {
        Ok(FeatureValue::Number(i as f64))
    } else if let Ok(f) = value.as_float() {
        Ok(FeatureValue::Number(f))
    } else if let Ok(b) = value.as_bool() {
        Ok(FeatureValue::Bool(b))
    } else if let Ok(s) = value.clone().into_immutable_string() {
        Ok(FeatureValue::Text(s.to_string()))
    } else {
        Err(format!(
            "feature `{name}` is {}; expected a number, string or bool",
            describe(value)
        ))
    }
}

/// From `features`' result: a map of feature name → number, string or bool.
/// `None` when the script returned `()`: the record is not one the model looks at.
pub fn features_from_dynamic(value: &Dynamic) -> Result<Option<Features>, String> {
    if value.is_unit() {
        return Ok(None);
    }
    let map = value.read_lock::<Map>().ok_or_else(|| {
        format!(
            "features returned {}; expected a map like #{{ comments: 3 }}, or () to skip the record",
            describe(value)
        )
    })?;
    map.iter()
        .map(|(name, v)| Ok((name.to_string(), feature(name, v)?)))
        .collect::<Result<Features, String>>()
        .map(Some)
}

/// From a features script's optional `event_types()`: the event types its `features` reads, a non-empty array
/// of names.
pub fn event_types_from_dynamic(value: &Dynamic) -> Result<Vec<String>, String> {
    const EXPECTED: &str =
        "expected a non-empty array of event type names, such as [\"IssuesEvent\"]";
    let array = value
        .read_lock::<Array>()
        .ok_or_else(|| format!("event_types returned {}; {EXPECTED}", describe(value)))?;
    if array.is_empty() {
        return Err(format!(
            "event_types returned an empty array, so the model would see no event; {EXPECTED}"
        ));
    }
    array
        .iter()
        .enumerate()
        .map(|(i, t)| match t.clone().into_string() {
            Ok(t) if !t.is_empty() => Ok(t),
            Ok(_) => Err(format!(
                "event_types: element {i} is an empty string; {EXPECTED}"
            )),
            Err(_) => Err(format!(
                "event_types: element {i} is {}; {EXPECTED}",
                describe(t)
            )),
        })
        .collect()
}

impl RetrainDecision {
    /// From `should_retrain`'s result: `#{ retrain: bool, reason: "…" }`, optionally with `challenger:
    /// "online" | "batch"` and `labels: N` (50 to 100,000).
    pub fn from_dynamic(value: &Dynamic) -> Result<RetrainDecision, String> {
        let map = value.read_lock::<Map>().ok_or_else(|| {
            format!(
                "should_retrain returned {}; expected #{{ retrain: bool, reason: \"…\" }}",
                describe(value)
            )
        })?;
        let mut retrain = None;
        let mut reason = String::new();
        let (mut challenger, mut labels) = (None, None);
        for (field, v) in map.iter() {
            match field.as_str() {
                "retrain" => {
                    retrain = Some(v.as_bool().map_err(|_| {
                        format!(
                            "should_retrain returned `retrain` {}; expected true or false",
                            describe(v)
                        )
                    })?)
                }
                "reason" => reason = v.to_string(),
                "challenger" => {
                    let kind = v
                        .clone()
                        .into_immutable_string()
                        .ok()
                        .filter(|k| CHALLENGERS.contains(&k.as_str()))
                        .ok_or_else(|| {
                            format!(
                                "should_retrain returned `challenger` {}; expected \"online\" or \"batch\"",
                                describe(v)
                            )
                        })?;
                    challenger = Some(kind.to_string());
                }
                "labels" => {
                    let n = v
                        .as_int()
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|n| CHALLENGER_LABELS.contains(n))
                        .ok_or_else(|| {
                            format!(
                                "should_retrain returned `labels` {}; expected a whole number from {} to {}",
                                describe(v),
                                CHALLENGER_LABELS.start(),
                                CHALLENGER_LABELS.end()
                            )
                        })?;
                    labels = Some(n);
                }
                other => {
                    return Err(format!(
                        "should_retrain returned unknown field `{other}`; use `retrain`, `reason`, `challenger` and \
                         `labels`"
                    ));
                }
            }
        }
        let retrain = retrain.ok_or("should_retrain returned no `retrain` field")?;
        Ok(RetrainDecision {
            retrain,
            reason,
            challenger,
            labels,
        })
    }
}

/// From `queries`' result: an array of `#{ name, path, params, every, max_pages }` maps.
pub fn queries_from_dynamic(value: &Dynamic) -> Result<Vec<QuerySpec>, String> {
    let items = value.read_lock::<Array>().ok_or_else(|| {
        format!(
            "queries returned {}; expected an array of query maps",
            describe(value)
        )
    })?;
    let mut specs: Vec<QuerySpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let spec = query_from_dynamic(item).map_err(|e| format!("query [{i}]: {e}"))?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(format!("query [{i}]: name {:?} is used twice", spec.name));
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn query_from_dynamic(value: &Dynamic) -> Result<QuerySpec, String> {
    let map = value
        .read_lock::<Map>()
        .ok_or_else(|| format!("{} is not a map", describe(value)))?;
    let text = |field: &str| -> Result<Option<String>, String> {
        map.get(field)
            .map(|v| {
                v.clone()
                    .into_string()
                    .map_err(|_| format!("`{field}` is {}; expected a string", describe(v)))
            })
            .transpose()
    };
    let count = |field: &str, default: i64| -> Result<i64, String> {
        match map.get(field) {
            None => Ok(default),
            Some(v) => match v.as_int() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!(
                    "`{field}` is {}; expected a whole number of at least 1",
                    describe(v)
                )),
            },
        }
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !["name", "path", "params", "every", "max_pages"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field `{unknown}`; use name, path, params, every, max_pages"
        ));
    }
    let name = text("name")?
        .filter(|n| !n.is_empty())
        .ok_or("`name` is missing")?;
    let path = text("path")?.ok_or("`path` is missing")?;
    if !path.starts_with('/') {
        return Err(format!("`path` {path:?} must start with '/'"));
    }
    let mut params = BTreeMap::new();
    if let Some(p) = map.get("params") {
        let p = p
            .read_lock::<Map>()
            .ok_or_else(|| format!("`params` is {}; expected a map", describe(p)))?;
        for (k, v) in p.iter() {
            if v.is_map() || v.is_array() || v.is_unit() {
                return Err(format!(
                    "`params.{k}` is {}; expected a string or number",
                    describe(v)
                ));
            }
            params.insert(k.to_string(), v.to_string());
        }
    }
    Ok(QuerySpec {
        name,
        path,
        params,
        every: count("every", 60)? as u64,
        max_pages: count("max_pages", 1)?.min(u32::MAX as i64) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(code: &str) -> Dynamic {
        rhai::Engine::new().eval::<Dynamic>(code).unwrap()
    }

    #[test]
    fn a_retrain_decision_may_name_its_challenger_and_labels() {
        let plain =
            RetrainDecision::from_dynamic(&eval(r#"#{ retrain: true, reason: "old" }"#)).unwrap();
        assert_eq!((plain.challenger, plain.labels), (None, None));
        let full = RetrainDecision::from_dynamic(&eval(
            r#"#{ retrain: true, reason: "drift", challenger: "batch", labels: 800 }"#,
        ))
        .unwrap();
        assert_eq!(full.challenger.as_deref(), Some("batch"));
        assert_eq!(full.labels, Some(800));
        for (code, names) in [
            (
                r#"#{ retrain: true, challenger: "forest" }"#,
                "`challenger`",
            ),
            (r#"#{ retrain: true, challenger: 1 }"#, "`challenger`"),
            (r#"#{ retrain: true, labels: 10 }"#, "from 50 to 100000"),
            (r#"#{ retrain: true, labels: 300.5 }"#, "`labels`"),
            (
                r#"#{ retrain: true, lables: 300 }"#,
                "unknown field `lables`",
            ),
        ] {
            let e = RetrainDecision::from_dynamic(&eval(code)).unwrap_err();
            assert!(e.contains(names), "{code}: {e}");
        }
    }

    #[test]
    fn route_accepts_every_documented_shape() {
        assert_eq!(
            RouteDecision::from_dynamic(&eval("()"))
                .unwrap()
                .topics
                .len(),
            0
        );
        assert_eq!(
            &*RouteDecision::from_dynamic(&eval(r#""gh.raw.push""#))
                .unwrap()
                .topics[0],
            "gh.raw.push"
        );
        let both = RouteDecision::from_dynamic(&eval(r#"["a", "b", "a"]"#)).unwrap();
        assert_eq!(both.topics, vec![Arc::from("a"), Arc::from("b")]);
        let keyed = RouteDecision::from_dynamic(&eval(r#"#{ topics: "a", key: "k" }"#)).unwrap();
        assert_eq!(keyed.key.as_deref(), Some("k"));
    }

    #[test]
    fn route_names_the_bad_element() {
        let err = RouteDecision::from_dynamic(&eval(r#"["a", 42]"#)).unwrap_err();
        assert!(err.contains("[1]") && err.contains("42"), "{err}");
        let err = RouteDecision::from_dynamic(&eval(r#""gh raw""#)).unwrap_err();
        assert!(err.contains("' '"), "{err}");
    }

    #[test]
    fn features_name_the_bad_feature() {
        assert_eq!(features_from_dynamic(&eval("()")).unwrap(), None);
        let ok = features_from_dynamic(&eval(r#"#{ n: 2, x: 0.5, s: "a", b: true }"#))
            .unwrap()
            .unwrap();
        assert_eq!(ok["n"], FeatureValue::Number(2.0));
        let err = features_from_dynamic(&eval("#{ labels: [1] }")).unwrap_err();
        assert!(err.contains("`labels`"), "{err}");
    }

    #[test]
    fn queries_get_defaults_and_refuse_unknown_fields() {
        let specs = queries_from_dynamic(&eval(
            r#"[#{ name: "ev", path: "/events", params: #{ per_page: 100 } }]"#,
        ))
        .unwrap();
        assert_eq!(specs[0].every, 60);
        assert_eq!(specs[0].params["per_page"], "100");
        let err = queries_from_dynamic(&eval(r#"[#{ name: "ev", path: "/events", evry: 5 }]"#))
            .unwrap_err();
        assert!(err.contains("`evry`"), "{err}");
    }
}
