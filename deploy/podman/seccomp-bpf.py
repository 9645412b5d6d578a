#!/usr/bin/env python3
"""Print podman's default seccomp profile with bpf() allowed to CAP_BPF and
perf_event_open() to CAP_PERFMON, as Docker's (23+) and containerd's (1.7+)
default profiles allow them. containers-common's profile (podman, CRI-O; the
one in Debian 12) allows both only to CAP_SYS_ADMIN, so the exporter, which
holds CAP_BPF and CAP_PERFMON and nothing more, cannot load its programs.

    deploy/podman/seccomp-bpf.py > /etc/containers/seccomp-bpf.json
    podman run --security-opt seccomp=/etc/containers/seccomp-bpf.json ...

Everything else in the profile is as the engine ships it.
"""

import json
import sys

DEFAULT = "/usr/share/containers/seccomp.json"
GATES = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}


def widen(profile: dict) -> dict:
    rules = []
    for rule in profile["syscalls"]:
        gated = [name for name in rule["names"] if name in GATES]
        if gated and rule["action"] == "SCMP_ACT_ERRNO":
            # the denial that applies without CAP_SYS_ADMIN: not with the new capability either
            rule = {**rule, "names": [n for n in rule["names"] if n not in GATES]}
            for name in gated:
                excludes = {"caps": [*rule.get("excludes", {}).get("caps", []), GATES[name]]}
                rules.append({**rule, "names": [name], "excludes": excludes})
        if rule["names"]:
            rules.append(rule)
    for name, cap in GATES.items():
        rules.append({"names": [name], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    return {**profile, "syscalls": rules}


if __name__ == "__main__":
    with open(sys.argv[1] if len(sys.argv) > 1 else DEFAULT) as f:
        json.dump(widen(json.load(f)), sys.stdout, indent=1)
        print()
