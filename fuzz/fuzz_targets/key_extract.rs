//! Arbitrary header bytes never make an extractor panic, and a forwarded
//! chain from an untrusted peer never changes the key.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use tollgate::key::{
    ApiKeyOrIp, BearerToken, ClientIp, ForwardedHeader, HeaderKey, KeyExtractor, PeerAddr,
    RequestInfo, TrustedProxies,
};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let peer = SocketAddr::from(([10, 0, 0, 1], 443));
    let mut builder = http::Request::builder();
    for name in ["x-forwarded-for", "forwarded", "x-real-ip", "x-api-key", "authorization"] {
        builder = builder.header(name, value.clone());
    }
    let Ok(mut request) = builder.body(()) else { return };
    request.extensions_mut().insert(PeerAddr(peer));
    let info = RequestInfo::new(&request);

    let trusted = TrustedProxies::new(["10.0.0.0/8"]).expect("cidr");
    for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded, ForwardedHeader::XRealIp] {
        let _ = ClientIp::new().trust(trusted.clone()).header(header).extract(&info);
        // Untrusted peer: the key is always the peer, whatever the headers say.
        let key = ClientIp::new().header(header).extract(&info).expect("peer key");
        assert_eq!(key.key().as_ip(), Some(peer.ip()));
    }
    let _ = HeaderKey::new("x-api-key").extract(&info);
    let _ = BearerToken::new().extract(&info);
    let _ = ApiKeyOrIp::new(|k: &str| (k.len() % 2 == 0).then_some("even")).extract(&info);
});
