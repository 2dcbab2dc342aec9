"""One renderer: every place that shows conversation items (a cell's answer, the panel's
exports, a recording's transcript, the history table) labels and escapes them the same
way, through ``render/items.py``, with hostile text made inert everywhere."""

from __future__ import annotations

import json

from markdown_it import MarkdownIt

from rt_notebook.client.responses import ItemSnapshot
from rt_notebook.frontends.transcript import to_markdown
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.render import items as render
from rt_notebook.render.export import item_markdown, transcript_cells, transcript_markdown
from rt_notebook.render.markdown import safe_markdown

XSS = '<img src=x onerror="window.__rt_xss=1"> [x](javascript:alert(1))'


def snapshot(item_id, type="message", role="assistant", **fields):
    values = {
        "status": "completed",
        "text": "",
        "call_id": None,
        "name": None,
        "arguments": None,
        "output": None,
        "response_id": "resp_1" if role == "assistant" else None,
    }
    values.update(fields)
    return ItemSnapshot(id=item_id, type=type, role=role, **values)


ITEMS = [
    snapshot("u1", role="user", text=f"Hi {XSS}\nsecond line"),
    snapshot("c1", type="function_call", role=None, name="look`up", arguments='{"q": "<b>"}'),
    snapshot("o1", type="function_call_output", role=None, call_id="call_1", output=XSS),
    snapshot("a1", text=f"Done {XSS}"),
]


def recorded(items):
    """The same items replayed into the mirror a recording's transcript reads."""
    conversation = Conversation()
    previous = None
    for item in items:
        data = {"id": item.id, "type": item.type, "status": "completed"}
        if item.type == "message":
            kind = "input_text" if item.role == "user" else "output_text"
            data |= {"role": item.role, "content": [{"type": kind, "text": item.text}]}
        elif item.type == "function_call":
            data |= {"name": item.name, "call_id": "call_1", "arguments": item.arguments}
        else:
            data |= {"call_id": item.call_id, "output": item.output}
        conversation.apply(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": data}
        )
        previous = item.id
    return conversation


def test_transcripts_of_the_panel_and_of_a_recording_read_the_same():
    from_panel = transcript_markdown(ITEMS)
    from_recording = to_markdown(recorded(ITEMS))
    assert from_panel == from_recording
    assert from_panel.startswith("**You:**\n\nHi &lt;img")
    assert "**Assistant:**\n\nDone " in from_panel
    assert "**Function call** <code>look&#96;up</code>" in from_panel
    assert '```json\n{\n  "q": "<b>"\n}\n```' in from_panel  # code keeps its characters
    assert "**Function output** (`call_1`)" in from_panel


def test_a_cells_answer_and_the_exported_cell_output_read_the_same():
    answer = [ITEMS[1], ITEMS[3]]
    cell = render.response_markdown(answer)
    assert cell == f"{render.item_body(ITEMS[1])}\n\n{safe_markdown(ITEMS[3].text)}"
    cells = transcript_cells([ITEMS[0], *answer])
    assert cells[0].outputs[0]["data"]["text/markdown"] == cell
    assert item_markdown(ITEMS[1]) == render.item_body(ITEMS[1])


def test_no_place_lets_raw_html_or_a_script_link_through():
    rendered = [
        transcript_markdown(ITEMS),
        to_markdown(recorded(ITEMS)),
        render.response_markdown(ITEMS),
        *(render.item_markdown(item) for item in ITEMS),
    ]
    # Read by a permissive parser (raw HTML on), as JupyterLab reads trusted Markdown.
    permissive = MarkdownIt("commonmark", {"html": True})
    for markdown in rendered:
        html = permissive.render(markdown)
        assert "<img" not in html
        assert 'href="javascript:' not in html
        assert "&lt;" in html  # shown as text, not dropped


def test_labels_come_from_one_table():
    assert [render.item_label(item) for item in ITEMS] == [
        "You",
        "Function call look`up",
        "Function output call_1",
        "Assistant",
    ]
    assert render.role_label("system") == "System"
    assert render.role_label("narrator") == "narrator"
    odd = snapshot("x", role="<b>narrator</b>", text="t")
    assert render.item_markdown(odd).startswith("**&lt;b>narrator&lt;/b>:**")


def test_summaries_are_one_line_and_cut():
    call = ITEMS[1]
    assert render.item_summary(call) == 'look`up({"q": "<b>"}) None'
    long = snapshot("l", text="word " * 40 + "\nend")
    summary = render.item_summary(long, limit=30)
    assert len(summary) == 30
    assert summary.endswith("…")
    assert "\n" not in summary


def test_arguments_that_are_not_json_yet_stay_as_they_are():
    partial = snapshot("c", type="function_call", role=None, name="f", arguments='{"q": "ab')
    assert '{"q": "ab' in render.item_body(partial)
    assert json.loads(render.pretty_json('{"a":1}')) == {"a": 1}


def test_a_huge_results_repr_is_a_bounded_drawing_and_a_short_ones_markdown_only():
    """A ResponseResult shown as a cell's value: past the Markdown limit front ends get a
    bounded text/html to draw instead of rendering megabytes of Markdown."""
    from rt_notebook.client.responses import ResponseResult

    def result(text):
        return ResponseResult(
            id="resp_1",
            status="completed",
            status_details=None,
            usage=None,
            text=text,
            items=(snapshot("item_1", text=text),),
            metadata=None,
            model="m",
            out_of_band=False,
            time_to_first_delta=None,
            elapsed=0.0,
        )

    short = result(f"short *answer* {XSS}")
    assert short._repr_html_() is None
    assert short._repr_markdown_() == safe_markdown(f"short *answer* {XSS}")
    huge_text = "\n\n".join(
        f"- [link {n}](https://example.org/{n}) `code_{n}()`" for n in range(6_000)
    )
    drawing = result(huge_text + f"\n\n{XSS}")._repr_html_()
    assert drawing is not None
    assert "plain text" in drawing
    assert "code_5999()" not in drawing.split("<pre", 1)[0]  # the end is not rendered
    assert "<img" not in drawing
    assert "javascript:" not in drawing.split("<pre", 1)[0]
