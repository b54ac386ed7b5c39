//! Compiles the eBPF probes (bpf/karmor.bpf.c) into a CO-RE object with clang, against a
//! vmlinux.h that bpftool generates from this machine's kernel BTF. Without clang, bpftool or
//! BTF the rest still builds, and the collector says at start that it has no probes.
//!
//! Overrides: CLANG, BPFTOOL, KARMOR_VMLINUX_BTF (a BTF file), KARMOR_NO_PROBES=1.
//!
//! With the `grpc` feature it also generates the gRPC code of `proto/collector.proto` and
//! `proto/kubearmor.proto`; protox parses them, so no system `protoc` is needed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    #[cfg(feature = "grpc")]
    generate_grpc();
    println!("cargo:rustc-check-cfg=cfg(karmor_probes)");
    println!("cargo:rerun-if-changed=bpf/karmor.bpf.c");
    for var in ["CLANG", "BPFTOOL", "KARMOR_VMLINUX_BTF", "KARMOR_NO_PROBES"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var_os("CARGO_FEATURE_DAEMON").is_none() {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("karmor.bpf.o");
    match build_probes(&out, &obj) {
        Ok(()) => println!("cargo:rustc-cfg=karmor_probes"),
        Err(why) => {
            println!("cargo:warning=karmor-collector is built without eBPF probes: {why}");
            let _ = std::fs::write(&obj, b"");
        }
    }
}

fn build_probes(out: &Path, obj: &Path) -> Result<(), String> {
    if env::var("KARMOR_NO_PROBES").is_ok_and(|v| v == "1") {
        return Err("KARMOR_NO_PROBES=1".into());
    }
    let btf = env::var("KARMOR_VMLINUX_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());
    if !Path::new(&btf).exists() {
        return Err(format!("no kernel BTF at {btf}"));
    }
    let bpftool = env::var("BPFTOOL").unwrap_or_else(|_| "bpftool".into());
    let header = Command::new(&bpftool)
        .args(["btf", "dump", "file", &btf, "format", "c"])
        .output()
        .map_err(|e| format!("{bpftool} not runnable ({e}); install bpftool"))?;
    if !header.status.success() {
        return Err(format!(
            "bpftool failed: {}",
            String::from_utf8_lossy(&header.stderr)
        ));
    }
    std::fs::write(out.join("vmlinux.h"), &header.stdout).map_err(|e| e.to_string())?;
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => return Err(format!("no eBPF target arch mapping for {other}")),
        Err(_) => "x86",
    };
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg("-I")
        .arg(out)
        .args(["-c", "bpf/karmor.bpf.c", "-o"])
        .arg(obj)
        .status()
        .map_err(|e| format!("{clang} not runnable ({e}); install clang and libbpf-dev"))?;
    if !status.success() {
        return Err(format!("{clang} failed to compile bpf/karmor.bpf.c"));
    }
    Ok(())
}

/// Generates the tonic client and server code of our protos into OUT_DIR.
#[cfg(feature = "grpc")]
fn generate_grpc() {
    const PROTOS: [&str; 2] = ["proto/collector.proto", "proto/kubearmor.proto"];
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = match protox::compile(PROTOS, ["proto"]) {
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
