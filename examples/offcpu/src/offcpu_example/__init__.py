"""Off-CPU time per thread of one process, on pyrunq: bpf/offcpu.bpf.c,
its skeleton (``offcpu_skel``, written by pyrunq's build hook) and the
command ``offcpu-example PID``."""
