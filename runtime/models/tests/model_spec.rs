//! `models/sentiment/model.toml` is the declarative spec of the sentiment model: its `[params]` must be what the
//! crate trains with by default, and its paths must exist.

use std::path::PathBuf;

use forgecast_models::Params;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_spec_params_are_the_default_params() {
    let text = std::fs::read_to_string(repository().join("models/sentiment/model.toml"))
        .expect("the spec exists");
    let spec: toml::Table = toml::from_str(&text).expect("the spec is TOML");
    let params: Params = spec["params"]
        .clone()
        .try_into()
        .expect("[params] reads as Params");
    assert_eq!(params, Params::default());
    let data = spec["training"]["data"].as_str().expect("training.data");
    assert!(repository().join(data).is_file(), "{data}");
    for other in spec["evaluation"]["cross_dataset"]
        .as_array()
        .expect("evaluation.cross_dataset")
    {
        let other = other.as_str().expect("a path");
        assert!(repository().join(other).is_file(), "{other}");
    }
}
