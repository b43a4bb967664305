//! The gRPC example's generated code is checked in
//! (`examples/proto/tollgate.demo.rs`), so building the example needs no
//! protobuf compiler and no build script. This test generates it again from
//! `examples/proto/greeter.proto` with `protox` (a protobuf compiler in Rust,
//! nothing downloaded) and `tonic-prost-build`, and fails when the checked-in
//! file differs, saying how to refresh it.

use std::path::{Path, PathBuf};

const PROTO_DIR: &str = "examples/proto";
const PROTO: &str = "greeter.proto";
const GENERATED: &str = "tollgate.demo.rs";

/// Generates the Rust code of the example's proto into `out_dir`.
fn generate(root: &Path, out_dir: &Path) -> PathBuf {
    let descriptors = protox::compile([PROTO], [root.join(PROTO_DIR)])
        .unwrap_or_else(|e| panic!("{PROTO} does not compile: {e}"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(out_dir)
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("code generation failed: {e}"));
    out_dir.join(GENERATED)
}

#[test]
fn checked_in_code_matches_the_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpc_codegen");
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir).expect("remove the old output");
    }
    std::fs::create_dir_all(&out_dir).expect("create the output directory");

    let fresh_path = generate(root, &out_dir);
    let fresh = std::fs::read_to_string(&fresh_path)
        .unwrap_or_else(|e| panic!("no generated {}: {e}", fresh_path.display()));
    let checked_in_path = root.join(PROTO_DIR).join(GENERATED);
    let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();

    assert!(
        fresh.contains("pub mod greeter_client") && fresh.contains("pub mod greeter_server"),
        "the generated code has no client or no server"
    );
    assert!(
        fresh == checked_in,
        "{} is out of date with {PROTO}; refresh it with\n\n    \
         cargo test --test grpc_codegen; cp {} {}\n",
        checked_in_path.display(),
        fresh_path.display(),
        checked_in_path.display(),
    );
}
