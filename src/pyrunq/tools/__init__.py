"""One module per tool: a class that owns one BPF object and turns its maps and events into values."""
