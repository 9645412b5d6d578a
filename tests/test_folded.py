"""The folded stack format that flame graph tools read."""

from pyrunq import folded


def test_equal_stacks_are_summed_and_sorted():
    got = folded.lines([(["main", "b"], 2), (["main", "a"], 1), (["main", "b"], 3)])
    assert got == ["main;a 1", "main;b 5"]


def test_a_name_cannot_break_a_line_or_add_a_frame():
    got = folded.lines([(["evil;x\nmain 99", "leaf"], 1)])
    assert got == ["evil:x?main 99;leaf 1"]
    assert got[0].rsplit(" ", 1)[1] == "1"


def test_an_empty_stack_keeps_its_weight():
    assert folded.lines([([], 4)]) == ["[empty] 4"]
