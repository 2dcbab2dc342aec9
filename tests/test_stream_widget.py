"""The streaming answer's widget without a front end: what its open carries (each answer
pays it) and the comm ids every streaming message names."""

from __future__ import annotations

import json
import re

from rt_notebook.widgets.stream import AnswerStream, short_model_id


def test_model_ids_are_unique_and_short():
    ids = [short_model_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)
    # A base-36 counter and two random characters: 5 characters up to 46,655 answers.
    assert all(re.fullmatch(r"[0-9a-z]{3,5}", i) for i in ids)


def test_the_open_holds_only_what_the_page_reads():
    stream = AnswerStream(model_id=short_model_id(), key="k1", waiting="waiting for m…")
    try:
        state = stream.get_state()
        assert set(state) == {
            "_esm",  # the stub module, which waits for the hub's renderer
            "_model_module",
            "_model_module_version",
            "_model_name",
            "_view_module",
            "_view_module_version",
            "_view_name",
            "key",
            "link",
            "plain",
            "waiting",
        }
        assert "\n" not in state["_esm"]
        assert '"' not in state["_esm"]  # a quote costs two bytes in JSON
        assert len(json.dumps(state, separators=(",", ":"))) < 600
    finally:
        stream.close()


def test_ended_answers_keep_at_most_kept_open_widgets_for_the_next():
    """end_stream keeps an open widget (up to KEPT), closes the rest, and keeps none that
    was closed while its answer streamed; a kept one comes back with the new answer's
    traits."""
    from rt_notebook.widgets import stream as module

    saved = list(module._idle)
    module._idle.clear()
    made = [AnswerStream(model_id=short_model_id(), key=f"k{n}") for n in range(module.KEPT + 2)]
    try:
        made[0].close()  # closed meanwhile (Widget.close_all())
        for widget in made:
            module.end_stream(widget)
        assert module._idle == made[1 : module.KEPT + 1]
        assert all(w.comm is None for w in made[module.KEPT + 1 :])  # past KEPT: closed
        again = module._reused(waiting="waiting for m2…", link="#rt-events-a-b", plain=True)
        assert again is made[module.KEPT]  # the newest kept
        assert (again.waiting, again.link, again.plain) == (
            "waiting for m2…",
            "#rt-events-a-b",
            True,
        )
    finally:
        for widget in made:
            widget.close()
        module._idle[:] = saved
