"""The tools compared, and what it takes to make the rivals run on this kernel.

bcc needs kernel headers, which this kernel does not have: we give it a tree
made from the kernel's BTF (see ``bcc_tree``). bpftrace's runqlat.bt includes
<linux/sched.h> for TASK_RUNNING alone: we drop the include (BTF gives the
types) and write 0, and bpftrace needs tracefs mounted to find tracepoints.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from loads import CACHE

PACKAGES = ["stress-ng", "libbpf-tools", "bpftool", "gcc", "bpftrace", "bpfcc-tools", "python3-bpfcc"]


def ensure_packages(packages=PACKAGES) -> dict[str, str]:
    """apt-get install what is missing (idempotent); returns failures."""
    missing = [
        p
        for p in packages
        if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
        ).stdout.strip()
        != "install ok installed"
    ]
    if not missing:
        return {}
    print(f"bench: installing {' '.join(missing)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    failed = {}
    for p in missing:  # one by one: a missing rival must not stop the rest
        r = subprocess.run(["apt-get", "install", "-y", "-qq", p], env=env, capture_output=True, text=True)
        if r.returncode:
            failed[p] = (r.stderr.strip().splitlines() or ["apt-get failed"])[-1]
    return failed


def pyrunq_cmd() -> list[str]:
    """The console script next to this interpreter (what users run)."""
    script = Path(sys.executable).parent / "pyrunq"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pyrunq"]


def commands(bcc_tree_dir: str | None, bpftrace_script: str | None) -> dict:
    """tool -> {"runqlat": argv, "runqslower": argv, "env": {...}}."""
    tools = {
        # bytecode cached, as a pip install leaves it (this environment sets
        # PYTHONDONTWRITEBYTECODE, and an editable install has no .pyc)
        "pyrunq": {
            "runqlat": pyrunq_cmd() + ["runqlat"],
            "runqslower": pyrunq_cmd() + ["runqslower"],
            "env": {"PYTHONPYCACHEPREFIX": str(CACHE / "pycache"), "PYTHONDONTWRITEBYTECODE": ""},
        },
        "c": {"runqlat": ["/usr/sbin/runqlat"], "runqslower": ["/usr/sbin/runqslower"]},
    }
    if bcc_tree_dir:
        tools["bcc"] = {
            "runqlat": ["/usr/sbin/runqlat-bpfcc"],
            "runqslower": ["/usr/sbin/runqslower-bpfcc"],
            "env": {"BCC_KERNEL_SOURCE": bcc_tree_dir},
        }
    if bpftrace_script:
        tools["bpftrace"] = {"runqlat": ["bpftrace", bpftrace_script]}
    return tools


# -- bpftrace -------------------------------------------------------------------


def bpftrace_script() -> str:
    src = Path("/usr/sbin/runqlat.bt").read_text()
    out = CACHE / "runqlat.bt"
    CACHE.mkdir(parents=True, exist_ok=True)
    out.write_text(re.sub(r"^#include.*$", "", src, flags=re.M).replace("TASK_RUNNING", "0"))
    return str(out)


@contextlib.contextmanager
def tracefs():
    """Mount tracefs for the block if it is not mounted; unmount it after."""
    path = "/sys/kernel/tracing"
    mounted = any(line.split()[2] == "tracefs" for line in open("/proc/mounts"))
    if not mounted:
        subprocess.run(["mount", "-t", "tracefs", "tracefs", path], check=True)
    try:
        yield
    finally:
        if not mounted:
            subprocess.run(["umount", path], check=False)


# -- bcc's kernel header tree, from BTF -------------------------------------------

# bcc -includes its own copy of uapi/linux/bpf.h before the program; these
# stand in for the other kernel headers its helpers.h and the tools include.
STUBS = {
    "include/linux/kconfig.h": "#define CONFIG_BPF_SYSCALL 1\n#define IS_ENABLED(x) 0\n",
    "include/linux/types.h": """#ifndef BTF_TREE_TYPES_H
#define BTF_TREE_TYPES_H
typedef signed char __s8; typedef unsigned char __u8; typedef short __s16;
typedef unsigned short __u16; typedef int __s32; typedef unsigned int __u32;
typedef long long __s64; typedef unsigned long long __u64;
typedef __u16 __le16; typedef __u16 __be16; typedef __u32 __le32; typedef __u32 __be32;
typedef __u64 __le64; typedef __u64 __be64; typedef __u32 __wsum; typedef __u16 __sum16;
typedef __u64 __attribute__((aligned(8))) __aligned_u64;
typedef __u8 u8; typedef __s8 s8; typedef __u16 u16; typedef __s16 s16;
typedef __u32 u32; typedef __s32 s32; typedef __u64 u64; typedef __s64 s64;
typedef _Bool bool; typedef unsigned long size_t; typedef long ssize_t;
typedef unsigned long uintptr_t;
#define __always_inline inline __attribute__((always_inline))
#endif
""",
    "include/linux/bpf_common.h": None,  # copied from /usr/include
    "include/uapi/linux/bpf.h": "",  # bcc's own copy is already in
    "include/uapi/linux/if_packet.h": "",
    "include/linux/log2.h": "",
    "include/asm/page.h": "",
}
VMLINUX_USERS = [
    "linux/sched.h",
    "linux/nsproxy.h",
    "linux/pid_namespace.h",
    "linux/init_task.h",
    "uapi/linux/ptrace.h",
]


def _version_h() -> str:
    major, minor, patch = (int(x) for x in re.findall(r"\d+", platform.release())[:3])
    return (
        f"#define LINUX_VERSION_CODE {(major << 16) + (minor << 8) + min(patch, 255)}\n"
        "#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))\n"
    )


def _bpf_h_names(vmlinux: str) -> tuple[set, set]:
    """Names bcc's bpf.h defines that vmlinux.h defines again: tags and
    enumerators (renamed while vmlinux.h is read) and macros (hidden then)."""
    src = re.sub(r"/\*.*?\*/", "", Path("/usr/include/linux/bpf.h").read_text(), flags=re.S)
    names = set(re.findall(r"\b(?:struct|enum|union)\s+(\w+)\s*\{", src))
    for body in re.findall(r"\benum\s*\w*\s*\{(.*?)\}", src, flags=re.S):
        names |= {m.group(1) for m in (re.match(r"\s*([A-Za-z_]\w*)", i) for i in body.split(",")) if m}
    names |= set(re.findall(r"\b(BPF_FUNC_\w+)", vmlinux))
    names &= set(re.findall(r"\w+", vmlinux))
    macros = set(re.findall(r"^#define\s+(\w+)\s+\S", src, re.M)) & set(
        re.findall(r"^\s+(\w+) = ", vmlinux, re.M)
    )
    return names, macros


def _write_wrapper(tree: Path, names: set, macros: set) -> None:
    lines = [
        "#ifndef BTF_TREE_VMLINUX_H",
        "#define BTF_TREE_VMLINUX_H",
        "#define BPF_NO_PRESERVE_ACCESS_INDEX",
    ]  # bcc compiles for the host first
    lines += [f'#pragma push_macro("{n}")\n#undef {n}' for n in sorted(macros)]
    lines += [f"#define {n} btf_{n}" for n in sorted(names)]
    lines += [f'#include "{tree}/vmlinux.h"']
    lines += [f"#undef {n}" for n in sorted(names)]
    lines += [f'#pragma pop_macro("{n}")' for n in sorted(macros)]
    lines += ["#define TASK_RUNNING 0", "#endif", ""]
    (tree / "include/btf_vmlinux.h").write_text("\n".join(lines))


def _bcc_compile(tree: Path) -> subprocess.CompletedProcess:
    probe = 'from bcc import BPF\nBPF(text="#include <linux/sched.h>\\nint f(void *c){return 0;}")'
    return subprocess.run(
        ["/usr/bin/python3", "-c", probe],
        capture_output=True,
        text=True,
        env={"BCC_KERNEL_SOURCE": str(tree), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def bcc_tree() -> str:
    """A kernel "source" tree for bcc made from /sys/kernel/btf/vmlinux,
    cached per kernel release. Names that clash with bcc's own bpf.h are
    renamed, then a few compile-and-read-the-errors rounds catch the rest.
    Raises RuntimeError with the reason when bcc still cannot compile."""
    tree = CACHE / f"bcc-tree-{platform.release()}"
    if (tree / "ok").exists():
        return str(tree)
    shutil.rmtree(tree, ignore_errors=True)
    for d in ("include/linux", "include/uapi/linux", "include/asm"):
        (tree / d).mkdir(parents=True)
    vmlinux = subprocess.run(
        ["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (tree / "vmlinux.h").write_text(vmlinux)
    for rel, text in {**STUBS, "include/linux/version.h": _version_h()}.items():
        if text is None:
            shutil.copy(f"/usr/include/{rel.split('/', 1)[1]}", tree / rel)
        else:
            (tree / rel).write_text(text)
    for rel in VMLINUX_USERS:
        (tree / "include" / rel).write_text("#include <btf_vmlinux.h>\n")
    names, macros = _bpf_h_names(vmlinux)
    lines = vmlinux.splitlines()
    for _ in range(10):
        _write_wrapper(tree, names, macros)
        r = _bcc_compile(tree)
        if r.returncode == 0:
            (tree / "ok").write_text("")
            return str(tree)
        errors = [e for e in r.stderr.splitlines() if re.match(r"^/\S+:\d+:\d+: (fatal )?error", e)]
        new = set(re.findall(r"redefinition of (?:enumerator )?'(\w+)'", "\n".join(errors)))
        new_macros = set()
        for e in errors:  # a bcc macro expanded inside vmlinux.h
            m = re.match(r"^\S*vmlinux\.h:(\d+):\d+: error: expected identifier", e)
            if m:
                new_macros |= set(re.findall(r"^\s*(\w+)", lines[int(m.group(1)) - 1]))
        if not (new - names or new_macros - macros):
            break
        names |= new
        macros |= new_macros
    raise RuntimeError(
        "bcc cannot compile against a BTF-derived header tree: "
        + (" | ".join(errors[:2]) or r.stderr.strip()[-200:])
    )
