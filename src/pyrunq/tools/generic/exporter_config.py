"""An ebpf_exporter configuration (its YAML beside the object:
``biolatency.yaml`` for ``biolatency.bpf.o``), read and checked
(``exporter_labels`` turns a map's keys into its label values).

cloudflare/ebpf_exporter describes each map of its objects in YAML: a
metric (a counter, or a histogram) named as its map, with a help text, and
the labels its key holds, in order, each ``size`` bytes (and ``padding``
bytes after it), each decoded by a chain of decoders (``uint``, then
``static_map``...). A histogram's last label is its bucket, and its
``bucket_type``/``bucket_min``/``bucket_max``/``bucket_multiplier`` say
what a bucket means (``buckets``). Here the same file names the entries
``pyrunq run`` prints as the exporter labels its metrics.

Read with PyYAML's safe loader; checked more strictly than the exporter
does (an unknown key is an error here: a misspelt ``bucket_multiplier``
would otherwise silently scale every bound by one); checked against the
object before load (every metric's map exists, its key is as long as its
labels, its value a 64-bit counter). Any problem: ``ConfigError`` (a
``UsageError``), one line naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re

from ... import yamlfile
from ...errors import UsageError

# How messages name the file given by the caller; the CLI's --config puts its flag there.
CONFIG = "config"
BUCKET_TYPES = ("exp2", "exp2zero", "linear", "fixed")
# Decoders pyrunq does as the exporter does; those it does not: the input is kept (and said)
DECODERS = (
    "cgroup",
    "dname",
    "errno",
    "hex",
    "ifname",
    "inet_ip",
    "kstack",
    "ksym",
    "majorminor",
    "regexp",
    "static_map",
    "string",
    "syscall",
    "uint",
)
# pci.ids lookups: the one example that uses them is kprobe-only; no
# well-kept Python reader of pci.ids to lean on
NOT_DONE = ("pci_vendor", "pci_device", "pci_class", "pci_subclass")
_TOP = {"name", "metrics", "tracing", "kaddrs", "cgroup_id_map"}
_COUNTER = {"name", "help", "perf_event_array", "flush_interval", "labels"}
_HISTOGRAM = {
    "name",
    "help",
    "bucket_type",
    "bucket_multiplier",
    "bucket_min",
    "bucket_max",
    "bucket_keys",
    "labels",
}
_LABEL = {"name", "size", "padding", "decoders"}
_DECODER = {"name", "static_map", "regexps", "allow_unknown"}
_CGROUP_ID_MAP = {"name", "type", "regexps"}
# cgroup_id_map's types: the map kinds the exporter fills, the key each takes
# (a cgroup id; an open cgroup directory's fd) and the map types that fit
CGROUP_MAP_TYPES = {"hash": (8, ("hash", "lru_hash")), "cgrp_storage": (4, ("cgrp_storage",))}
# What a decoder that reads the key's bytes needs of them (the first of a chain)
_SIZES = {"uint": (1, 2, 4, 8), "ksym": (8,), "inet_ip": (4, 16), "majorminor": (4, 8), "ifname": (4, 8)}
# Decoders that read a number as text: never the first of a chain
_AFTER_UINT = {"syscall", "errno", "cgroup", *NOT_DONE}


class ConfigError(UsageError):
    """An ebpf_exporter configuration that cannot be used: malformed, or
    naming maps or keys the object does not have. About the ``config``
    parameter when the caller named the file (``named``)."""

    def __init__(self, message: str):
        super().__init__(message, CONFIG if "{param}" in message else None)


@dataclasses.dataclass(frozen=True)
class Decoder:
    name: str
    static_map: dict = dataclasses.field(default_factory=dict)  # text -> text
    regexps: tuple = ()
    allow_unknown: bool = False


@dataclasses.dataclass(frozen=True)
class Label:
    name: str
    size: int
    padding: int
    decoders: tuple  # of Decoder


@dataclasses.dataclass(frozen=True)
class Metric:
    """A counter or a histogram, named as the map that holds it."""

    kind: str  # "counter" or "histogram"
    name: str
    help: str
    labels: tuple  # of Label; a histogram's last one is its bucket
    bucket_type: str = "exp2"
    bucket_min: int = 0
    bucket_max: int = 0
    bucket_multiplier: float = 1.0
    bucket_keys: tuple = ()
    perf_event_array: bool = False  # a counter sent through a perf event array, not kept in a map

    @property
    def label_names(self) -> tuple:
        """The names of its labels (a histogram's: without the bucket)."""
        names = tuple(label.name for label in self.labels)
        return names[:-1] if self.kind == "histogram" else names

    def per_cpu(self, percpu_map: bool) -> bool:
        """Whether values are kept CPU by CPU: a per-CPU map whose last label
        is ``cpu`` (the exporter adds the CPU's number to the key as a u16)."""
        return percpu_map and bool(self.labels) and self.labels[-1].name == "cpu"


@dataclasses.dataclass(frozen=True)
class CgroupIdMap:
    """A map the exporter fills with the cgroups whose path matches one of
    ``regexps``: a hash map keyed by the cgroup's id, or cgroup storage
    (``cgrp_storage``, keyed by the cgroup itself), each value 1."""

    name: str
    type: str  # "hash" or "cgrp_storage"
    regexps: tuple  # of re.Pattern

    def matches(self, path: str) -> bool:
        return any(r.search(path) for r in self.regexps)


@dataclasses.dataclass
class ExporterConfig:
    path: str
    metrics: dict  # map name -> Metric
    kaddrs: tuple = ()  # kernel symbols whose addresses go into kaddr_<name> globals
    spans: dict = dataclasses.field(default_factory=dict)  # ring buffer -> Metric of kind "span"
    cgroup_id_map: CgroupIdMap | None = None  # a map the exporter fills from cgroup paths
    given: bool = True  # named by the caller (not found beside the object)

    def notes(self) -> list[str]:
        """What of the file pyrunq does not do, one line each."""
        out = []
        for m in self.metrics.values():
            for label in m.labels:
                for d in label.decoders:
                    if d.name in NOT_DONE:
                        out.append(
                            f"{m.name}: label {label.name}: decoder {d.name} is not done here "
                            "(it needs the pci.ids database): the number is shown"
                        )
        if self.spans:
            out.append(
                f"tracing spans of {', '.join(self.spans)}: records shown with the span's labels "
                "(they are not sent anywhere)"
            )
        return out


def beside(object_path: str) -> str | None:
    """The configuration ebpf_exporter would read for this object: same
    directory, same base name, ``.yaml`` (``biolatency.bpf.o`` ->
    ``biolatency.yaml``); None when there is none."""
    base = object_path
    for ext in (".bpf.o", ".o"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    path = base + ".yaml"
    return path if os.path.isfile(path) else None


def named(path: str, given: bool = True) -> str:
    """How messages name the file: as given (``config PATH``, the
    parameter's name in the caller's words: ``UsageError.text``), or found
    beside the object."""
    return f"{{param}} {path}" if given else f"{path} (ebpf_exporter's YAML beside the object)"


def load(path: str, given: bool = True) -> ExporterConfig:
    """The configuration in file ``path`` (``given``: named by the caller,
    not found beside the object); ConfigError when it cannot be read or used."""
    doc = yamlfile.read(path, ConfigError, named(path, given))
    return parse(doc, path, given)


def parse(doc, path: str = "<config>", given: bool = True) -> ExporterConfig:
    """The configuration a loaded YAML document describes."""
    p = _Parser(named(path, given))
    doc = p.mapping(doc, "the file", _TOP)
    metrics_doc = p.mapping(doc.get("metrics") or {}, "metrics", {"counters", "histograms"})
    metrics: dict[str, Metric] = {}
    for kind, keys in (("counter", _COUNTER), ("histogram", _HISTOGRAM)):
        for i, entry in enumerate(p.sequence(metrics_doc.get(kind + "s") or [], f"metrics.{kind}s")):
            metric = p.metric(kind, entry, f"metrics.{kind}s[{i}]", keys)
            if metric.name in metrics:
                raise p.error(f"metric {metric.name} is defined twice")
            metrics[metric.name] = metric
    tracing = p.mapping(doc.get("tracing") or {}, "tracing", {"spans"})
    spans = {}
    for i, entry in enumerate(p.sequence(tracing.get("spans") or [], "tracing.spans")):
        span = p.span(entry, f"tracing.spans[{i}]")
        spans[span.help] = span
    if not metrics and not spans:
        raise p.error("neither metrics nor tracing are defined")
    kaddrs = tuple(p.text(k, "kaddrs") for k in p.sequence(doc.get("kaddrs") or [], "kaddrs"))
    cgroup_map = p.cgroup_id_map(doc["cgroup_id_map"]) if doc.get("cgroup_id_map") else None
    return ExporterConfig(path, metrics, kaddrs, spans, cgroup_map, given)


class _Parser:
    """Checks each part of the document as it is read; errors name where."""

    def __init__(self, name: str):
        self.name = name

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"{self.name}: {what}")

    def mapping(self, value, where: str, known: set) -> dict:
        if not isinstance(value, dict):
            raise self.error(f"{where}: expected a mapping of keys, got {_kind(value)}")
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise self.error(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return value

    def sequence(self, value, where: str) -> list:
        if not isinstance(value, list):
            raise self.error(f"{where}: expected a list, got {_kind(value)}")
        return value

    def text(self, value, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(f"{where}: expected a name, got {_kind(value)}")
        return value

    def integer(self, value, where: str, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.error(f"{where}: expected an integer of at least {low}, got {value!r}")
        return value

    def number(self, value, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.error(f"{where}: expected a positive number, got {value!r}")
        return float(value)

    def metric(self, kind: str, entry, where: str, keys: set) -> Metric:
        entry = self.mapping(entry, where, keys)
        name = self.text(entry.get("name"), f"{where}.name")
        where = f"{kind} {name}"
        help_text = entry.get("help")
        if not isinstance(help_text, str) or not help_text:
            raise self.error(f"{where}: no help (the exporter needs one)")
        labels = tuple(
            self.label(x, f"{where}: labels[{i}]")
            for i, x in enumerate(self.sequence(entry.get("labels") or [], f"{where}: labels"))
        )
        if kind == "counter":
            return Metric(kind, name, help_text, labels, perf_event_array=bool(entry.get("perf_event_array")))
        bucket_type = entry.get("bucket_type")
        if bucket_type not in BUCKET_TYPES:
            raise self.error(f"{where}: bucket_type {bucket_type!r} is not one of {', '.join(BUCKET_TYPES)}")
        if not labels:
            raise self.error(f"{where}: no labels: a histogram's last label is its bucket")
        multiplier = 1.0
        if entry.get("bucket_multiplier") is not None:
            multiplier = self.number(entry["bucket_multiplier"], f"{where}: bucket_multiplier")
        low = self.integer(entry.get("bucket_min", 0), f"{where}: bucket_min")
        high = self.integer(entry.get("bucket_max", 0), f"{where}: bucket_max")
        keys_list: tuple = ()
        if bucket_type == "fixed":
            raw = self.sequence(entry.get("bucket_keys") or [], f"{where}: bucket_keys")
            keys_list = tuple(self.integer(k, f"{where}: bucket_keys") for k in raw)
            if not keys_list or list(keys_list) != sorted(set(keys_list)):
                raise self.error(f"{where}: bucket_keys must be increasing integers")
        elif high <= low:
            raise self.error(f"{where}: bucket_max {high} must be above bucket_min {low}")
        return Metric(kind, name, help_text, labels, bucket_type, low, high, multiplier, keys_list)

    def cgroup_id_map(self, entry) -> CgroupIdMap:
        """What the exporter reads of ``cgroup_id_map``: the map, its type
        (``hash`` when left out, as the exporter takes it) and the regexps
        over cgroup paths."""
        where = "cgroup_id_map"
        entry = self.mapping(entry, where, _CGROUP_ID_MAP)
        name = self.text(entry.get("name"), f"{where}.name")
        kind = entry.get("type") or "hash"
        if kind not in CGROUP_MAP_TYPES:
            raise self.error(f"{where}: type {kind!r} is not one of {', '.join(CGROUP_MAP_TYPES)}")
        texts = [
            self.text(r, f"{where}: regexps")
            for r in self.sequence(entry.get("regexps"), f"{where}: regexps")
        ]
        if not texts:  # the exporter would fill nothing, and the programs count nothing as matched
            raise self.error(f"{where}: no regexps: no cgroup would be in {name}")
        regexps = []
        for r in texts:
            try:
                regexps.append(re.compile(r))
            except re.error as e:
                raise self.error(f"{where}: regexp {r!r}: {e}") from None
        return CgroupIdMap(name, kind, tuple(regexps))

    def span(self, entry, where: str) -> Metric:
        """A tracing span: records of ring buffer ``ringbuf`` (kept as the
        Metric's ``help``), each cut into labels as a key is."""
        entry = self.mapping(entry, where, {"ringbuf", "name", "service", "labels"})
        name = self.text(entry.get("name"), f"{where}.name")
        ring = self.text(entry.get("ringbuf"), f"span {name}: ringbuf")
        labels = tuple(
            self.label(x, f"span {name}: labels[{i}]")
            for i, x in enumerate(self.sequence(entry.get("labels") or [], f"span {name}: labels"))
        )
        return Metric("span", name, ring, labels)

    def label(self, entry, where: str) -> Label:
        entry = self.mapping(entry, where, _LABEL)
        name = self.text(entry.get("name"), f"{where}.name")
        where = f"{where.rsplit(':', 1)[0]}: label {name}"
        size = self.integer(entry.get("size"), f"{where}: size", 1)
        padding = self.integer(entry.get("padding", 0), f"{where}: padding")
        decoders = tuple(
            self.decoder(d, f"{where}: decoders[{i}]")
            for i, d in enumerate(self.sequence(entry.get("decoders") or [], f"{where}: decoders"))
        )
        if not decoders:
            raise self.error(f"{where}: no decoders")
        first = decoders[0].name
        if first in _SIZES and size not in _SIZES[first]:
            sizes = " or ".join(map(str, _SIZES[first]))
            raise self.error(f"{where}: decoder {first} reads {sizes} bytes, the label has {size}")
        if first in _AFTER_UINT:
            raise self.error(f"{where}: decoder {first} reads a number: put uint before it")
        if first == "kstack" and size % 8:
            raise self.error(f"{where}: decoder kstack reads 8-byte addresses, the label has {size} bytes")
        return Label(name, size, padding, decoders)

    def decoder(self, entry, where: str) -> Decoder:
        entry = self.mapping(entry, where, _DECODER)
        name = entry.get("name")
        if name not in DECODERS + NOT_DONE:
            raise self.error(f"{where}: unknown decoder {name!r}")
        mapping = entry.get("static_map") or {}
        if not isinstance(mapping, dict):
            raise self.error(f"{where}: static_map: expected a mapping, got {_kind(mapping)}")
        regexps = tuple(
            self.text(r, f"{where}: regexps") for r in self.sequence(entry.get("regexps") or [], where)
        )
        if name == "regexp":
            if not regexps:
                raise self.error(f"{where}: decoder regexp without regexps")
            for r in regexps:
                try:
                    re.compile(r)
                except re.error as e:
                    raise self.error(f"{where}: regexp {r!r}: {e}") from None
        return Decoder(
            name,
            {_yaml_text(k): _yaml_text(v) for k, v in mapping.items()},
            regexps,
            bool(entry.get("allow_unknown")),
        )


def _yaml_text(value) -> str:
    """A YAML scalar as the exporter's Go decoder reads it into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


# -- checked against the object ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MapFacts:
    """What the check needs of one of the object's maps."""

    key_size: int
    value_size: int
    percpu: bool
    readable: bool  # a hash or array map (not a ring buffer...)
    type_name: str = ""  # libbpf's name of its type: "hash", "cgrp_storage"...


def check(config: ExporterConfig, maps: dict, object_name: str) -> None:
    """ConfigError unless every metric names a hash or array map of the
    object (``maps``: name -> MapFacts) whose key its labels fill and whose
    value is a 64-bit counter."""
    where = named(config.path, config.given)
    if config.cgroup_id_map is not None:
        _check_cgroup_id_map(config.cgroup_id_map, maps, object_name, where)
    for ring, span in config.spans.items():
        if ring not in maps or maps[ring].readable:
            raise ConfigError(f"{where}: span {span.name}: {object_name} has no ring buffer {ring}")
    for m in config.metrics.values():
        if m.perf_event_array:
            continue  # its map is a perf event array of the object's own records
        facts = maps.get(m.name)
        what = f"{named(config.path, config.given)}: {m.kind} {m.name}"
        if facts is None or not facts.readable:
            has = ", ".join(sorted(n for n, f in maps.items() if f.readable)) or "none"
            raise ConfigError(f"{what}: {object_name} has no hash or array map {m.name} (has: {has})")
        if facts.value_size != 8:
            raise ConfigError(f"{what}: its map's value is {facts.value_size} bytes, not a 64-bit counter")
        size = sum(label.size + label.padding for label in m.labels)
        key = facts.key_size + (2 if m.per_cpu(facts.percpu) else 0)
        if not m.labels and facts.key_size == 4:
            continue  # one value, at key 0
        if m.per_cpu(facts.percpu) and len(m.labels) == 1 and facts.key_size == 4:
            continue  # key 0 and the CPU
        if size != key:
            raise ConfigError(
                f"{what}: its labels take {size} bytes, its map's key has {facts.key_size}"
                + (" (and 2 for the CPU)" if m.per_cpu(facts.percpu) else "")
            )


def _check_cgroup_id_map(spec: CgroupIdMap, maps: dict, object_name: str, where: str) -> None:
    """ConfigError unless the object has the map, of a type ``spec.type``
    fills, keyed as the exporter writes it, its value a u64 (the exporter's
    checks, and the type's)."""
    what = f"{where}: cgroup_id_map {spec.name}"
    key_size, types = CGROUP_MAP_TYPES[spec.type]
    facts = maps.get(spec.name)
    if facts is None:
        raise ConfigError(f"{what}: {object_name} has no map {spec.name} (has: {', '.join(sorted(maps))})")
    if facts.type_name not in types:
        raise ConfigError(
            f"{what}: type {spec.type} fills a {' or '.join(types)} map, not a {facts.type_name} map"
        )
    if facts.key_size != key_size or facts.value_size != 8:
        raise ConfigError(
            f"{what}: a {spec.type} map of cgroups has {key_size}-byte keys and 8-byte values "
            f"(u64), not {facts.key_size} and {facts.value_size}"
        )


def kaddr_settings(config: ExporterConfig, kallsyms: str = "/proc/kallsyms") -> dict[str, int]:
    """The globals the exporter sets before load: ``kaddr_<symbol>`` = the
    symbol's address, for each symbol in ``kaddrs``; ConfigError for one
    kallsyms does not have."""
    if not config.kaddrs:
        return {}
    wanted, found = set(config.kaddrs), {}
    with open(kallsyms) as f:
        for line in f:
            address, _, rest = line.split(" ", 2)
            symbol = rest.split("\t", 1)[0].strip()
            if symbol in wanted and symbol not in found:
                found[symbol] = int(address, 16)
    missing = sorted(wanted - set(found))
    if missing:
        raise ConfigError(f"{named(config.path, config.given)}: kaddrs: {missing[0]} is not in {kallsyms}")
    return {f"kaddr_{s}": found[s] for s in config.kaddrs}
