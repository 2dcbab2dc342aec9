"""Spoken answers in a real kernel: the saved notebook keeps exactly the PCM that streamed."""

from __future__ import annotations

import base64
import re

import nbformat
from nbclient import NotebookClient

from rt_notebook.client.audio import wav_pcm
from tests.timing import PROCESS_WAIT

SETUP = """\
%load_ext rt_notebook
import base64, os, rt_notebook
session = rt_notebook.connect(websocket_base_url=os.environ['RT_TEST_URL'],
                              api_key=os.environ['RT_TEST_KEY'])
streamed = []
def _collect(event):
    if event.get('type') == 'response.output_audio.delta':
        streamed.append(base64.b64decode(event['delta']))
session.listen(_collect)
"""

SAVE_STREAMED = "open(os.environ['RT_TEST_PCM'], 'wb').write(b''.join(streamed))"


def _run(tmp_path, monkeypatch, cells):
    from rt_notebook.server import EmbeddedServer

    pcm_path = tmp_path / "streamed.pcm"
    with EmbeddedServer(pace=0.005) as server:
        monkeypatch.setenv("RT_TEST_URL", server.websocket_base_url)
        monkeypatch.setenv("RT_TEST_KEY", server.token)
        monkeypatch.setenv("RT_TEST_PCM", str(pcm_path))
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in [SETUP, *cells]]
        )
        NotebookClient(notebook, timeout=PROCESS_WAIT, kernel_name="python3").execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    return nbformat.read(path, as_version=4), pcm_path.read_bytes()


def _data_url_wavs(outputs) -> list[bytes]:
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    return [
        base64.b64decode(match)
        for match in re.findall(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', html)
    ]


def test_saved_notebook_audio_is_the_streamed_pcm_byte_for_byte(tmp_path, monkeypatch):
    question = "%%realtime --modalities audio --out spoken\nPlease say these seven words aloud."
    saved, streamed = _run(tmp_path, monkeypatch, [question, SAVE_STREAMED])
    outputs = saved.cells[1].outputs
    assert "<audio" in str(outputs)
    wavs = _data_url_wavs(outputs)
    assert len(wavs) == 1, outputs
    pcm, rate = wav_pcm(wavs[0])
    assert rate == 24_000
    assert len(streamed) >= 5 * 2400  # several 50 ms beeps: a real answer, not an empty one
    assert pcm == streamed
    # The transcript is kept next to it, and no live widget is left in the saved cell.
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("seven words" in text for text in markdown)
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_audio_over_the_cap_keeps_the_transcript_and_a_note(tmp_path, monkeypatch):
    cells = [
        "%config RealtimeMagics.audio_cap_seconds = 0.1",
        "%%realtime --modalities audio\nA longer answer than the cap allows.",
        SAVE_STREAMED,
    ]
    saved, streamed = _run(tmp_path, monkeypatch, cells)
    outputs = saved.cells[2].outputs
    assert len(streamed) > 0.1 * 48_000
    assert _data_url_wavs(outputs) == []
    text = str(outputs)
    assert "audio not kept in the notebook" in text
    assert "audio_cap_seconds" in text
    assert "longer answer" in text  # the transcript


def test_text_answers_get_no_player(tmp_path, monkeypatch):
    saved, streamed = _run(tmp_path, monkeypatch, ["%%realtime\nJust text.", SAVE_STREAMED])
    assert streamed == b""
    assert "<audio" not in str(saved.cells[1].outputs)


def test_a_background_cell_keeps_its_audio_too(tmp_path, monkeypatch):
    """The background thread updates the first cell's displays under that cell's parent
    header, after the cell went idle. nbclient drops messages of a cell it is no longer
    running, so this test reads IOPub itself and applies every display and update by its
    display id, whatever the parent, as JupyterLab does."""
    from rt_notebook.server import EmbeddedServer
    from tests.kernel.harness import Kernel

    shown: dict[str, dict] = {}  # display id -> the data a front end shows for it

    def apply(message) -> None:
        if message["msg_type"] in ("display_data", "update_display_data"):
            display_id = message["content"].get("transient", {}).get("display_id")
            if display_id:
                shown[display_id] = message["content"]["data"]

    pcm_path = tmp_path / "streamed.pcm"
    with EmbeddedServer(pace=0.005) as server:
        monkeypatch.setenv("RT_TEST_URL", server.websocket_base_url)
        monkeypatch.setenv("RT_TEST_KEY", server.token)
        monkeypatch.setenv("RT_TEST_PCM", str(pcm_path))
        kernel = Kernel()
        try:
            assert kernel.execute(SETUP, timeout=PROCESS_WAIT).status == "ok"
            cell = kernel.execute(
                "%%realtime --modalities audio --background --out pending\n"
                "Say this in the background.",
                on_message=apply,
            )
            assert cell.status == "ok", cell.error_text()
            ids = [
                m["content"]["transient"]["display_id"]
                for m in cell.of_type("display_data")
                if m["content"].get("transient", {}).get("display_id")
            ]
            wait = kernel.execute(
                "spoken = pending.wait(60)\n"
                "voice = rt_notebook.render.voice.recent_voices()[-1]\n"
                "assert voice.kept.wait(60), 'the audio was never kept'\n"
                "print(voice.kept_audio == spoken.audio, len(spoken.audio))",
                any_parent=True,
                on_message=apply,
            )
            assert wait.status == "ok", wait.error_text()
            assert wait.stream_text().split()[0] == "True"
            assert kernel.execute(SAVE_STREAMED).status == "ok"
        finally:
            kernel.shutdown()
    streamed = pcm_path.read_bytes()
    outputs = [{"data": shown[display_id]} for display_id in ids]
    wavs = _data_url_wavs(outputs)
    assert len(wavs) == 1, outputs
    pcm, _ = wav_pcm(wavs[0])
    assert len(streamed) >= 5 * 2400
    assert pcm == streamed
    assert not any("application/vnd.jupyter.widget-view+json" in o["data"] for o in outputs)
