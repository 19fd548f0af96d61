//! The scripts shipped in `scripts/` pass their own cases on the production engine.

use std::path::Path;

use forgecast_script::host::check_dir;
use forgecast_script::{Role, ScriptEngine};

#[test]
fn every_shipped_script_compiles_and_passes_its_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    let (scripts, problems) = check_dir(&ScriptEngine::default(), &dir);
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{shown:#?}");
    for role in [
        Role::Routing,
        Role::Features,
        Role::RetrainPolicy,
        Role::Queries,
    ] {
        assert!(
            scripts.iter().any(|s| s.role() == role),
            "no {role} script is shipped"
        );
    }
    for script in &scripts {
        assert!(
            script.path().with_extension("cases.jsonl").exists(),
            "{} has no cases file",
            script.path().display()
        );
    }
}
