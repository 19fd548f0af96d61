//! `forgecast check [DIR]`: every script checked as a reload would check it.

use std::path::Path;

use forgecast_script::ScriptEngine;
use forgecast_script::host::check_dir;

/// Prints one `file:line:col: reason` line per problem; returns whether everything passed.
pub fn run(dir: &Path) -> bool {
    if !dir.is_dir() {
        eprintln!("{}: not a directory", dir.display());
        return false;
    }
    let (scripts, problems) = check_dir(&ScriptEngine::default(), dir);
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        let with_cases = scripts
            .iter()
            .filter(|s| s.path().with_extension("cases.jsonl").exists())
            .count();
        println!(
            "{} scripts OK ({with_cases} with cases) in {}",
            scripts.len(),
            dir.display()
        );
        true
    } else {
        eprintln!("{} problem(s) in {}", problems.len(), dir.display());
        false
    }
}
