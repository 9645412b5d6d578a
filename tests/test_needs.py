"""needs.need: a missing external program skips the test that needs it,
saying which, and fails it where everything must run (PYRUNQ_REQUIRE_BPF=1)."""

import shutil

import pytest

import needs


def test_a_missing_program_skips_or_under_require_bpf_fails(monkeypatch):
    monkeypatch.setattr(needs, "REQUIRE_BPF", False)
    with pytest.raises(pytest.skip.Exception, match="needs /nonexistent/tool or nope-tool"):
        needs.need("/nonexistent/tool", "nope-tool")
    monkeypatch.setattr(needs, "REQUIRE_BPF", True)
    with pytest.raises(pytest.fail.Exception, match="PYRUNQ_REQUIRE_BPF=1 but needs /nonexistent/tool"):
        needs.need("/nonexistent/tool")


def test_the_first_program_found_is_the_one_used():
    assert needs.need("/nonexistent/tool", "sh", "true") == shutil.which("sh")
