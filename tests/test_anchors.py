"""What re-running a ``%%realtime`` cell does to the conversation, planned on plain data
(:func:`rt_notebook.frontends.anchors.plan_replacement`): which items go, where the new ones go."""

from __future__ import annotations

import types

from rt_notebook.frontends.anchors import CellAnchors, Replacement, plan_replacement


def test_a_cell_that_never_ran_deletes_nothing():
    assert plan_replacement(("a", "b"), [], [], None) == Replacement((), None)
    assert plan_replacement(("a", "b"), [], [], "a") == Replacement((), "a")


def test_the_last_turn_is_replaced_at_the_end():
    plan = plan_replacement(("a", "q", "r"), ["q", "r"], [], None)
    assert plan == Replacement(("q", "r"), None)


def test_a_turn_in_the_middle_is_replaced_where_it_stood():
    plan = plan_replacement(("a", "q", "r", "later"), ["q", "r"], [], None)
    assert plan == Replacement(("q", "r"), "a")
    first = plan_replacement(("q", "r", "later"), ["q", "r"], [], None)
    assert first.after == "root"


def test_an_after_the_cell_names_wins():
    plan = plan_replacement(("a", "q", "r", "later"), ["q", "r"], [], "later")
    assert plan == Replacement(("q", "r"), "later")


def test_outputs_answering_the_cells_calls_go_with_them():
    """The cell asked (q) and the model called (call); another cell answered it (out) and
    got an answer (ans). Re-running the asking cell deletes the output too: an output whose
    call is gone is an orphan. The answering cell's own answer stays (its re-run replaces it,
    and its new output then goes where the old one stood: right after the new call)."""
    order = ("a", "q", "call", "out", "ans", "later")
    plan = plan_replacement(order, ["q", "call"], ["out"], None)
    assert plan.delete == ("q", "call", "out")
    assert plan.after == "a"
    assert plan.others == ("out",)
    rest = tuple(i for i in order if i not in plan.delete)
    assert rest == ("a", "ans", "later")
    # Re-run in place: the new question and call stand after "a"; the answering cell runs
    # again: its old answer (still there) marks where its new output goes.
    replaced = ("a", "q2", "call2", "ans", "later")
    again = plan_replacement(replaced, ["out", "ans"], [], None)
    assert again == Replacement(("ans",), "call2")


def test_its_own_outputs_are_not_reported_as_another_cells():
    order = ("q", "call", "out", "ans", "later")
    plan = plan_replacement(order, ["q", "call", "out", "ans"], ["out"], None)
    assert plan.delete == ("q", "call", "out", "ans")
    assert plan.others == ()
    assert plan.after == "root"


def test_outputs_at_the_end_still_mean_appending():
    plan = plan_replacement(("a", "q", "call", "out"), ["q", "call"], ["out"], None)
    assert plan.after is None
    assert plan.delete == ("q", "call", "out")


def test_a_cell_whose_items_are_all_gone_says_so():
    plan = plan_replacement(("a", "b"), ["gone", "also-gone"], [], None)
    assert plan == Replacement((), None, vacated=True)


def _shell(parent):
    return types.SimpleNamespace(kernel=types.SimpleNamespace(get_parent=lambda: parent))


def test_a_cell_is_known_by_its_id_else_by_the_code_the_kernel_received():
    by_id = _shell({"metadata": {"cellId": "c1"}, "content": {"code": "x"}})
    assert CellAnchors.cell_key(by_id, "--a", "b") == "id:c1"
    # nbclient and papermill send no cell id: IPython expands {name} on the magic's line,
    # so the key is the cell as received, which a new value of the name does not change.
    code = "%%realtime --function-output {call_id}\n{weather}"  # as nbclient sends it
    first = CellAnchors.cell_key(
        _shell({"metadata": {}, "content": {"code": code}}),
        "--function-output call_1",
        "{weather}\n",
    )
    second = CellAnchors.cell_key(
        _shell({"metadata": {}, "content": {"code": code}}),
        "--function-output call_2",
        "{weather}\n",
    )
    assert first == second
    other = CellAnchors.cell_key(
        _shell({"metadata": {}, "content": {"code": code + " "}}), "--x", "{weather}\n"
    )
    assert other != first
    # Plain IPython (no kernel): the line and the cell.
    plain = types.SimpleNamespace()
    assert CellAnchors.cell_key(plain, "--a", "b") != CellAnchors.cell_key(plain, "--b", "b")
