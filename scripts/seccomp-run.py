#!/usr/bin/python3
"""Runs a command under a seccomp profile in the OCI/Docker JSON format, as a container
runtime would: the profile is compiled by libseccomp (the library runc and crun compile these
profiles with) and loaded by bubblewrap as its last step before execve.

    seccomp-run.py PROFILE.json /abs/path/to/cmd [ARGS...]

Exits with the command's status. Used by kubectl-karmor/tests/seccomp_profile.rs to check
that `recommend --seccomp` drafts let a recorded workload run again and deny what it never
did. Needs Debian's python3-seccomp and bubblewrap (.ci/run installs them).
"""
import errno
import json
import os
import subprocess
import sys
import tempfile

import seccomp  # Debian's python3-seccomp: libseccomp's own bindings


def action(name, errno_ret):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_ret if errno_ret is not None else errno.EPERM)
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    raise SystemExit(f"seccomp-run: unsupported action {name!r}")


def compile_profile(profile):
    default = action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(default)
    for arch in profile.get("architectures", []):
        try:
            f.add_arch(getattr(seccomp.Arch, arch.removeprefix("SCMP_ARCH_")))
        except (AttributeError, RuntimeError, ValueError):
            pass  # already present (the native one) or unknown here
    skipped = []
    for rule in profile.get("syscalls", []):
        act = action(rule["action"], rule.get("errnoRet"))
        for name in rule["names"]:
            try:
                f.add_rule(act, name)
            except (RuntimeError, ValueError):
                skipped.append(name)  # a name this architecture lacks: runc skips it too
    if skipped:
        print(f"seccomp-run: skipped unknown names {skipped}", file=sys.stderr)
    return f


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as fh:
        profile = json.load(fh)
    f = compile_profile(profile)
    with tempfile.TemporaryFile() as bpf:
        f.export_bpf(bpf)
        bpf.flush()
        bpf.seek(0)
        fd = bpf.fileno()
        cmd = ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--seccomp", str(fd), "--"] + sys.argv[2:]
        sys.exit(subprocess.run(cmd, pass_fds=(fd,)).returncode)


if __name__ == "__main__":
    main()
