"""Hostile text through a server into JupyterLab: no script runs, no request leaves 127.0.0.1.

One notebook, one kernel. The kernel talks to the embedded server (scripted responder,
echo otherwise) through :class:`hostile.HostileProxy`, which gives every assistant item a
hostile role, every server-made item and call id a hostile suffix, and answers one
message with an error event whose every field is hostile. Each payload class (script
tags, event handlers, ``javascript:``/``data:`` links, remote images, iframes, svg onload,
math, fence breaks, separator tricks) reaches ``%%realtime`` cells, the chat panel, an
approval prompt, tool bubbles, the history table and a transcript.

Every frame starts with ``window.alert`` hooked and a sentinel that any executed payload
would change; Playwright records every request. The control test shows the same check
does catch a script when unsanitized Markdown is rendered the same way.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

from rt_notebook.render.markdown import safe_markdown
from tests.browser import lab_page
from tests.browser.lab_page import cell, expect, goto_notebook, page_timeout_ms, write_notebook
from tests.browser.transfer import transfer_file
from tests.timing import within

sys.path.insert(0, str(Path(__file__).parent))
import hostile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(within(420))]

NOTEBOOK = "security.ipynb"
SETUP = f"""%load_ext rt_notebook
import sys; sys.path.insert(0, '.')
from pathlib import Path
import hostile, rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.001, responder="scripted",
                        script=hostile.write_script(Path("hostile_script.json"))).start()
proxy = hostile.HostileProxy(server).start()
s = rt_notebook.connect(base_url=proxy.base_url, websocket_base_url=proxy.websocket_base_url,
                        api_key=server.token)

@s.tool(approval=True)
def lookup(query: str) -> str:
    '''Look something up.'''
    return hostile.TOOL_OUTPUT

P = hostile.messages()
assert len(P) == {len(hostile.GROUPS)}"""
GROUP_CELLS = [f"%%realtime\n{{P[{index}]}}" for index in range(len(hostile.GROUPS))]
CELLS = [
    SETUP,
    "%realtime chat",
    *GROUP_CELLS,
    "%%realtime\ncall lookup",
    "%%realtime\ncall hostile",
    "%%realtime\nINJECT-ERROR",
    "%realtime history",
    "rt_notebook.ChatPanel(s).write_transcript()",
]
FIRST_GROUP = 2
APPROVAL = FIRST_GROUP + len(GROUP_CELLS)
MANUAL, ERROR, HISTORY, TRANSCRIPT = APPROVAL + 1, APPROVAL + 2, APPROVAL + 3, APPROVAL + 4
INLINE = ".jp-Notebook .rt-chat"

INIT = """
window.__rt_sentinel = 0;
window.__rt_alerts = 0;
window.alert = window.confirm = window.prompt = () => { window.__rt_alerts += 1; };
"""

# Everything in outputs and panels that could run code or fetch something.
AUDIT = r"""(selector) => {
  const bad = [];
  const banned = new Set(['script', 'img', 'image', 'iframe', 'frame', 'object', 'embed',
    'video', 'audio', 'source', 'style', 'link', 'base', 'meta', 'details', 'svg', 'form',
    'canvas', 'picture']);
  // A thumbnail of an image the user pasted into the panel: a canvas its widget's code
  // draws from the page's own copy of the bytes (thumbs.js), in the composer or the user's
  // bubble, with no URL of any kind. Model and server text can never make one.
  const thumbAttributes = new Set(['class', 'width', 'height', 'role', 'aria-label',
    'data-drawn']);
  const urlAttributes = new Set(['href', 'xlink:href', 'action', 'formaction', 'data',
    'poster', 'background', 'src', 'srcset', 'srcdoc']);
  for (const root of document.querySelectorAll(selector)) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      // The microphone's and player's own icons: drawn by their widget's code inside its
      // control (model text never renders there), plain shapes only.
      const ownIcon = tag === 'svg' && el.getAttribute('class') === 'rt-notebook-icon'
        && el.closest('.rt-notebook-mic, .rt-notebook-player') !== null
        && [...el.querySelectorAll('*')].every(
          (c) => ['rect', 'path', 'circle', 'line', 'polyline', 'polygon']
            .includes(c.tagName.toLowerCase()));
      const ownThumb = tag === 'canvas' && el.getAttribute('class') === 'rt-chat-thumb'
        && el.closest('.rt-chat-user .rt-chat-images, .rt-chat-attachments') !== null
        && el.childElementCount === 0
        && [...el.attributes].every((a) => thumbAttributes.has(a.name.toLowerCase()));
      if (banned.has(tag) && !ownIcon && !ownThumb) {
        bad.push(`<${tag}> ${el.outerHTML.slice(0, 160)}`);
      }
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        if (name.startsWith('on')) { bad.push(`${name} on <${tag}>`); }
        if (urlAttributes.has(name) && name !== 'href') { bad.push(`${name} on <${tag}>`); }
        const scheme = /^[\s\x00-\x20]*(javascript|vbscript|data|blob)\s*:/i;
        if (urlAttributes.has(name) && scheme.test(attr.value)) {
          bad.push(`${name}=${attr.value.slice(0, 80)} on <${tag}>`);
        }
        if (name === 'style' && /url\s*\(/i.test(attr.value)) { bad.push(`style url on <${tag}>`); }
      }
    }
  }
  return bad;
}"""

# Renders Markdown exactly as a trusted output (JupyterLab's own renderer, attached to
# the page so any image would load), waits for it, and returns nothing.
RENDER_TRUSTED = """async ([texts, marker]) => {
  const rendermime = window.jupyterapp.shell.currentWidget.content.rendermime;
  const host = document.createElement('div');
  host.className = marker;
  document.body.appendChild(host);
  for (const text of texts) {
    const renderer = rendermime.createRenderer('text/markdown');
    host.appendChild(renderer.node);
    await renderer.renderModel({
      data: {'text/markdown': text}, metadata: {}, trusted: true, setData: () => {},
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 500));  // let handlers fire
}"""


@pytest.fixture(scope="module")
def page(lab, browser, artifacts):
    shutil.copy(Path(__file__).parent / "hostile.py", lab.root / "hostile.py")
    write_notebook(lab.root, NOTEBOOK, CELLS)
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(INIT)
    requests: list[str] = []
    dialogs: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_default_timeout(page_timeout_ms(90))
    goto_notebook(page, lab.notebook_url(NOTEBOOK))
    page.requests, page.dialogs = requests, dialogs  # type: ignore[attr-defined]
    yield page
    page.screenshot(path=str(artifacts / "security-99-end.png"), full_page=True)
    context.close()


def run_cell(page, index: int, wait: bool = True) -> None:
    # Hostile cells may show errors on purpose: each test checks the outputs it expects.
    lab_page.run_cell(page, index, wait, errors_ok=True)


def leaks(page) -> list[str]:
    return [
        url
        for url in page.requests
        if not url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))
    ]


def assert_nothing_ran_or_left(page, selector: str) -> None:
    assert page.evaluate("() => window.__rt_sentinel") == 0
    assert page.evaluate("() => window.__rt_alerts") == 0
    assert page.dialogs == []
    assert leaks(page) == []
    assert not [u for u in page.requests if "203.0.113.7" in u]
    assert page.evaluate(AUDIT, selector) == []


def test_hostile_answers_in_cells_panel_prompts_and_tools(page, artifacts):
    run_cell(page, 0)
    setup_output = cell(page, 0).locator(".jp-OutputArea").inner_text()
    assert "Traceback" not in setup_output
    run_cell(page, 1)
    page.locator(INLINE).wait_for()
    for index in range(FIRST_GROUP, APPROVAL):
        run_cell(page, index)
        expect(cell(page, index).locator(".jp-RenderedMarkdown").last).to_contain_text("Echo")
    # The payloads arrived and are shown as text, not dropped.
    html_cell = cell(page, FIRST_GROUP).locator(".jp-RenderedMarkdown").last
    expect(html_cell).to_contain_text("<script>window.__rt_sentinel=1</script>")
    images_cell = cell(page, FIRST_GROUP + list(hostile.GROUPS).index("images"))
    expect(images_cell.locator("a[href='http://203.0.113.7/md.png']")).to_have_count(1)

    # An approval prompt for a call with hostile arguments; approve it in the page.
    run_cell(page, APPROVAL, wait=False)
    approve = cell(page, APPROVAL).get_by_role("button", name="Approve")
    approve.click()
    expect(cell(page, APPROVAL).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
    expect(cell(page, APPROVAL).locator(".jp-OutputArea")).to_contain_text("lookup returned")
    # A call to a hostile, unregistered name with a hostile call id.
    run_cell(page, MANUAL)
    manual = cell(page, MANUAL).locator(".jp-OutputArea")
    expect(manual).to_contain_text(re.compile("not a registered tool|unknown tool"))
    expect(manual).to_contain_text("onerror=")
    # A server error whose every field is hostile.
    run_cell(page, ERROR)
    expect(cell(page, ERROR).locator(".jp-OutputArea")).to_contain_text("error.png")
    run_cell(page, HISTORY)
    run_cell(page, TRANSCRIPT)
    expect(cell(page, TRANSCRIPT).locator(".jp-RenderedMarkdown")).to_contain_text("lookup")

    # The panel saw it all: a bubble with the hostile role, tool bubbles, the error.
    panel = page.locator(INLINE)
    expect(panel.locator(".rt-chat-function-call")).to_have_count(2)
    expect(panel.locator(".rt-chat-function-output")).to_have_count(2)
    expect(panel.locator(".rt-chat-error")).to_have_count(1)
    roles = panel.locator(".rt-chat-other").first
    assert roles.get_attribute("data-role") == hostile.HOSTILE_ROLE
    assert hostile.HOSTILE_SUFFIX in (roles.get_attribute("data-item-id") or "")

    # And the panel's own input: every message again, typed into the composer.
    box = panel.locator(".rt-chat-input")
    for message in hostile.messages()[:3]:
        box.fill(message)
        box.press("Enter")
        expect(box).to_have_value("")
    expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")
    # The one exception: an image the user pasted shows as a thumbnail (a canvas), only in
    # that user's bubble, however hostile everything around it is.
    pasted = Image.new("RGB", (30, 20), (0, 128, 0))
    buffer = io.BytesIO()
    pasted.save(buffer, format="PNG")
    png = buffer.getvalue()
    transfer_file(page, f"{INLINE} .rt-chat-input", png, "image/png", "p.png", "paste")
    box.fill(hostile.messages()[0])
    box.press("Enter")
    expect(panel.locator(".rt-chat-bubble .rt-chat-thumb")).to_have_count(1)
    expect(panel.locator(".rt-chat-user .rt-chat-thumb")).to_have_attribute("data-drawn", "yes")
    expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")
    assert page.locator(".jp-OutputArea-output canvas, .rt-chat canvas").count() == 1
    page.screenshot(path=str(artifacts / "security-01-all-payloads.png"), full_page=True)
    assert_nothing_ran_or_left(page, ".jp-OutputArea-output, .rt-chat")


def test_sanitized_fuzz_through_jupyterlabs_own_renderer(page):
    """Seeded hostile mixtures, sanitized, rendered by JupyterLab as trusted Markdown."""
    rng = random.Random(20261129)
    pool = [p for group in hostile.GROUPS.values() for p in group]
    atoms = [*pool, *hostile.SEPARATORS, "\n", "\n\n", "```", "~~~", "`", "    ", "- ", "> ", "!["]
    texts = ["".join(rng.choice(atoms) for _ in range(rng.randint(1, 12))) for _ in range(400)]
    page.evaluate(RENDER_TRUSTED, [[safe_markdown(t) for t in texts], "rt-fuzz"])
    assert_nothing_ran_or_left(page, ".rt-fuzz")


def test_control_unsanitized_markdown_does_run_in_the_same_check(page):
    """The check can fail: raw Markdown rendered the same way runs its handler."""
    page.evaluate(RENDER_TRUSTED, [['<img src=x onerror="window.__rt_control=1">'], "rt-ctl"])
    page.wait_for_function("() => window.__rt_control === 1")
    assert page.evaluate(AUDIT, ".rt-ctl")
    page.evaluate("() => document.querySelector('.rt-ctl').remove()")


def test_control_a_canvas_outside_a_users_images_or_with_a_url_is_caught(page):
    """The thumbnail exception is exactly one shape: elsewhere, or with more, it is caught."""
    page.evaluate(
        """() => {
      const host = document.createElement('div');
      host.className = 'rt-ctl-thumb';
      host.innerHTML = '<div class="rt-chat-assistant"><div class="rt-chat-images">'
        + '<canvas class="rt-chat-thumb"></canvas></div></div>'
        + '<div class="rt-chat-user"><div class="rt-chat-images">'
        + '<canvas class="rt-chat-thumb" data-src="blob:http://127.0.0.1/x"></canvas>'
        + '<canvas class="rt-chat-thumb"></canvas></div></div>';
      document.body.appendChild(host);
    }"""
    )
    bad = page.evaluate(AUDIT, ".rt-ctl-thumb")
    page.evaluate("() => document.querySelector('.rt-ctl-thumb').remove()")
    assert len([b for b in bad if b.startswith("<canvas>")]) == 2  # the third one is ours
