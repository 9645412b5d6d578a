"""``pyrunq skel``: a typed Python module from a compiled CO-RE object.

One reader, two outputs: the object's types are read with the same readers
and codecs the runtime decodes with (``BTF``, the DWARF reader, the layouts'
codecs, ``events``' pairing of event maps with structs). ``model()`` turns
them into a plain description (structs, enums, globals per section, maps,
event maps, programs); ``source()`` writes it as a module over
``pyrunq.bpf.skel``, and its digest, kept in the module, is what a skeleton
checks at ``open()`` against the object it opens.

How C types become Python annotations is how the codecs decode them: an
integer ``int`` (``bool`` for a bool; an enum's value is an ``int``, and the
enum a ``enum.IntEnum`` class of its enumerators), ``float``, ``char[N]``
``str``, other arrays ``tuple[T, ...]``, a pointer ``int`` (the address), a
named struct its generated class (an anonymous one ``Record``), and what has
no byte layout (named unions, structs with bit-fields) ``bytes``. The
members of an anonymous struct or union are the enclosing class's own, as
the decoder gives them.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import os
import re
from typing import Any

from ..errors import UsageError
from . import events
from .codecs import Array, Codec, CString, Float, Int, Raw, Struct
from .globals import DATA_SECTIONS
from .maps import EVENT_TYPES
from .object import BPFObject

# names the module defines itself: a struct or enum so named gets a trailing _
_RESERVED = {
    "Skeleton", "Rodata", "Bss", "Data", "Maps", "Progs", "Events", "OBJECT", "DIGEST", "EVENTS",
    "RECORDS", "open", "enum", "os", "BPFObject", "Program", "Record", "annotations", "_skel",
    "int", "str", "bytes", "bool", "float", "tuple", "list", "dict", "type", "super",
}  # fmt: skip
_SAFE_FILE = re.compile(r"[\w.+-]+\Z", re.ASCII)
_SECTION_CLASSES = {".rodata": "Rodata", ".bss": "Bss", ".data": "Data"}
_SECTION_DOCS = {
    ".rodata": "set before load(), read-only after",
    ".bss": "zeroed at load, read and written at any time",
    ".data": "initialized at load, read and written at any time",
}


class _Types:
    """What the annotations of one object need: struct and enum classes."""

    def __init__(self) -> None:
        self.structs: dict[str, dict[str, Any]] = {}
        self.enums: dict[str, list[tuple[str, int]]] = {}

    def annotation(self, types: Any, tid: int, codec: Codec) -> str:
        """The Python type of values of ``tid`` as ``codec`` decodes them."""
        rtid = types.resolve(tid) if tid else 0
        if isinstance(codec, Raw):
            return "bytes"
        if isinstance(codec, CString):
            return "str"
        if isinstance(codec, Float):
            return "float"
        if isinstance(codec, Int):
            if codec.is_bool:
                return "bool"
            if codec.values is not None and rtid and types.name(rtid).isidentifier():
                values = [(k, v) for k, v in codec.values.items() if k.isidentifier()]
                self.enums.setdefault(types.name(rtid), values)
            return "int"
        if isinstance(codec, Array):
            elem = self.annotation(types, types.array(rtid)[0], codec.elem)
            return f"tuple[{elem}, ...]"
        if isinstance(codec, Struct):
            name = types.name(rtid)
            if not name.isidentifier():  # anonymous
                return "Record"
            if name not in self.structs:
                self.structs[name] = {}  # before the members: a struct may hold itself by pointer only
                self.structs[name] = self._struct(types, rtid, codec)
            return class_name(name)
        return "bytes"

    def _struct(self, types: Any, tid: int, codec: Struct) -> dict[str, Any]:
        fields = []
        # an anonymous struct's or union's members are the record's own, as the decoder gives them
        for (cname, mtid, _, _), field, py in zip(types.fields(tid), codec.fields, codec.record._fields):
            fields.append([py, self.annotation(types, mtid, field.codec), cname, field.offset])
        return {"size": codec.size, "fields": fields}


def class_name(name: str) -> str:
    """The class a struct or enum is generated as."""
    return name + "_" if name in _RESERVED or keyword.iskeyword(name) else name


def attribute(name: str) -> str:
    """The attribute a map, program or global is: a keyword gets a trailing _."""
    return name + "_" if keyword.iskeyword(name) else name


def model(obj: BPFObject, explicit: dict[str, str | None] | None = None) -> dict[str, Any]:
    """What a skeleton of ``obj`` holds, as plain data; ``explicit``: event
    map -> struct, where the object does not pair them itself."""
    types = _Types()
    out: dict[str, Any] = {"globals": {}, "maps": [], "events": [], "programs": []}
    for section in DATA_SECTIONS:
        out["globals"][section] = [
            [name, types.annotation(obj.btf, tid, obj.btf.layout(tid, size).codec)]
            for name, tid, _, size in obj.btf.variables(section, static=False)
            if name.isidentifier() and name in getattr(obj, section[1:])
        ]
    for name, m in obj.maps.items():
        if not name.isidentifier():
            continue
        if m.type in EVENT_TYPES:
            # a module's EVENTS name every event map's struct (or None): its check at
            # open() then reads no pairing, which asks the running kernel's BTF
            explicit = explicit or {}
            struct = explicit[name] if name in explicit else events.likely_struct(obj, name)
            found = events.struct_types(obj, struct) if struct else None  # UsageError: which there are
            annotation = "bytes"
            if found is not None:
                annotation = types.annotation(found[0], found[1], found[0].layout(found[1]).codec)
            out["events"].append([name, struct if found is not None else None, annotation])
            continue
        key = types.annotation(obj.btf, m.key_type_id, m.key_layout.codec)
        value = types.annotation(obj.btf, m.value_type_id, m.value_layout.codec)
        out["maps"].append([name, key, f"list[{value}]" if m.percpu else value])
    unknown = set(explicit or {}) - {name for name, _, _ in out["events"]}
    if unknown:
        rings = ", ".join(name for name, _, _ in out["events"]) or "none"
        first = sorted(unknown)[0]
        raise UsageError(f"event {first}: no such ring buffer or perf event array (has: {rings})")
    out["programs"] = [[name, p.section] for name, p in obj.programs.items() if name.isidentifier()]
    out["structs"] = types.structs
    out["enums"] = types.enums
    return out


def model_digest(m: dict[str, Any]) -> str:
    """The digest of a model: equal for objects whose skeletons are equal."""
    return hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()


def generate(path: str | os.PathLike[str], module: str, explicit: dict[str, str | None] | None = None) -> str:
    """The source of the skeleton module of the object at ``path``, to be
    written to ``module`` (a path: its name goes into the module's header)."""
    # names that the module's text holds: only what cannot end a string or a comment
    names = {"object file": os.path.basename(os.fspath(path)), "module": os.path.basename(module)}
    for what, name in names.items():
        if not _SAFE_FILE.match(name):
            raise UsageError(
                f"{what} name {name!r}: the module's text holds it: letters, digits, _ . + - only"
            )
    for k, v in (explicit or {}).items():
        if not (k.isidentifier() and (v is None or v.isidentifier())):
            raise UsageError(f"event {k}={v}: a map and a struct are C names")
    with BPFObject(path) as obj:
        m = model(obj, explicit)
    return source(m, os.path.basename(os.fspath(path)), os.path.basename(module), explicit or {})


def source(m: dict[str, Any], object_file: str, module_file: str, explicit: dict[str, str | None]) -> str:
    """The module's text: deterministic (the model's order, which is the object's)."""
    event_flags = "".join(f" --event {k}={v}" for k, v in sorted(explicit.items()) if v)
    out = [
        f'"""Generated by pyrunq skel from {object_file}: do not edit.',
        "",
        f"Regenerate with: pyrunq skel {object_file} -o {module_file}{event_flags}",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if m["enums"]:
        out.append("import enum")
    out += [
        "import os",
        "",
        f"from pyrunq.bpf import BPFObject, {'Program, ' if m['programs'] else ''}Record",
        "from pyrunq.bpf import skel as _skel",
        "",
    ]
    out += [f"OBJECT = {_q(object_file)}", f"DIGEST = {_q(model_digest(m))}"]
    for name, values in m["enums"].items():
        out += ["", "", f"class {class_name(name)}(enum.IntEnum):", f'    """enum {name}"""', ""]
        out += [f"    {attribute(k)} = {v}" for k, v in values]
    for name, struct in m["structs"].items():
        out += ["", "", "@_skel.record", f"class {class_name(name)}(Record):"]
        out += [f'    """struct {name} ({struct["size"]} bytes)"""', "", "    __slots__ = ()"]
        out += _tuple_lines("    _fields = ", [f[0] for f in struct["fields"]])
        out += [
            f"    {py}: {annotation}{_shadows(py)}"
            for py, annotation, _, _ in struct["fields"]
            if not _private(py)  # a class body would mangle it: it stays an attribute, undeclared
        ]
    for section, variables in m["globals"].items():
        members = [(n, f"_skel.Var[{a}] = _skel.Var({_q(n)})") for n, a in variables]
        out += _class(
            _SECTION_CLASSES[section], "_skel.Globals", f"{section}: {_SECTION_DOCS[section]}", members
        )
    out += _class(
        "Maps", "_skel.Maps", "The maps.", [(n, f"_skel.TypedMap[{k}, {v}]") for n, k, v in m["maps"]]
    )
    out += _class("Progs", "_skel.Programs", "The programs.", [(n, "Program") for n, _ in m["programs"]])
    out += _class(
        "Events", "_skel.EventMaps", "The event maps.", [(n, f"_skel.Events[{a}]") for n, _, a in m["events"]]
    )
    out += ["", ""]
    out += _dict_lines(
        "EVENTS: dict[str, str | None] = ", [(_q(n), _q(s) if s else "None") for n, s, _ in m["events"]]
    )
    out += _dict_lines("RECORDS: dict[str, type[Record]] = ", [(_q(n), class_name(n)) for n in m["structs"]])
    out += [
        "",
        "",
        "class Skeleton(_skel.Skeleton):",
        f'    """{object_file}: globals per section, maps, programs, event readers."""',
        "",
        "    rodata: Rodata",
        "    bss: Bss",
        "    data: Data",
        "    maps: Maps",
        "    progs: Progs",
        "    events: Events",
        "",
        "    def __init__(self, obj: BPFObject) -> None:",
        "        super().__init__(obj)",
        "        self.rodata = Rodata(obj.rodata)",
        "        self.bss = Bss(obj.bss)",
        "        self.data = Data(obj.data)",
        "        self.maps = Maps(obj)",
        "        self.progs = Progs(obj)",
        "        self.events = Events(obj, EVENTS)",
        "",
        "",
        "def open(path: str | os.PathLike[str] | None = None) -> Skeleton:",
        f'    """The skeleton over {object_file} (beside this module, or ``path``),',
        "    opened, not loaded; StaleSkeleton if its types are not those this",
        '    module was generated from."""',
        "    return Skeleton(_skel.open_object(__file__, OBJECT, DIGEST, RECORDS, EVENTS, path))",
    ]
    return "\n".join(out) + "\n"


def _private(name: str) -> bool:
    return name.startswith("__") and not name.endswith("__")


def _shadows(field: str) -> str:
    """A comment for a member named as a tuple method (``count``, ``index``):
    the record's attribute is the member, which mypy must be told."""
    return f"  # type: ignore[assignment]  # the member, not tuple.{field}" if hasattr(tuple, field) else ""


def _q(text: str) -> str:
    """A str literal as ruff format writes it (double quotes)."""
    return json.dumps(text)


def _class(name: str, base: str, doc: str, members: list[tuple[str, str]]) -> list[str]:
    out = ["", "", f"class {name}({base}):", f'    """{doc}"""']
    if members:
        out.append("")
    return out + [line for n, a in members for line in _member_lines(f"    {attribute(n)}: {a}")]


def _member_lines(line: str) -> list[str]:
    """A class member's line, its call's argument on a line of its own when
    it is longer than ruff's 88 (``x: T = f(\n        "arg"\n    )``), as
    ruff format writes it: generated code must pass ``ruff format --check``."""
    head, sep, call = line.partition(" = ")
    if len(line) <= 88 or not sep or not call.endswith(")") or "(" not in call:
        return [line]
    function, _, argument = call[:-1].partition("(")
    return [f"{head} = {function}(", f"        {argument}", "    )"]


def _tuple_lines(prefix: str, items: list[str]) -> list[str]:
    one = prefix + "(" + ", ".join(_q(i) for i in items) + ("," if len(items) == 1 else "") + ")"
    if len(one) <= 88:
        return [one]
    return [prefix + "("] + [f"        {_q(i)}," for i in items] + ["    )"]


def _dict_lines(prefix: str, pairs: list[tuple[str, str]]) -> list[str]:
    one = prefix + "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    if len(one) <= 88:
        return [one]
    return [prefix + "{"] + [f"    {k}: {v}," for k, v in pairs] + ["}"]
