"""How ``pyrunq run`` prints records and map reports: as tables (records as
rows under their field names, maps bpftrace-style, histograms as bcc prints
them) or as JSON lines. The widths of a table's columns are decided here,
from what each column holds (``tools.generic.Column``)."""

from __future__ import annotations

import time

RAW_COLUMNS = [("size", 5), ("data", 35)]  # records no struct decodes
_INT_WIDTHS = {1: 4, 2: 6, 4: 7, 8: 12}  # by an integer's bytes


def width(column) -> int:
    """How wide a column of a records table is: its name, or what its values take."""
    w = {
        "int": _INT_WIDTHS.get(column.size, 8),
        "bool": 5,
        "enum": column.size or 8,
        "string": min(column.size - 1, 16),
        "text": column.size,
    }.get(column.kind, 8)
    return max(len(column.name), w)


def columns(stream) -> list[tuple[str, int]]:
    """(field, width) of each column of a stream's table."""
    if stream.raw:
        return list(RAW_COLUMNS)
    return [(c.name, width(c)) for c in stream.columns]


def cells(stream, record: dict) -> list[str]:
    """The cells of a record's row: each column's value, found by its path
    through the record's members (a flattened struct's) or by its name."""
    if stream.raw:
        return [text(record.get(f, "")) for f, _ in RAW_COLUMNS]
    out = []
    for c in stream.columns:
        value = record
        for member in c.path or (c.name,):
            value = value.get(member, "") if isinstance(value, dict) else ""
        out.append(text(value))
    return out


PREFIX_BYTES = 16  # of a record that no struct decodes, shown without --raw


def prefix(data: str) -> str:
    """The first PREFIX_BYTES bytes of a record in hex, "..." when there is more."""
    return data[: 2 * PREFIX_BYTES] + ("..." if len(data) > 2 * PREFIX_BYTES else "")


def plain(record):
    """A record (a ``pyrunq.bpf.Record``, or bytes no struct decodes) as plain
    data: a dict of its members, nested records too; bytes as their size
    and hex."""
    if isinstance(record, (bytes, bytearray)):
        return {"size": len(record), "data": record.hex()}
    if hasattr(record, "_asdict"):
        return {k: plain(v) for k, v in record._asdict().items()}
    if isinstance(record, list):
        return [plain(v) for v in record]
    return record


def text(v) -> str:
    """A decoded value on one line: numbers and strings as they are, structs
    as {field=value, ...}, arrays as [a, b]."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(text(x) for x in v) + "]"
    return str(v)


class TablePrinter:
    """Records as rows under a header of field names; maps bpftrace-style;
    histograms as bcc prints them; a global's own value as ``name: value``."""

    raw = False  # records no struct decodes: whole, not their size and first bytes

    def __init__(self, out):
        self.out, self.streams, self._last = out, {}, None

    def event(self, map_name: str, record) -> None:
        stream = self.streams[map_name]
        shown = columns(stream)
        record = plain(record)
        if stream.raw and not self.raw:
            record = {"size": record["size"], "data": prefix(record["data"])}
        if map_name != self._last:  # a header again whenever the event map changes
            if self._last is not None:
                self.out.write("\n")
            self._last = map_name
            self.out.write(" ".join(["TIME    "] + [f.upper().ljust(w) for f, w in shown]).rstrip() + "\n")
        row = [time.strftime("%H:%M:%S")]
        row += [cell.ljust(w) for cell, (_, w) in zip(cells(stream, record), shown)]
        self.out.write(" ".join(row).rstrip() + "\n")
        self.out.write(stack_lines(record, stream.stacks))
        self.out.flush()

    def maps_with_time(self, reports) -> None:
        self.out.write(f"\n{time.strftime('%H:%M:%S')}\n")
        self.maps(reports)

    def maps(self, reports) -> None:
        from ..hist import render_log2_bcc

        values = False  # after a global's own value: the next one goes on the next line
        for rep in reports:
            helped = bool(rep.help and rep.entries)
            if helped:  # as the exporter's text: its series right below
                self.out.write(f"\n# HELP {rep.name} {rep.help}\n")
            if rep.buckets is not None:
                values = False
                for i, (key, slots, _) in enumerate(rep.entries):
                    gap = "" if helped and i == 0 else "\n"
                    self.out.write(f"{gap}{metric_head(rep, key)}:\n{bucket_text(rep, slots)}")
                continue
            if rep.kind == "hist":
                values = False
                for key, slots, labels in rep.entries:
                    head = rep.name if key is None else f"{rep.name}[{text(without(key, rep.stacks))}]"
                    extra = "".join(f" {k}={text(v)}" for k, v in labels.items())
                    stacks = stack_lines(only(key, rep.stacks), rep.stacks) if rep.stacks else ""
                    self.out.write(f"\n{head}:{extra}\n{stacks}{hist_text(rep, slots, render_log2_bcc)}")
                continue
            value = _own_value(rep)
            if rep.entries and not (value and values) and not helped:
                self.out.write("\n")
            values = value
            for key, v in rep.entries:
                shown_key, shown_value = without(key, rep.stacks), without(v, rep.stacks)
                head = rep.name if key is None else f"{rep.name}[{text(shown_key)}]"
                if rep.labelled:
                    head = metric_head(rep, key)
                self.out.write(f"{head}: {text(shown_value)}\n")
                if rep.stacks:
                    self.out.write(stack_lines({**only(key, rep.stacks), **only(v, rep.stacks)}, rep.stacks))
            if rep.merged:
                note = f"{rep.merged} entries added into others whose stacks name the same functions"
                self.out.write(f"({rep.name}: {note})\n")
        self.out.flush()


def hist_text(rep, slots: list, log2) -> str:
    """A histogram's slots drawn: log2 ones by ``log2`` (as bcc prints
    them), linear ones with each slot's values as its label (``200-399``,
    ``>= 5000`` for a last slot larger values are clamped into), from the
    first slot counted to the last (libbpf-tools' print_linear_hist shows
    only those counted), laid out alike."""
    from ..hist import render_labelled

    scale = rep.slot_scale
    if scale is None or scale.kind != "linear":
        return log2(slots, rep.unit)
    counted = [i for i, c in enumerate(slots) if c]
    shown = range(counted[0], counted[-1] + 1) if counted else range(0)
    return render_labelled([(scale.label(i, len(slots)), slots[i]) for i in shown], rep.unit)


def hist_scale_json(rep) -> dict:
    """What a histogram's slots hold, for --json: ``bucket_type`` "log2" or
    "linear" (as ebpf_exporter's histograms name theirs), and a linear one's
    ``step`` and ``open_last`` (its last slot holds every larger value too)."""
    scale = rep.slot_scale
    if scale is None or scale.kind != "linear":
        return {"bucket_type": "log2"}
    return {"bucket_type": "linear", "step": scale.step, "open_last": scale.open_last}


def metric_head(rep, key) -> str:
    """An entry of ebpf_exporter's maps as its exporter names the series:
    ``name{label="value", ...}`` (with its YAML), else as any map's entry."""
    if rep.labelled:
        labels = ", ".join(f'{k}="{v}"' for k, v in key.items())
        return f"{rep.name}{{{labels}}}" if labels else rep.name
    return rep.name if key in (None, {}) else f"{rep.name}[{text(key)}]"


def bucket_text(rep, slots: list) -> str:
    """A histogram of ebpf_exporter's buckets, each row saying what it holds,
    then its count and sum."""
    from ..hist import render_labelled
    from ..tools.generic.buckets import BucketHistogram, rows

    counts = {b: c for b, c in enumerate(slots) if b != rep.sum_slot}
    h = BucketHistogram(None, counts)
    drawn = render_labelled(rows(h, rep.buckets, rep.scale), rep.unit)
    total = f"     count {h.count}"
    if rep.sum_slot is not None:
        total += f", sum {_amount(slots[rep.sum_slot] * rep.scale)} {rep.unit}"
        if not rep.labelled:  # no YAML said where: say which bucket was read as the sum
            total += f" (bucket {rep.sum_slot}, the sum: found from the counts)"
    return f"{drawn}{total}\n"


def _amount(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def without(value, members: list):
    """A struct's members but the stacks."""
    if not (members and isinstance(value, dict)):
        return value
    return {k: v for k, v in value.items() if k not in members}


def only(value, members: list) -> dict:
    return {k: v for k, v in value.items() if k in members} if isinstance(value, dict) else {}


def stack_lines(value: dict, members: list) -> str:
    """The stacks of a record or entry, a function per line, as bcc's tools
    print them: the kernel's (innermost) above the user's, "--" between."""
    order = sorted(members, key=lambda m: m.lower().startswith("u"))
    stacks = [value[m] for m in order if value.get(m)]
    return "    --\n".join("".join(f"    {frame}\n" for frame in stack) for stack in stacks)


def _own_value(rep) -> bool:
    """Whether a report is a global's own value (not an array's elements)."""
    return rep.section is not None and [key for key, _ in rep.entries] == [None]


def bucket_json(rep) -> dict:
    """ebpf_exporter's histograms for --json: per key its counts by bucket
    (``slots``), each bucket's upper bound as the exporter labels it (``le``,
    in the metric's unit), the count, and the sum (in the object's unit)."""
    b = rep.buckets
    hists = []
    for key, slots, labels in rep.entries:
        counts = [c for i, c in enumerate(slots) if i != rep.sum_slot]
        hists.append(
            {
                "key": key,
                "slots": counts,
                "labels": labels,
                "le": [b.bound(i) * b.multiplier for i in range(len(counts))],
                "count": sum(counts),
                "sum": None if rep.sum_slot is None else slots[rep.sum_slot],
            }
        )
    out = {"bucket_type": b.type, "histograms": hists}
    if rep.help:
        out["help"] = rep.help
    return out


class JsonPrinter:
    raw = False  # records no struct decodes: whole ("data"), not "size" and "prefix"

    def __init__(self, out):
        import json

        self.out, self.dumps, self.streams = out, json.dumps, {}

    def event(self, map_name: str, record) -> None:
        record = plain(record)
        if self.streams[map_name].raw and not self.raw:
            record = {"size": record["size"], "prefix": record["data"][: 2 * PREFIX_BYTES]}
        self.out.write(
            self.dumps({"type": "event", "time": time.time(), "map": map_name, "event": record}) + "\n"
        )
        self.out.flush()

    def maps(self, reports) -> None:
        now = time.time()
        for rep in reports:
            source = (
                {"map": rep.name} if rep.section is None else {"global": rep.name, "section": rep.section}
            )
            if rep.buckets is not None:
                doc = {"type": "hist", "time": now, **source, "unit": rep.unit, **bucket_json(rep)}
            elif rep.kind == "hist":
                doc = {
                    "type": "hist",
                    "time": now,
                    **source,
                    "unit": rep.unit,
                    **hist_scale_json(rep),
                    "histograms": [{"key": k, "slots": s, "labels": lab} for k, s, lab in rep.entries],
                }
            elif _own_value(rep):
                doc = {"type": "global", "time": now, **source, "value": rep.entries[0][1]}
            else:
                doc = {
                    "type": "map" if rep.section is None else "global",
                    "time": now,
                    **source,
                    "entries": [{"key": k, "value": v} for k, v in rep.entries],
                }
                if rep.help:
                    doc["help"] = rep.help
            self.out.write(self.dumps(doc) + "\n")
        self.out.flush()

    maps_with_time = maps


def print_records(out, program: str, records: list, as_json: bool) -> None:
    """An iterator's records: a table under its fields' names, columns as
    wide as their widest cell (JSON: one document with the records)."""
    import json

    if as_json:
        out.write(
            json.dumps({"type": "iterator", "time": time.time(), "program": program, "records": records})
        )
        out.write("\n")
        return
    fields = list(records[0]) if records else []
    cells = [[text(r.get(f, "")) for f in fields] for r in records]
    widths = [max([len(f)] + [len(row[i]) for row in cells]) for i, f in enumerate(fields)]
    out.write(" ".join(f.upper().ljust(w) for f, w in zip(fields, widths)).rstrip() + "\n")
    for row in cells:
        out.write(" ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
