"""ebpf_exporter's maps as ``pyrunq run`` shows them: with the object's
YAML (``exporter_config``), each map a metric, its keys as the metric's
labels, its histograms drawn with their sums; without it, maps of the
exporter's histogram shape (``buckets.bucket_member``) drawn as exp2
histograms. Both become ``MapReport``s of the generic tool: a histogram's
slots are its buckets by number, the sum's bucket among them (so that each
interval's difference is taken as for any histogram), and ``sum_slot``
says which one it is."""

from __future__ import annotations

import dataclasses

from ...bpf import ARRAY_TYPES, BATCH_TYPES
from . import buckets as B
from . import exporter_config as C
from . import exporter_labels as L
from .exporter_cgroups import CgroupIds
from .present import presenter

CONFIG_AUTO = "beside"  # the default: the YAML beside the object, if there is one
WHY = "ebpf_exporter's metrics: its histograms and counters"
CGROUP_ID_MAP = "the cgroups its YAML's cgroup_id_map selects, filled by pyrunq as the exporter fills it"


@dataclasses.dataclass
class Metrics:
    """An object's ebpf_exporter configuration, checked against it, and its
    label decoders (one per metric, kept for the run: they cache)."""

    config: C.ExporterConfig | None
    labels: dict = dataclasses.field(default_factory=dict)  # map -> Labels
    cgroups: CgroupIds | None = None  # its cgroup_id_map, once filled (``fill``)

    def fill(self, obj) -> None:
        """After load, before attach: the YAML's ``cgroup_id_map`` filled
        with the cgroups it selects (``exporter_cgroups``; ``sync()`` keeps
        it in step)."""
        spec = self.config.cgroup_id_map if self.config else None
        if spec is not None:
            self.cgroups = CgroupIds(spec, obj.maps[spec.name])
            self.cgroups.sync()

    def sync(self) -> None:
        """Keep the ``cgroup_id_map`` in step with the cgroups there are now."""
        if self.cgroups is not None:
            self.cgroups.sync()

    def notes(self) -> list[str]:
        """What of the YAML pyrunq does differently or not, one line each,
        and what it fills."""
        out = self.config.notes() if self.config else []
        return out + ([self.cgroups.note()] if self.cgroups else [])

    def hidden(self) -> dict[str, str]:
        """Maps not shown, and why: the cgroup_id_map pyrunq fills."""
        spec = self.config.cgroup_id_map if self.config else None
        return {spec.name: CGROUP_ID_MAP} if spec else {}

    def span(self, ring: str) -> L.Labels | None:
        """The labels of the tracing span the YAML reads from ring buffer
        ``ring``'s records; None when it has no span there."""
        if self.config is None or ring not in self.config.spans:
            return None
        return self.labels.setdefault(f"span {ring}", L.Labels(self.config.spans[ring]))

    def metric(self, name: str) -> C.Metric | None:
        if self.config is None:
            return None
        found = self.config.metrics.get(name)
        return None if found is None or found.perf_event_array else found


def setup(obj, path: str, config=CONFIG_AUTO) -> Metrics:
    """The configuration for the object at ``path``: ``config`` a file, or
    CONFIG_AUTO (the YAML beside the object, if any), or None (none).
    ConfigError when it is malformed or does not fit the object."""
    where = C.beside(path) if config == CONFIG_AUTO else config
    if not where:
        return Metrics(None)
    loaded = C.load(where, given=config != CONFIG_AUTO)
    facts = {
        m.name: C.MapFacts(m.key_size, m.value_size, m.percpu, m.type in BATCH_TYPES, m.type_name)
        for m in obj.maps.values()
    }
    C.check(loaded, facts, obj.name)
    metrics = Metrics(loaded)
    for name in loaded.metrics:
        metric = metrics.metric(name)
        if metric is not None:
            metrics.labels[name] = L.Labels(metric)
    return metrics


def shape(obj, m, metrics: Metrics) -> str | None:
    """ "metric" (the YAML names it), "buckets" (the exporter's histogram
    shape, without the YAML), or None."""
    if metrics.metric(m.name) is not None:
        return "metric"
    if m.type in BATCH_TYPES and B.bucket_member(obj.btf, m.key_type_id, m.value_type_id):
        return "buckets"
    return None


def is_histogram(obj, m, metrics: Metrics) -> bool:
    found = shape(obj, m, metrics)
    metric = metrics.metric(m.name)
    return found == "buckets" or (metric is not None and metric.kind == "histogram")


def describe(obj, m, metrics: Metrics) -> str | None:
    """What ``inspect`` says of how such a map is shown; None for others."""
    metric = metrics.metric(m.name)
    if metric is not None:
        labels = ", ".join(metric.label_names) or "no labels"
        if metric.kind == "counter":
            return f"counter {metric.name} ({labels}): {metric.help}"
        return f"{metric.bucket_type} histogram {metric.name} ({labels}), with its sum: {metric.help}"
    if shape(obj, m, metrics) == "buckets":
        return "exp2 histograms, one entry per bucket (ebpf_exporter's shape), the sum found from the counts"
    return None


def read(obj, m, metrics: Metrics, unit: str | None, report):
    """Map ``m`` as a ``report`` (the MapReport class): a counter's entries
    (labels -> value), or histograms."""
    metric = metrics.metric(m.name)
    items = m.items()
    if metric is None:
        return _read_shape(obj, m, items, unit, report)
    raw = [(m.key_layout.encode(k), v) for k, v in items]
    samples = L.samples(metric, metrics.labels[m.name], raw, m.percpu)
    names = metric.label_names
    if metric.kind == "counter":
        counters = sorted(((dict(zip(names, values)), v) for values, v in samples), key=_order)
        return report(m.name, "entries", counters, help=metric.help, labelled=True)
    spec = B.from_metric(metric)
    entries: list[tuple[dict, int, int]] = []
    for values, v in samples:
        try:
            bucket = int(values[-1])
        except ValueError:
            continue  # a bucket label that is no number: the exporter skips the map
        entries.append((dict(zip(names, values[:-1])), bucket, v))
    word, scale = B.display_unit(metric.name, metric.bucket_multiplier)
    if unit:  # the caller names the unit of the object's own values: they are shown as they are
        word, scale = unit, 1.0
    return _histograms(m.name, entries, spec, None, word, scale, report, metric.help, True)


def _read_shape(obj, m, items, unit, report):
    """A map of the exporter's histogram shape, without its YAML."""
    present_key = presenter(obj.btf, m.key_type_id)
    entries = []
    for k, v in items:
        if m.percpu:
            v = sum(v)
        key = present_key(k)
        key.pop(B.BUCKET)
        entries.append((key, k.bucket, v))
    # an array's last element is the sum (ebpf_exporter sizes them bucket_max + 2)
    last = m.max_entries - 1 if m.type in ARRAY_TYPES else None
    from .shapes import unit_of

    return _histograms(m.name, entries, B.Buckets(), last, unit or unit_of(m.name), 1.0, report, None, False)


def _histograms(name, entries, spec, last, unit, scale, report, help_text, labelled):
    found = B.histograms(entries, spec, last)
    where = spec.sum_bucket if spec.sum_bucket is not None else last
    if where is None:
        where = _sum_bucket(entries, found)
    if where is not None and not any(b == where for _, b, _ in entries):
        where = None  # the object keeps no sum (tcp-syn-backlog's linear buckets)
    hists = []
    for h in found:
        slots = [h.counts.get(b, 0) for b in range(max([*h.counts, where or 0]) + 1)]
        if where is not None:
            slots[where] = h.sum or 0
        hists.append((h.key, slots, {}))
    if hists:  # one length for every key: an interval's difference is taken slot by slot
        width = max(len(s) for _, s, _ in hists)
        hists = sorted(((k, s + [0] * (width - len(s)), x) for k, s, x in hists), key=_order)
    return report(
        name,
        "hist",
        hists,
        unit,
        buckets=spec,
        sum_slot=where,
        scale=scale,
        help=help_text,
        labelled=labelled,
    )


def _sum_bucket(entries, found) -> int | None:
    """The bucket the sums were taken from (found from the counts)."""
    every = {b for _, b, _ in entries}
    left = {b for h in found for b in h.counts}
    gone = every - left
    return max(gone) if gone else None


def _order(entry):
    key = entry[0]
    return tuple(str(v) for v in key.values()) if isinstance(key, dict) else (str(key),)


class SpanDecoder:
    """Records of a ring buffer ebpf_exporter reads tracing spans from, cut
    into the span's labels (its YAML's names are the stream's columns), the
    bytes past them left, as the exporter leaves them; a shorter record, or
    one whose labels the YAML leaves out, as ``by_struct`` (the stream's own
    decoder) decodes it."""

    def __init__(self, stream, labels: L.Labels, by_struct):
        from .streams import Column

        self.stream, self.labels, self.by_struct = stream, labels, by_struct
        self.names = [label.name for label in labels.metric.labels]
        stream.columns = [Column(n, "other", 0) for n in self.names]
        stream.raw, stream.struct = False, f"span {labels.metric.name}"

    def __call__(self, data: bytes) -> dict:
        # the exporter reads the labels' bytes, the rest (a struct's tail padding) left
        size = self.labels.size
        values = self.labels.of(data[:size]) if len(data) >= size else None
        if values is None:
            return self.by_struct(data)
        self.stream.count += 1
        return dict(zip(self.names, values))
