//! Compiles the eBPF probes (bpf/karmor.bpf.c) into a CO-RE object with clang, against a
//! vmlinux.h that bpftool generates from this machine's kernel BTF. Without clang, bpftool or
//! BTF the rest still builds, and the collector says at start that it has no probes. When the
//! tools are there and the compile fails, the build fails: a broken `karmor.bpf.c` must never
//! ship as a collector without probes. `KARMOR_REQUIRE_PROBES=1` (CI) makes a missing tool
//! fatal too.
//!
//! Overrides: CLANG, BPFTOOL, KARMOR_VMLINUX_BTF (a BTF file), KARMOR_NO_PROBES=1.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(karmor_probes)");
    println!("cargo:rerun-if-changed=bpf/karmor.bpf.c");
    println!("cargo:rerun-if-changed=bpf/karmor_empty.bpf.c");
    for var in [
        "CLANG",
        "BPFTOOL",
        "KARMOR_VMLINUX_BTF",
        "KARMOR_NO_PROBES",
        "KARMOR_REQUIRE_PROBES",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("karmor.bpf.o");
    let required = env::var("KARMOR_REQUIRE_PROBES").is_ok_and(|v| v == "1");
    match build_probes(&out, &obj) {
        Ok(()) => println!("cargo:rustc-cfg=karmor_probes"),
        Err(Missing::Broken(why)) => panic!("the eBPF probes do not compile: {why}"),
        Err(Missing::Tool(why)) if required => {
            panic!("KARMOR_REQUIRE_PROBES=1 but the probes cannot be built: {why}")
        }
        Err(Missing::Tool(why)) => {
            println!("cargo:warning=karmor-collector is built without eBPF probes: {why}");
            let _ = std::fs::write(&obj, b"");
            let _ = std::fs::write(out.join("karmor_empty.bpf.o"), b"");
        }
    }
}

/// Why no probe object was built.
enum Missing {
    /// A tool or the kernel BTF is absent, or probes were turned off: the daemon builds
    /// without probes and says so at start.
    Tool(String),
    /// The tools ran and the probes did not compile: a bug in `karmor.bpf.c`.
    Broken(String),
}

fn build_probes(out: &Path, obj: &Path) -> Result<(), Missing> {
    if env::var("KARMOR_NO_PROBES").is_ok_and(|v| v == "1") {
        return Err(Missing::Tool("KARMOR_NO_PROBES=1".into()));
    }
    let btf = env::var("KARMOR_VMLINUX_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());
    if !Path::new(&btf).exists() {
        return Err(Missing::Tool(format!("no kernel BTF at {btf}")));
    }
    let bpftool = env::var("BPFTOOL").unwrap_or_else(|_| "bpftool".into());
    let header = Command::new(&bpftool)
        .args(["btf", "dump", "file", &btf, "format", "c"])
        .output()
        .map_err(|e| Missing::Tool(format!("{bpftool} not runnable ({e}); install bpftool")))?;
    if !header.status.success() {
        return Err(Missing::Tool(format!(
            "bpftool failed: {}",
            String::from_utf8_lossy(&header.stderr)
        )));
    }
    std::fs::write(out.join("vmlinux.h"), &header.stdout)
        .map_err(|e| Missing::Broken(format!("cannot write vmlinux.h: {e}")))?;
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => {
            return Err(Missing::Tool(format!(
                "no eBPF target arch mapping for {other}"
            )))
        }
        Err(_) => "x86",
    };
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // libbpf's headers come from a package of their own (libbpf-dev): without them the compile
    // cannot start, which is a missing tool, not a broken probe.
    let helpers = [
        "/usr/include/bpf/bpf_helpers.h",
        "/usr/local/include/bpf/bpf_helpers.h",
    ];
    if !helpers.iter().any(|h| Path::new(h).exists()) {
        return Err(Missing::Tool(
            "libbpf's bpf_helpers.h is not installed; install libbpf-dev".into(),
        ));
    }
    compile(&clang, arch, out, "bpf/karmor.bpf.c", obj)?;
    // The same hooks with empty programs: the floor a benchmark sets beside the probes.
    compile(
        &clang,
        arch,
        out,
        "bpf/karmor_empty.bpf.c",
        &out.join("karmor_empty.bpf.o"),
    )?;
    write_c_layout(&bpftool, obj, &out.join("c_layout.rs"))
}

/// Compiles one BPF source into `obj` (CO-RE, against `out`'s vmlinux.h).
fn compile(clang: &str, arch: &str, out: &Path, src: &str, obj: &Path) -> Result<(), Missing> {
    let status = Command::new(clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg("-I")
        .arg(out)
        .args(["-c", src, "-o"])
        .arg(obj)
        .status()
        .map_err(|e| {
            Missing::Tool(format!(
                "{clang} not runnable ({e}); install clang and libbpf-dev"
            ))
        })?;
    if !status.success() {
        return Err(Missing::Broken(format!(
            "{clang} failed to compile {src} (its errors are above)"
        )));
    }
    Ok(())
}

/// The structs whose layout src/raw.rs decodes by hand.
const MIRRORED: [&str; 4] = ["karmor_event", "dedup_key", "count_key", "count_val"];

/// Writes, for each struct of [`MIRRORED`], a module of constants: the byte offset of every
/// field (upper-cased name) and `SIZE`, read from the BTF of the compiled object, so that
/// src/raw.rs can assert at compile time that its offsets are the C ones.
fn write_c_layout(bpftool: &str, obj: &Path, dest: &Path) -> Result<(), Missing> {
    let dump = Command::new(bpftool)
        .args(["btf", "dump", "file"])
        .arg(obj)
        .args(["format", "raw"])
        .output()
        .map_err(|e| Missing::Broken(format!("{bpftool} btf dump of the probe object: {e}")))?;
    if !dump.status.success() {
        return Err(Missing::Broken(format!(
            "{bpftool} cannot read the probe object's BTF: {}",
            String::from_utf8_lossy(&dump.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&dump.stdout);
    let mut rust = String::from("// Generated by build.rs from the BTF of karmor.bpf.o.\n");
    for name in MIRRORED {
        let fields = struct_layout(&text, name)
            .ok_or_else(|| Missing::Broken(format!("no struct {name} in the probe's BTF")))?;
        rust += &format!("#[allow(dead_code)]\npub mod {name} {{\n");
        for (field, offset) in fields {
            rust += &format!(
                "    pub const {}: usize = {offset};\n",
                field.to_uppercase()
            );
        }
        rust += "}\n";
    }
    std::fs::write(dest, rust)
        .map_err(|e| Missing::Broken(format!("cannot write {}: {e}", dest.display())))
}

/// `[("SIZE", size), (field, byte offset), ...]` of `struct name` in `bpftool btf dump ...
/// format raw` output, whose lines read `[22] STRUCT 'karmor_event' size=2504 vlen=26` and
/// then, one per field, `\t'ts_ns' type_id=17 bits_offset=0`.
fn struct_layout(dump: &str, name: &str) -> Option<Vec<(String, usize)>> {
    let header = format!("STRUCT '{name}' size=");
    let mut lines = dump.lines().skip_while(|l| !l.contains(&header));
    let first = lines.next()?;
    let after = &first[first.find(&header)? + header.len()..];
    let size: usize = after.split_whitespace().next()?.parse().ok()?;
    let mut out = vec![("SIZE".to_owned(), size)];
    for line in lines.take_while(|l| l.starts_with('\t')) {
        let field = line.trim().strip_prefix('\'')?.split('\'').next()?;
        let bits: usize = line
            .split("bits_offset=")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        if !bits.is_multiple_of(8) {
            return None;
        }
        out.push((field.to_owned(), bits / 8));
    }
    (out.len() > 1).then_some(out)
}
