"""Many hostile files through pyrunq: writing the mutants of our test objects
and running a pyrunq command on each in a few driver processes
(``mutants.py``'s ``main``), for tests/test_hostile.py and bench/fuzz_objects.py."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from mutants import mutant, verdict

DRIVER = Path(__file__).resolve().parent / "mutants.py"


class Outcome(NamedTuple):
    label: str  # what reproduces it: object, seed, mutation
    code: int | None
    verdict: str | None
    last_line: str


def mutate_all(objects: dict[str, str], seeds, directory: Path) -> list[tuple[str, str]]:
    """(label, path) of one mutant per seed, of the objects in turn."""
    names = sorted(objects)
    out = []
    for seed in seeds:
        name = names[seed % len(names)]
        with open(objects[name], "rb") as f:
            how, data = mutant(f.read(), seed)
        path = directory / f"{name}-{seed}.bpf.o"
        path.write_bytes(data)
        os.chmod(path, 0o644)
        out.append((f"{name} seed {seed} ({how})", str(path)))
    return out


def run_all(tool: str, files: list[tuple[str, str]], extra: list[str], timeout: float, workers: int = 2):
    """The Outcome of ``pyrunq TOOL PATH *extra`` for each (label, path), in ``workers`` drivers."""
    chunks = [files[i::workers] for i in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        parts = pool.map(lambda chunk: _drive(tool, chunk, extra, timeout), chunks)
    return [o for part in parts for o in part]


def _drive(tool: str, files, extra: list[str], timeout: float) -> list[Outcome]:
    labels = dict((path, label) for label, path in files)
    p = subprocess.run(
        [sys.executable, str(DRIVER), str(timeout), tool, *extra],
        input="".join(path + "\n" for _, path in files),
        capture_output=True,
        text=True,
        check=True,
    )
    out = []
    for line in p.stdout.splitlines():
        doc = json.loads(line)
        stdout, stderr = doc["out"].encode("latin-1"), doc["err"].encode("latin-1")
        last = (stderr.strip().splitlines() or [b""])[-1].decode(errors="backslashreplace")
        out.append(Outcome(labels[doc["path"]], doc["code"], verdict(doc["code"], stdout, stderr), last))
    return out
