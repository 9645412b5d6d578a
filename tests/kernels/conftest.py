"""The kernel matrix boots other kernels under qemu for minutes: it is opt-in.
test_matrix.py is collected only with PYRUNQ_MATRIX=1, so `./dev test` (all of
tests/) leaves it out. guest_checks.py is never collected on the host: it is
not a test_*.py file, and test_matrix.py names it to the pytest in the guest."""

import os

if os.environ.get("PYRUNQ_MATRIX") != "1":
    collect_ignore = ["test_matrix.py"]
