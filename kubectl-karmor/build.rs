//! Embeds the directory of the prebuilt libduckdb.so as an rpath, so that tests, benches and
//! binaries find it without LD_LIBRARY_PATH. Nothing to do for `--features bundled`.
//!
//! `KARMOR_RPATH_ORIGIN=1` (set by scripts/release.sh) embeds `$ORIGIN` instead: the shipped
//! binary looks for libduckdb.so in its own directory, where the release tarball puts it,
//! and carries no path of the machine that built it.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=KARMOR_RPATH_ORIGIN");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    if std::env::var("KARMOR_RPATH_ORIGIN").is_ok_and(|v| v == "1") {
        // Passed to the linker without a shell: `$ORIGIN` reaches ld.so literally.
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
        return;
    }
    match std::env::var("DUCKDB_LIB_DIR") {
        Ok(dir) => match std::fs::canonicalize(&dir) {
            Ok(real) if real.join("libduckdb.so").exists() => {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", real.display());
            }
            _ => println!(
                "cargo:warning=no libduckdb.so in {dir}: run scripts/setup-duckdb.sh (or build with --features bundled)"
            ),
        },
        Err(_) => println!(
            "cargo:warning=DUCKDB_LIB_DIR is not set: run scripts/setup-duckdb.sh (or build with --features bundled)"
        ),
    }
}
