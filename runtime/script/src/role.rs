//! What a script is for, decided by where it lives under the scripts directory.

use std::fmt;

/// The job of a script, and so the entry point it must define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// `routing.rhai`: `fn route(event)`.
    Routing,
    /// `features/<model>.rhai`: `fn features(record)`.
    Features,
    /// `policies/retrain.rhai`: `fn should_retrain(ctx)`.
    RetrainPolicy,
    /// `queries/<name>.rhai`: `fn queries()`.
    Queries,
}

impl Role {
    /// The role of the script with this id (its path under the scripts directory, without `.rhai`).
    pub fn of(id: &str) -> Option<Role> {
        match id.split_once('/') {
            None if id == "routing" => Some(Role::Routing),
            Some(("features", name)) if is_plain_name(name) => Some(Role::Features),
            Some(("policies", "retrain")) => Some(Role::RetrainPolicy),
            Some(("queries", name)) if is_plain_name(name) => Some(Role::Queries),
            _ => None,
        }
    }

    /// The function the script must define.
    pub fn entry(self) -> &'static str {
        match self {
            Role::Routing => "route",
            Role::Features => "features",
            Role::RetrainPolicy => "should_retrain",
            Role::Queries => "queries",
        }
    }

    /// The parameters that function takes.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Role::Routing => &["event"],
            Role::Features => &["record"],
            Role::RetrainPolicy => &["ctx"],
            Role::Queries => &[],
        }
    }

    /// The signature as an analyst would write it, for messages.
    pub fn signature(self) -> String {
        format!("fn {}({})", self.entry(), self.params().join(", "))
    }

    /// Where scripts of each role live, for messages about misplaced files.
    pub const LAYOUT: &'static str =
        "routing.rhai, features/<model>.rhai, policies/retrain.rhai or queries/<name>.rhai";
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Routing => "routing",
            Role::Features => "features",
            Role::RetrainPolicy => "retrain policy",
            Role::Queries => "queries",
        })
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_of_a_file_decides_its_role() {
        assert_eq!(Role::of("routing"), Some(Role::Routing));
        assert_eq!(Role::of("features/issue_outcome"), Some(Role::Features));
        assert_eq!(Role::of("policies/retrain"), Some(Role::RetrainPolicy));
        assert_eq!(Role::of("queries/events"), Some(Role::Queries));
        assert_eq!(Role::of("features/a/b"), None);
        assert_eq!(Role::of("helpers"), None);
    }
}
