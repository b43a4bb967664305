//! Any text given as quotas parses or fails with a typed error; a quota that
//! parses prints back to text that parses to the same quota.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::quota::{Quota, Quotas};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(quota) = text.parse::<Quota>() {
        let again: Quota = quota.to_string().parse().expect("canonical text parses");
        assert_eq!(again, quota);
    }
    let _ = text.parse::<Quotas>();
    let _ = tollgate::Plans::from_toml(text);
});
