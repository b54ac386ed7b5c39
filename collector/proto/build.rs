//! Generates the tonic client and server code of `collector.proto` (ours) and `kubearmor.proto`
//! (KubeArmor's LogService subset) into OUT_DIR; protox parses them, so no system `protoc` is
//! needed.

fn main() {
    generate_grpc();
}

/// Generates the tonic client and server code of our protos into OUT_DIR.
fn generate_grpc() {
    const PROTOS: [&str; 2] = ["collector.proto", "kubearmor.proto"];
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = match protox::compile(PROTOS, ["."]) {
        Ok(fds) => fds,
        Err(e) => panic!("cannot parse the protobuf files: {e}"),
    };
    if let Err(e) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Ordered maps: a message encodes to the same bytes every time (de-duplication keys).
        .btree_map(".")
        .compile_fds(fds)
    {
        panic!("cannot generate the gRPC code: {e}");
    }
}
