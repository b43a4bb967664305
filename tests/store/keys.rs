//! IP keys and byte keys never share a counter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tollgate::key::Key;
use tollgate::store::{Charge, Store};

use crate::support::{decide, room, store, Spec, ALL_SPECS};

#[test]
fn an_ip_key_and_the_same_bytes_are_separate_counters() {
    for spec in ALL_SPECS {
        let clock = tollgate::clock::ManualClock::new();
        let store = store(&clock);
        let limit = store.bind(&spec.limit("per-key", 2));
        let v4 = Key::ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
        let raw = Key::borrowed(&[1, 2, 3, 4], "raw").expect("key");
        let mapped_bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4];
        let mapped = Key::borrowed(&mapped_bytes, "raw").expect("key");
        let text = Key::borrowed(b"1.2.3.4", "raw").expect("key");

        let mut held = Vec::new();
        for _ in 0..2 {
            let verdict = crate::support::check(&store, &[Charge::new(&limit, &v4, 1)]);
            let verdict = verdict.expect("answered");
            assert!(verdict.decision.is_allowed(), "{spec:?}");
            held.push(verdict);
        }
        assert!(!decide(&store, &[Charge::new(&limit, &v4, 1)]).is_allowed());
        for other in [&raw, &mapped, &text] {
            assert_eq!(room(&store, &limit, other, 2), 2, "{spec:?} {other:?}");
        }
        // And the other way round: exhausting the byte key leaves the IP as it was.
        let held_raw: Vec<_> = (0..2)
            .map(|_| {
                crate::support::check(&store, &[Charge::new(&limit, &raw, 1)]).expect("answered")
            })
            .collect();
        assert!(held_raw.iter().all(|v| v.decision.is_allowed()));
        assert_eq!(room(&store, &limit, &raw, 2), 0, "{spec:?}");
        assert_eq!(room(&store, &limit, &text, 2), 2, "{spec:?}");
        assert_eq!(store.len(), 2, "{spec:?}: one IP key and one byte key");
        drop(held);
        let ip_room = if spec == Spec::Concurrent { 2 } else { 0 };
        assert_eq!(room(&store, &limit, &v4, 2), ip_room, "{spec:?}");
    }
}

/// An IPv4 address and the same address mapped into IPv6 (as a dual-stack
/// socket reports it) are one client, and one counter.
#[test]
fn an_ipv4_address_and_its_ipv6_mapped_form_share_a_counter() {
    let clock = tollgate::clock::ManualClock::new();
    let store = store(&clock);
    let limit =
        store.bind(&Spec::Rate(tollgate::algorithm::AlgorithmKind::Gcra).limit("per-ip", 2));
    let v4 = Key::ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let mapped = Key::ip(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()));
    let other_v6 = Key::ip(IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 0, 0, 0, 0, 0xc000, 0x0201,
    )));
    assert!(decide(&store, &[Charge::new(&limit, &v4, 1)]).is_allowed());
    assert!(decide(&store, &[Charge::new(&limit, &mapped, 1)]).is_allowed());
    assert!(!decide(&store, &[Charge::new(&limit, &v4, 1)]).is_allowed());
    assert_eq!(room(&store, &limit, &other_v6, 2), 2);
    assert_eq!(store.len(), 1);
}

/// Short byte keys are kept inside their map slot and long ones on the heap
/// (the boundary is 22 bytes): keys of every length around it, and keys
/// that differ only in a trailing zero byte, each keep their own counter,
/// are found again, and are forgotten once idle.
#[test]
fn byte_keys_of_every_length_keep_their_own_counters() {
    for spec in ALL_SPECS {
        let clock = tollgate::clock::ManualClock::new();
        let store = store(&clock);
        let limit = store.bind(&spec.limit("per-key", 2));
        let mut keys: Vec<Vec<u8>> = (1..=40).map(|len| vec![b'k'; len]).collect();
        keys.extend((1..=40).map(|len| {
            let mut key = vec![b'k'; len - 1];
            key.push(0);
            key
        }));
        let mut held = Vec::new();
        for bytes in &keys {
            let key = Key::borrowed(bytes, "raw").expect("key");
            let verdict = crate::support::check(&store, &[Charge::new(&limit, &key, 1)]);
            let verdict = verdict.expect("answered");
            assert!(
                verdict.decision.is_allowed(),
                "{spec:?} {} bytes",
                bytes.len()
            );
            held.push(verdict);
        }
        assert_eq!(store.len(), keys.len(), "{spec:?}: one counter per key");
        for bytes in &keys {
            let key = Key::borrowed(bytes, "raw").expect("key");
            assert_eq!(room(&store, &limit, &key, 2), 1, "{spec:?} {bytes:?}");
        }
        drop(held);
        if spec != Spec::Concurrent {
            clock.advance(std::time::Duration::from_secs(3600));
        }
        assert_eq!(store.sweep(), keys.len(), "{spec:?}: every key idle");
        assert!(store.is_empty(), "{spec:?}");
    }
}
