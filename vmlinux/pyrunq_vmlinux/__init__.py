"""pyrunq-vmlinux: the vmlinux.h of each architecture pyrunq builds for
(``x86/vmlinux.h``, ``arm64/vmlinux.h``), for building BPF programs of one's
own with pyrunq's build hook (``pyrunq.hatch``). A build-time dependency only:
nothing reads them at run time, which is why pyrunq's own wheel leaves them out."""

import os


def directory() -> str:
    """The directory holding ``<arch>/vmlinux.h``."""
    return os.path.dirname(os.path.abspath(__file__))
