//! Embeds the directory of the prebuilt libduckdb.so as an rpath, so that tests, benches and
//! binaries find it without LD_LIBRARY_PATH. Nothing to do for `--features bundled`.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
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
