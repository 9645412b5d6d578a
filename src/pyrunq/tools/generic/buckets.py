"""Histograms kept as ebpf_exporter keeps them: one map entry per bucket,
keyed ``{labels..., bucket}``, the value the bucket's count, and the sum of
what was measured in bucket ``bucket_max + 1``. Pure functions: which maps
have that shape, what each bucket holds, and the histograms of a map's
entries (their sums taken out).

What a bucket holds (``Buckets``), as ebpf_exporter's ``maps.bpf.h`` fills
them and its exporter labels them (Prometheus' ``le``, times
``bucket_multiplier``):

- ``exp2``: bucket 0 holds 0 and 1, bucket b the values in (2^(b-1), 2^b];
- ``exp2zero``: bucket 0 holds 0, bucket 1 holds 1, bucket b the values in
  (2^(b-2), 2^(b-1)];
- ``linear``: bucket b is labelled b * multiplier; ``fixed``: the buckets
  ``bucket_keys`` name, labelled so.

The last bucket (``bucket_max``) also holds every larger value: the
program clamps them into it.

Without its YAML an object's map has this shape when its value is a 64-bit
integer and its key a struct whose last member is an integer named
``bucket``; its buckets are taken as ``exp2`` (all the exporter's latency
examples), and the sum's bucket is found from the counts: the map's highest
bucket, when the number there lies between the least and the most the
other buckets' counts can add up to (``sum_fits``) for every key that has
it. An array map's sum is in its last element (``max_entries`` is
``bucket_max + 2``).
"""

from __future__ import annotations

import dataclasses
import math

from ...bpf import btf as B

BUCKET = "bucket"  # the key member that holds the bucket


@dataclasses.dataclass(frozen=True)
class Buckets:
    """What the buckets of one histogram mean. ``max`` None: not known (no
    configuration): the sum's bucket is found from the counts."""

    type: str = "exp2"
    min: int = 0
    max: int | None = None
    multiplier: float = 1.0
    keys: tuple = ()  # fixed: the buckets there are

    @property
    def sum_bucket(self) -> int | None:
        if self.type == "fixed":
            return self.keys[-1] + 1
        return None if self.max is None else self.max + 1

    @property
    def last(self) -> int | None:
        """The bucket values above the others are clamped into."""
        if self.type == "fixed":
            return self.keys[-1]
        return self.max

    def bound(self, bucket: int) -> float:
        """The bucket's label: the most it holds, in the object's unit (its
        ``le`` without the multiplier)."""
        if self.type == "exp2":
            return float(2**bucket)
        if self.type == "exp2zero":
            return 0.0 if bucket == 0 else float(2 ** (bucket - 1))
        return float(bucket)  # linear, fixed

    def least(self, bucket: int) -> float:
        """The least value a bucket of an exp2 or exp2zero histogram holds
        (integers: one more than the bucket below holds), in the object's unit."""
        if bucket == 0:
            return 0.0
        if self.type == "exp2zero" and bucket == 1:
            return 1.0
        return self.bound(bucket - 1) + 1


def from_metric(metric) -> Buckets:
    """The buckets an ``exporter_config.Metric`` of kind histogram describes."""
    return Buckets(
        metric.bucket_type, metric.bucket_min, metric.bucket_max, metric.bucket_multiplier, metric.bucket_keys
    )


def bucket_member(btf, key_tid: int, value_tid: int) -> str | None:
    """The name of the key member that holds the bucket (``bucket``) when a
    map of these key and value types has ebpf_exporter's histogram shape:
    the value a 64-bit integer, the key a struct whose last member is an
    integer named ``bucket``; else None."""
    if not key_tid or not value_tid:
        return None
    value = btf.resolve(value_tid)
    if btf.kind(value) != B.INT or btf.size(value) != 8:
        return None
    key = btf.resolve(key_tid)
    if btf.kind(key) != B.STRUCT or btf.layout(key).record is None:
        return None
    members = btf.members(key)
    if not members or members[-1][0] != BUCKET:
        return None
    last = btf.resolve(members[-1][1])
    return BUCKET if btf.kind(last) == B.INT and not members[-1][3] else None


@dataclasses.dataclass
class BucketHistogram:
    """One histogram: its labels (the key without its bucket), the count of
    each bucket, and the sum of what it measured (in the object's unit; None
    when the map keeps none)."""

    key: object
    counts: dict  # bucket -> count
    sum: int | None = None

    @property
    def count(self) -> int:
        return sum(self.counts.values())


def histograms(entries, buckets: Buckets, sum_bucket: int | None = None) -> list[BucketHistogram]:
    """The histograms of a map's entries (key without bucket, bucket, count),
    in the order their keys first come. The sum is taken out of bucket
    ``buckets.sum_bucket``, else of ``sum_bucket`` (an array map's last),
    else of the bucket ``find_sum_bucket`` finds."""
    groups: dict = {}
    order: list = []
    for key, bucket, count in entries:
        frozen = _frozen(key)
        if frozen not in groups:
            groups[frozen] = BucketHistogram(key, {})
            order.append(frozen)
        counts = groups[frozen].counts
        counts[bucket] = counts.get(bucket, 0) + count
    found = [groups[k] for k in order]
    where = buckets.sum_bucket
    if where is None:
        where = sum_bucket if sum_bucket is not None else find_sum_bucket(found, buckets)
    if where is not None:
        for h in found:
            h.sum = h.counts.pop(where, 0)
    return found


def find_sum_bucket(found: list[BucketHistogram], buckets: Buckets) -> int | None:
    """The bucket the sums are in, when the configuration does not say: the
    highest bucket of the map, when for every histogram that has it the
    number there is a sum its other buckets' counts allow (``sum_fits``),
    and every histogram that counted a value above 0 has it. None when
    nothing says so (then every bucket is shown as a count)."""
    top = max((b for h in found for b in h.counts), default=None)
    if top is None:
        return None
    holders = [h for h in found if top in h.counts]
    # the exporter's programs add to the sum with every value above 0: a key
    # that counted one (in a bucket above 0) but has no sum there has none
    lacking = any(top not in h.counts and any(b > 0 for b in h.counts) for h in found)
    if not lacking and all(sum_fits(h.counts, top, buckets) for h in holders):
        return top
    return None


def sum_fits(counts: dict, top: int, buckets: Buckets) -> bool:
    """Whether ``counts[top]`` can be the sum of the values the other buckets
    counted: at least the least of each bucket times its count, and at most
    the most (unbounded for the bucket just below: it may be the one larger
    values are clamped into). Only exp2 and exp2zero buckets say what they
    hold; a histogram with no other bucket has no sum."""
    if buckets.type not in ("exp2", "exp2zero"):
        return False
    others = {b: c for b, c in counts.items() if b != top and c}
    if not others:
        return False
    least = sum(buckets.least(b) * c for b, c in others.items())
    most = sum(buckets.bound(b) * c for b, c in others.items())
    if max(others) == top - 1:
        most = math.inf
    return least <= counts[top] <= most


def _frozen(key):
    if isinstance(key, dict):
        return tuple((k, _frozen(v)) for k, v in key.items())
    if isinstance(key, (list, tuple)):
        return tuple(_frozen(v) for v in key)
    return key


# -- how the buckets are labelled for a person ------------------------------------

_SECONDS = ((1.0, "secs"), (1e-3, "msecs"), (1e-6, "usecs"), (1e-9, "nsecs"))  # coarsest first


def display_unit(metric_name: str, multiplier: float, fallback: str = "value") -> tuple[str, float]:
    """(unit word, factor) to label buckets with: a ``*_seconds`` metric's
    buckets in the closest of nsecs/usecs/msecs/secs that shows the object's
    own unit whole (multiplier 1e-6: usecs, factor 1; 1e-7: nsecs, 100);
    other metrics in ``fallback`` times the multiplier."""
    if metric_name.endswith("_seconds"):
        for scale, word in _SECONDS:
            factor = multiplier / scale
            if factor >= 1 and abs(factor - round(factor)) < 1e-6 * factor:
                return word, float(round(factor))
        return "secs", multiplier
    words = metric_name.rsplit("_", 1)
    if len(words) == 2 and words[1] in ("bytes", "packets"):
        return words[1], multiplier
    return fallback, multiplier


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def rows(h: BucketHistogram, buckets: Buckets, factor: float) -> list[tuple[str, int]]:
    """(label, count) of each bucket from the lowest of ``buckets.min`` and
    the first counted to the last counted: ``low -> high`` (exp2, exp2zero:
    the whole values it holds), ``<= high`` (linear, fixed: the exporter's
    ``le``); the clamping bucket ``low -> ...``. Scaled by ``factor``."""
    counted = [b for b, c in h.counts.items() if c]
    if not counted:
        return []
    if buckets.type == "fixed":
        shown = [b for b in buckets.keys if b <= max(counted)] + sorted(set(counted) - set(buckets.keys))
    else:
        shown = list(range(min(buckets.min, min(counted)), max(counted) + 1))
    out = []
    for b in shown:
        high = _number(buckets.bound(b) * factor)
        if buckets.type in ("exp2", "exp2zero"):
            low = _number(buckets.least(b) * factor)
            label = f"{low} -> ..." if b == buckets.last else (high if low == high else f"{low} -> {high}")
        else:
            label = f">= {high}" if b == buckets.last else f"<= {high}"
        out.append((label, h.counts.get(b, 0)))
    return out
