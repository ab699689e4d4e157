//! Compiles the vendored CRI `api.proto` (see proto/README.md) with protox: no `protoc`.

fn main() {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let fds = match protox::compile(["api.proto"], ["proto"]) {
        Ok(f) => f,
        Err(e) => panic!("compiling proto/api.proto: {e}"),
    };
    // server and client (the daemon's tests speak gRPC to berthd with the client); the
    // messages derive serde: pod records are stored as the CRI's own JSON
    let r = tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .compile_fds(fds);
    if let Err(e) = r {
        panic!("generating the CRI code: {e}");
    }
}
