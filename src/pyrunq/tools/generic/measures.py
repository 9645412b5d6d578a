"""Which numbers of a decoded value may be added and subtracted.

The generic loader adds values across CPUs (a per-CPU map), adds the values
of entries whose stacks name the same functions, and subtracts an earlier
reading (an interval's own counts). Only measures may be: counts and sums
are added, a ``max``/``min`` keeps the larger/smaller. Identities (a pid, an
inode, a device number, a cgroup or namespace id, an address, a timestamp)
never are: two values whose identities differ are not one value, so they
stay apart (per CPU, or as separate entries), and an interval shows an
identity as it is now. A member is an identity by its name (C names say
what they hold: ``pid``, ``mntns_id``, ``major``, ``ts``, ``port16``); every other
number is a measure, as libbpf-tools' ``delta`` and ``count`` are.
"""

from __future__ import annotations

import re

# whole words of a member's name (split at "_" and between a lower and an
# upper case letter) that make it an identity
_IDENTITY_WORDS = {
    "pid", "tgid", "tid", "ppid", "pgid", "sid", "uid", "gid", "euid", "egid", "cpu", "id", "ids",
    "ino", "inode", "dev", "major", "minor", "mntns", "netns", "pidns", "ifindex", "port", "ports", "sport",
    "dport", "lport", "rport", "addr", "saddr", "daddr", "ip", "ip4", "ip6", "family", "af", "proto",
    "protocol", "flags", "mode", "ts", "timestamp", "tstamp", "start", "started", "type", "state",
    "fd", "errno", "ret", "retval", "syscall", "nr", "sig", "signal", "prio", "policy", "irq", "vec",
    "hash", "key", "cookie", "handle", "inum",
}  # fmt: skip
_MAX_WORDS, _MIN_WORDS = {"max", "maximum", "peak", "highest", "largest"}, {"min", "minimum", "lowest"}
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


class Apart(Exception):
    """Two values whose identities differ: they cannot be one value."""


class PerCpu(list):
    """The values of a per-CPU map's entry that cannot be one, CPU by CPU
    (those with a value)."""


def role(name: str) -> str:
    """ "sum", "max", "min" or "identity", by a member's name ("" for a bare
    value: a count)."""
    words = {w.lower() for w in _WORD.findall(name)}
    words |= {w.rstrip("0123456789") for w in words}  # ``port16``, ``addr6``: a port, an address
    if words & _MAX_WORDS:
        return "max"
    if words & _MIN_WORDS:
        return "min"
    return "identity" if words & _IDENTITY_WORDS else "sum"


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plus(a, b, name: str = ""):
    """a and b (presented values: numbers, dicts of members, lists) as one:
    measures combined by their role; raises Apart if an identity differs.
    Anything but numbers (text, flags) as in ``a``."""
    if _number(a) and _number(b):
        r = role(name)
        if r == "identity":
            if a != b:
                raise Apart(name)
            return a
        return max(a, b) if r == "max" else min(a, b) if r == "min" else a + b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: plus(v, b[k], k) if k in b else v for k, v in a.items()}
    if hasattr(a, "_fields") and type(a) is type(b):  # a decoded struct: its members by name
        return a._make(plus(x, y, f) for f, x, y in zip(a._fields, a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return type(a)(plus(x, y, name) for x, y in zip(a, b))
    return a


def merge_percpu(values: list):
    """One value from a per-CPU map's values, if they can be one: measures
    combined, CPUs without a value (all zero) left out; else the list of the
    CPUs' values (a per-CPU scratch value, whose pids differ, is not a sum)."""
    if not values:
        return values
    used = [v for v in values if not is_zero(v)] or values[:1]
    try:
        out = used[0]
        for v in used[1:]:
            out = plus(out, v)
        return out
    except Apart:
        return PerCpu(used)


def minus(now, before, name: str = "") -> tuple[object, bool]:
    """now - before (an interval's own counts) and whether it restarted: a
    sum that went down, or an identity that changed (the entry was deleted
    and made anew). Identities, max, min and anything but numbers stay as
    they are now."""
    if _number(now) and _number(before):
        r = role(name)
        if r == "sum":
            return now - before, now < before
        return now, r == "identity" and now != before
    if isinstance(now, dict) and isinstance(before, dict):
        pairs = {k: minus(v, before[k], k) if k in before else (v, False) for k, v in now.items()}
        return {k: d for k, (d, _) in pairs.items()}, any(down for _, down in pairs.values())
    if isinstance(now, list) and isinstance(before, list) and len(now) == len(before):
        diffs = [minus(a, b, name) for a, b in zip(now, before)]
        return [d for d, _ in diffs], any(down for _, down in diffs)
    return now, False


def is_zero(v) -> bool:
    """Whether a decoded value holds nothing: zeros, empty text."""
    if isinstance(v, (tuple, list)):  # a decoded struct too
        return all(is_zero(x) for x in v)
    if isinstance(v, dict):
        return all(is_zero(x) for x in v.values())
    if isinstance(v, (bytes, str)):
        return not (v.strip(b"\0") if isinstance(v, bytes) else v.strip("\0"))
    return not v


def frozen(key):
    """A presented key (dicts and lists for struct and array keys) as something hashable."""
    if isinstance(key, dict):
        return tuple((k, frozen(v)) for k, v in key.items())
    if isinstance(key, list):
        return tuple(frozen(v) for v in key)
    return key
