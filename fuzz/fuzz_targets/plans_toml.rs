//! The TOML plan loader: any plan file built from the input (tier names,
//! limits text, algorithms and modes, in a valid TOML skeleton so the input
//! reaches the loader's own checks) loads or fails with a typed error, and
//! a plan that loads is consistent: its default tier is one of its tiers,
//! every tier's limits are valid quotas, and loading it again gives the
//! same plans.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::Plans;

/// A TOML basic string of `s` (quotes and backslashes escaped, control
/// characters dropped).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Fields separated by '|': default, algorithm, mode, then name, limits,
    // algorithm, mode per tier.
    let fields: Vec<&str> = text.split('|').collect();
    let field = |i: usize| fields.get(i).copied();
    let mut toml = String::from("[plans]\n");
    for (key, i) in [("default", 0), ("algorithm", 1), ("mode", 2)] {
        if let Some(v) = field(i).filter(|v| !v.is_empty()) {
            toml.push_str(&format!("{key} = {}\n", quoted(v)));
        }
    }
    for tier in fields.get(3..).unwrap_or(&[]).chunks(4) {
        toml.push_str("\n[[plans.tier]]\n");
        toml.push_str(&format!("name = {}\n", quoted(tier[0])));
        toml.push_str(&format!("limits = {}\n", quoted(tier.get(1).copied().unwrap_or(""))));
        if let Some(a) = tier.get(2).filter(|a| !a.is_empty()) {
            toml.push_str(&format!("algorithm = {}\n", quoted(a)));
        }
        if let Some(m) = tier.get(3).filter(|m| !m.is_empty()) {
            toml.push_str(&format!("mode = {}\n", quoted(m)));
        }
    }
    for input in [toml.as_str(), text] {
        let Ok(plans) = Plans::from_toml(input) else { continue };
        let names: Vec<&str> = plans.tiers().iter().map(|t| t.name()).collect();
        assert!(!names.is_empty(), "a plan with no tier loaded");
        assert!(names.contains(&plans.default_tier().name()));
        for tier in plans.tiers() {
            for limit in tier.limits() {
                assert!(limit.quota().count() >= 1);
            }
        }
        let again = Plans::from_toml(input).expect("loads again");
        assert_eq!(again.tiers().len(), plans.tiers().len());
        for (a, b) in again.tiers().iter().zip(plans.tiers()) {
            assert_eq!(a.name(), b.name());
            assert_eq!(a.limits(), b.limits());
            assert_eq!(a.mode(), b.mode());
        }
    }
});
