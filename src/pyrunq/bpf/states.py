"""The lifecycle states of a BPFObject, which its programs and globals check."""

OPEN, LOADED, CLOSED = "open", "loaded", "closed"
