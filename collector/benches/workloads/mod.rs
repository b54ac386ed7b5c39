//! Realistic workloads for the probe-overhead part of the collector bench (issue 11, design §8:
//! "each realistic workload <= 5 % in total"): a generated C project compiled with `make -j2`,
//! and `tar` creating, extracting and listing a generated tree of small files. Both run as
//! child processes, so their CPU time is the children's rusage of the bench process.
//!
//! The inputs live on tmpfs (`/dev/shm`) unless `KARMOR_BENCH_WORKDIR` names another directory:
//! on a disk shared with other work, `tar`'s time is mostly the disk's queue (one run measured
//! 1.7 s and the next 31 s without any probe), which hides the probes' cost.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Source files of the generated C project.
pub const C_FILES: usize = 120;
/// Files of the generated tree that `tar` archives (in `TREE_DIRS` directories).
pub const TREE_FILES: usize = 20_000;
const TREE_DIRS: usize = 200;

/// The generated inputs, in a temporary directory removed on drop.
pub struct Workloads {
    dir: tempfile::TempDir,
}

/// Runs `cmd`, its output discarded; an error names the command and its status.
fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {status}"))
    }
}

impl Workloads {
    /// Generates the C project (`C_FILES` sources, each including a shared header, its own
    /// header and a few system headers, a Makefile with one object per source and a link
    /// step) and the tree for `tar` (`TREE_FILES` files of 100-2000 bytes).
    pub fn generate() -> Result<Self, String> {
        let base = std::env::var_os("KARMOR_BENCH_WORKDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/dev/shm"));
        let dir = tempfile::tempdir_in(&base)
            .map_err(|e| format!("temporary directory in {}: {e}", base.display()))?;
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        let project = dir.path().join("cproject");
        fs::create_dir_all(project.join("include")).map_err(|e| io(&project, e))?;
        let common = project.join("include/common.h");
        fs::write(
            &common,
            "#ifndef COMMON_H\n#define COMMON_H\n#include <stddef.h>\n#include <stdint.h>\n\
             struct item { uint64_t key; char name[32]; double weight; };\n\
             static inline uint64_t mix(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; \
             return x ^ (x >> 29); }\n#endif\n",
        )
        .map_err(|e| io(&common, e))?;
        let mut objs = String::new();
        let mut main = String::from("#include <stdio.h>\n#include \"common.h\"\n");
        let mut calls = String::new();
        for i in 0..C_FILES {
            let h = project.join(format!("include/mod{i}.h"));
            fs::write(
                &h,
                format!("#include \"common.h\"\nuint64_t mod{i}_run(struct item *it, size_t n);\n"),
            )
            .map_err(|e| io(&h, e))?;
            let c = project.join(format!("mod{i}.c"));
            fs::write(
                &c,
                format!(
                    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\
                     #include \"common.h\"\n#include \"mod{i}.h\"\n\n\
                     static int cmp(const void *a, const void *b) {{\n\
                     \tconst struct item *x = a, *y = b;\n\
                     \treturn (x->key > y->key) - (x->key < y->key);\n}}\n\n\
                     uint64_t mod{i}_run(struct item *it, size_t n) {{\n\
                     \tuint64_t acc = {i};\n\
                     \tfor (size_t k = 0; k < n; k++) {{\n\
                     \t\tit[k].key = mix(acc + k);\n\
                     \t\tsnprintf(it[k].name, sizeof it[k].name, \"m{i}-%zu\", k);\n\
                     \t\tit[k].weight = (double)(it[k].key % 1000) / 7.0;\n\
                     \t}}\n\
                     \tqsort(it, n, sizeof *it, cmp);\n\
                     \tfor (size_t k = 0; k < n; k++) acc += it[k].key ^ strlen(it[k].name);\n\
                     \treturn acc;\n}}\n"
                ),
            )
            .map_err(|e| io(&c, e))?;
            let _ = write!(objs, " mod{i}.o");
            let _ = writeln!(main, "#include \"mod{i}.h\"");
            let _ = writeln!(calls, "\tacc += mod{i}_run(items, 64);");
        }
        let _ = write!(
            main,
            "int main(void) {{\n\tstatic struct item items[64];\n\tuint64_t acc = 0;\n{calls}\
             \tprintf(\"%llu\\n\", (unsigned long long)acc);\n\treturn 0;\n}}\n"
        );
        let main_c = project.join("main.c");
        fs::write(&main_c, main).map_err(|e| io(&main_c, e))?;
        let makefile = project.join("Makefile");
        fs::write(
            &makefile,
            format!(
                "CFLAGS = -O2 -Wall -Iinclude\nOBJS = main.o{objs}\n\n\
                 app: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n\
                 %.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\n\
                 clean:\n\trm -f app $(OBJS)\n"
            ),
        )
        .map_err(|e| io(&makefile, e))?;

        let tree = dir.path().join("tree");
        let mut body = Vec::new();
        for f in 0..TREE_FILES {
            let d = tree.join(format!("d{:03}", f % TREE_DIRS));
            if f < TREE_DIRS {
                fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
            }
            let len = 100 + (f * 7919) % 1900;
            body.clear();
            body.extend((0..len).map(|k| b'a' + ((k + f) % 26) as u8));
            let p = d.join(format!("file{f}.txt"));
            fs::write(&p, &body).map_err(|e| io(&p, e))?;
        }
        Ok(Self { dir })
    }

    /// Where the inputs are.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("cproject")
    }

    /// `make clean` of the C project (between rounds, not timed).
    pub fn make_clean(&self) -> Result<(), String> {
        run(Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(self.project())
            .arg("clean"))
    }

    /// `make -j2` of the C project, from clean.
    pub fn make(&self) -> Result<(), String> {
        run(Command::new("make")
            .args(["-s", "-j2", "-C"])
            .arg(self.project()))
    }

    /// `tar` of the tree: create an archive, extract it into a fresh directory, list it.
    pub fn tar(&self) -> Result<(), String> {
        let (archive, out) = (
            self.dir.path().join("tree.tar"),
            self.dir.path().join("out"),
        );
        run(Command::new("tar")
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(self.dir.path())
            .arg("tree"))?;
        fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        run(Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&out))?;
        run(Command::new("tar").arg("-tf").arg(&archive))
    }

    /// Removes what `tar` left (between rounds, not timed).
    pub fn tar_clean(&self) -> Result<(), String> {
        let (archive, out) = (
            self.dir.path().join("tree.tar"),
            self.dir.path().join("out"),
        );
        let _ = fs::remove_file(&archive);
        match fs::remove_dir_all(&out) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", out.display()))
            }
            _ => Ok(()),
        }
    }
}
