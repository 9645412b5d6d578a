"""Reading a YAML file a user hands pyrunq (the exporter's web configuration,
ebpf_exporter's and Inspektor Gadget's YAML beside an object): the document,
or one line saying what is wrong and where."""

from __future__ import annotations


def read(path: str, error: type[Exception], name: str | None = None):
    """The document in ``path``, parsed safely (plain data, no objects);
    ``error(line)`` when the file cannot be read or is not YAML, the line
    starting with ``name`` (default: the path)."""
    import yaml  # type: ignore[import-untyped]

    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise error(f"{name or path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{name or path}: not valid YAML{at}: {problem}") from None
