"""Inspektor Gadget's ``gadget.yaml``, beside a gadget's ``program.bpf.c``
(and so beside its object, built in the gadget's directory): what of it
changes what ``pyrunq run`` shows, applied as its loader applies it.

Its format is large, and mostly how ``ig`` lays out its columns. Read:

- ``datasources.<name>.fields.<field>.annotations["metrics.unit"]``: the
  unit of a histogram the datasource's map (``GADGET_MAPITER(name, map)``)
  holds (``µs`` shown as ``usecs``, ``ms`` as ``msecs``, ``ns`` as
  ``nsecs``, ``s`` as ``secs``);
- ``params.ebpf.<global>.defaultValue``: the value its loader gives that
  parameter before load (a ``GADGET_PARAM`` global), parsed as ``--set``
  parses it; ``--set`` still wins;
- a datasource's ``metrics.print: "true"`` with its fields'
  ``metrics.type: key``: its loader prints the map's histograms labelled
  by those fields only (profile_qdisc_latency's ``struct hist_key { u8
  unused; }`` labels nothing: one histogram).

Left out without a word, as they cannot change what a number means: the
file's own description (``name``, ``description``, ``*URL``), each
field's and parameter's description, ``key``, ``alias``, ``title``,
``typeHint``, ``value.one-of`` (the values a field or parameter takes),
and the annotations that lay out columns and text (``columns.*``,
``template``, ``json.skip``, ``cli.*``, ``uidgidresolver.target``: user
names are shown by their type anyway). Keys are read in any case, as its
loader reads them (``dataSources``). Anything else it holds
(``metrics.type`` other than ``key``, ``ebpf.map.flush-on-stop``, a fetch
interval, ``profiles.*``...) is not applied and is said, in one line.
A file that is not valid YAML, or not a mapping where the format has one:
``GadgetYamlError`` (a ``UsageError``), one line.
"""

from __future__ import annotations

import dataclasses
import os
import re

from ... import yamlfile
from ...errors import UsageError

NAME = "gadget.yaml"
_QUIET_TOP = {"name", "description", "homepageURL", "documentationURL", "sourceURL", "datasources", "params"}
_QUIET_PARAM = {"key", "alias", "title", "description", "typeHint", "value.one-of", "defaultValue"}
_QUIET_ANNOTATIONS = re.compile(
    r"(columns\..*|template|json\.skip|cli\..*|uidgidresolver\.target|description|value\.one-of)\Z"
)
_UNITS = {"µs": "usecs", "us": "usecs", "ms": "msecs", "ns": "nsecs", "s": "secs"}


class GadgetYamlError(UsageError):
    """A gadget.yaml that cannot be read: one line naming the file."""


@dataclasses.dataclass
class GadgetYaml:
    path: str
    units: dict[str, str]  # datasource -> the unit of its histograms
    defaults: dict[str, str]  # parameter (a global) -> its default, as text
    not_applied: list[str]  # "key (where)" of what it holds and run does not do
    # datasources printed as metrics (metrics.print) -> their fields labelled
    # ``metrics.type: key``: the only members of a histogram's key its loader shows
    printed: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def map_units(self, mapiters: dict[str, str]) -> dict[str, str]:
        """Map -> unit, through the object's ``GADGET_MAPITER`` markers
        (``mapiters``: map -> datasource)."""
        return {m: self.units[ds] for m, ds in mapiters.items() if ds in self.units}

    def metric_keys(self, mapiters: dict[str, str]) -> dict[str, set[str]]:
        """Map -> the members of its keys that are labels, for the maps whose
        datasource is printed as metrics."""
        return {m: self.printed[ds] for m, ds in mapiters.items() if ds in self.printed}

    def notes(self) -> list[str]:
        out = [f"histogram units and labels, parameter defaults as {self.path} says"]
        if self.not_applied:
            out.append(f"{self.path}: not applied here: {'; '.join(self.not_applied)}")
        return out


def beside(object_path: str) -> str | None:
    """The gadget.yaml in the object's directory, if there is one."""
    path = os.path.join(os.path.dirname(os.path.abspath(object_path)), NAME)
    return path if os.path.isfile(path) else None


def load(path: str) -> GadgetYaml:
    return parse(yamlfile.read(path, GadgetYamlError), path)


def parse(doc, path: str = NAME) -> GadgetYaml:
    out = GadgetYaml(path, {}, {}, [])
    # its loader reads keys in any case (profile_blockio's file says dataSources)
    doc = {
        str(k).lower() if str(k).lower() in ("datasources", "params") else k: v
        for k, v in _mapping(doc, "the file", path).items()
    }
    out.not_applied += [f"{k} (top level)" for k in doc if k not in _QUIET_TOP]
    for ds, source in _mapping(_or_empty(doc.get("datasources")), "datasources", path).items():
        source = _mapping(source, f"datasources.{ds}", path)
        annotations = _annotations(out, source.get("annotations"), f"datasource {ds}", path)
        out.not_applied += [f"{k} (datasource {ds})" for k in source if k not in ("annotations", "fields")]
        fields = _mapping(_or_empty(source.get("fields")), f"datasources.{ds}.fields", path)
        keys = set()
        for field, spec in fields.items():
            spec = _mapping(_or_empty(spec), f"datasources.{ds}.fields.{field}", path)
            found = _annotations(out, spec.get("annotations"), f"field {ds}.{field}", path)
            if found.get("metrics.unit"):
                out.units[ds] = _unit(str(found["metrics.unit"]), f"datasources.{ds}.fields.{field}", path)
            if found.get("metrics.type") == "key":
                keys.add(str(field))
        if str(annotations.get("metrics.print")).lower() == "true":
            out.printed[ds] = keys
    params = _mapping(_or_empty(doc.get("params")), "params", path)
    for group, entries in params.items():
        entries = _mapping(_or_empty(entries), f"params.{group}", path)
        for name, spec in entries.items():
            spec = _mapping(_or_empty(spec), f"params.{group}.{name}", path)
            out.not_applied += [f"{k} (parameter {name})" for k in spec if k not in _QUIET_PARAM]
            if group == "ebpf" and spec.get("defaultValue") not in (None, ""):
                out.defaults[str(name)] = str(spec["defaultValue"])
    return out


def _annotations(out: GadgetYaml, value, where: str, path: str) -> dict:
    """The annotations; those not applied (not quiet, not read) go to ``not_applied``."""
    annotations = _mapping(_or_empty(value), f"{where}: annotations", path)
    for key, v in annotations.items():
        applied = key in ("metrics.unit", "metrics.print") or (key == "metrics.type" and v == "key")
        if not applied and not _QUIET_ANNOTATIONS.match(str(key)):
            out.not_applied.append(f"{key} ({where})")
    return annotations


def metric_labels(report, keys: set[str]):
    """A histogram ``report`` (``MapReport``) as its loader prints a
    datasource's metrics: the key's members that are labels (``keys``;
    ``X_raw`` as ``X``) kept, the others left, the histograms whose
    labels are then equal added; no label left: one histogram, key None."""
    if report.kind != "hist":
        return report
    merged: dict = {}
    for key, slots, *rest in report.entries:
        kept = {k: v for k, v in (key or {}).items() if k in keys or k.removesuffix("_raw") in keys}
        label = tuple(kept.items()) or None
        if label in merged:
            old = merged[label]
            merged[label] = (old[0], [a + b for a, b in zip(old[1], slots)], *old[2:])
        else:
            merged[label] = (kept or None, list(slots), *rest)
    return dataclasses.replace(report, entries=list(merged.values()))


def _unit(text: str, where: str, path: str) -> str:
    unit = _UNITS.get(text, text)
    if not re.fullmatch(r"[A-Za-z][\w/]*", unit):
        raise GadgetYamlError(f"{path}: {where}: metrics.unit {text!r} is not a unit run knows")
    return unit


def _mapping(value, where: str, path: str) -> dict:
    if not isinstance(value, dict):
        raise GadgetYamlError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


def _or_empty(value):
    """A key left empty (``fields:`` with nothing under it) is an empty mapping."""
    return {} if value is None else value
