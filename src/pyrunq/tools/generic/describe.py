"""What ``pyrunq inspect`` shows of an object, as plain data, read without
loading it (no privileges needed): its programs, its maps and globals with
their plans (how ``pyrunq run`` shows each, and why), its event structs and
the structs only its DWARF has."""

from __future__ import annotations

from ...bpf import BATCH_TYPES, DATA_SECTIONS
from ...bpf.events import event_structs, struct_types
from . import exporter_maps, gadget
from .exporter_maps import CONFIG_AUTO
from .objfile import ObjectFile
from .origins import global_name
from .plan import MapPlan, View, view
from .present import presenter
from .settings import value_kind
from .targets import is_socket_filter, set_section_types


def describe(path: str, config=CONFIG_AUTO) -> dict:
    """Everything ``pyrunq inspect`` shows, as plain data; ``config``: the
    object's ebpf_exporter YAML (default: the one beside it, if any; None: none)."""
    objfile = ObjectFile(path)
    try:
        return _describe(objfile, path, config)
    finally:
        objfile.close()


def _describe(objfile: ObjectFile, path: str, config) -> dict:
    with objfile.open() as obj:
        set_section_types(obj)  # as run loads them (perf_event/X: perf_event; socket1: socket filter)
        btf = obj.btf
        metrics = exporter_maps.setup(obj, path, config)
        v = view(objfile, obj, metrics=metrics)
        dwarf = objfile.dwarf()
        own = [struct_types(obj, s) for s in objfile.candidates(obj)[1]]  # the structs only DWARF has
        return {
            "object": obj.name,
            "path": path,
            "license": objfile.facts.license,
            "core": objfile.facts.core,
            "programs": [
                {
                    "name": p.name,
                    "section": p.section,
                    "type": p.type_name,
                    "attach_target": SOCKET_TARGET if is_socket_filter(p) else attach_target(p.section),
                    "autoload": p.autoload,
                    "instructions": p.insn_count,
                }
                for p in obj.programs.values()
            ],
            "maps": [_describe_map(objfile, obj, m, v) for m in obj.maps.values()],
            "config": metrics.config.path if metrics.config else None,
            "globals": [
                _describe_global(objfile, obj, section, name, tid, v)
                for section in DATA_SECTIONS
                for name, tid, _, _ in btf.variables(section, static=False)
            ],
            "event_structs": [
                {"name": s, "size": btf.size(btf.find(s)), "definition": btf.definition(btf.find(s))}
                for s in event_structs(obj)
            ],
            "gadget": _describe_gadget(obj),
            "dwarf": dwarf is not None,
            "dwarf_structs": [
                {"name": types.name(tid), "size": types.size(tid), "definition": types.definition(tid)}
                for types, tid in own
            ],
        }


def _describe_gadget(obj) -> dict | None:
    """Inspektor Gadget's markers (``gadget``), None when the object has none."""
    ig = gadget.markers(obj.btf)
    if not ig:
        return None
    rodata = {name: tid for name, tid, _, _ in obj.btf.variables(".rodata", static=False)}
    return {
        "tracers": ig.tracers,
        "mapiters": ig.mapiters,
        "iterators": {p: {"name": it.name, "struct": it.struct} for p, it in ig.iterators.items()},
        "params": [
            {
                "name": name,
                "declaration": obj.btf.declaration(rodata[name], name),
                "kind": value_kind(obj.btf, rodata[name]),
                "default": presenter(obj.btf, rodata[name])(obj.rodata[name]),
            }
            for name in ig.params
            if name in rodata
        ],
    }


def shown_as(plan: MapPlan, choices: list[str] | None = None) -> str:
    """How ``pyrunq run`` shows what ``plan`` plans, in a few words."""
    if plan.kind == "events":
        if plan.struct:
            return f"events of struct {plan.struct}" + (" (DWARF)" if plan.source == "DWARF" else "")
        return f"events of the struct of their size ({', '.join(choices)})" if choices else "raw records"
    if plan.shown_as:
        return plan.shown_as
    if plan.kind == "hist":
        many = "s" if plan.section is not None and plan.shape in ("value", "slots") else ""
        measured = ", as its programs measure" if plan.unit_why else ""
        if plan.scale.kind == "linear":
            step = f", {plan.scale.step} a slot" if plan.scale.step != 1 else ""
            return f"linear histogram{many} ({plan.unit}{step}{measured})"
        return f"log2 histogram{many} ({plan.unit}{measured})"
    what = {"array": "elements", "value": "value"}.get(plan.shape, "entries") if plan.section else "entries"
    return what if plan.shown else f"{what} (not by default: {plan.why})"


def _describe_map(objfile: ObjectFile, obj, m, v: View) -> dict:
    btf = obj.btf
    plan = next((p for p in v.plans if p.name == m.name and p.section is None), None)
    choices = objfile.nameable(obj) if plan and plan.kind == "events" and not plan.struct else None
    return {
        "name": m.name,
        "type": m.type_name,
        "key": btf.declaration(m.key_type_id) if m.key_type_id else None,
        "value": btf.declaration(m.value_type_id) if m.value_type_id else None,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "pinning": m.pin_path,
        "shown_as": shown_as(plan, choices) if plan else None,  # None: not shown by run
        "why": plan.why if plan else _not_read(m),
        "names": _names(objfile.meanings(obj).get(m.name, {})),
    }


def _names(meanings: dict[str, dict[int, str]]) -> dict[str, dict[str, str]]:
    """Place (key, value, record, index) -> byte offset (as text) -> what the
    number there holds, shown by name (``origins``)."""
    return {place: {str(o): m for o, m in sorted(at.items())} for place, at in meanings.items()}


def _not_read(m) -> str:
    return "not read: neither a hash, array nor event map" if m.type not in BATCH_TYPES else ""


def _describe_global(objfile: ObjectFile, obj, section: str, name: str, tid: int, v: View) -> dict:
    btf = obj.btf
    default = getattr(obj, section[1:])[name]  # the object's initial image, before load
    plan = next((p for p in v.globals if p.name == name and p.section == section), None)
    return {
        "name": name,
        "section": section,
        "declaration": btf.declaration(tid, name),
        "kind": value_kind(btf, tid),
        "default": presenter(btf, tid)(default),
        "shown_as": shown_as(plan) if plan else None,  # .rodata (configuration) and pointers: not shown
        "why": plan.why if plan else _why_not(section),
        "names": _names(objfile.meanings(obj).get(global_name(section, name), {})),
    }


def _why_not(section: str) -> str:
    return "configuration: set before load" if section == ".rodata" else "holds a pointer: no result"


SOCKET_TARGET = "raw packet socket"  # where run attaches a socket filter (of every interface, or those given)


def attach_target(section: str) -> str | None:
    """What a section names after its type: ``raw_tp/sys_enter`` -> ``sys_enter``."""
    return section.split("/", 1)[1] if "/" in section else None
