// Front end of the microphone: getUserMedia in, PCM16 24 kHz mono chunks out (binary comm
// buffers, ~100 ms each), with push-to-talk (hold) and hands-free (toggle) buttons.
//
// Capture lives in the model (initialize), not in a view: a view may be removed or shown
// twice while the microphone runs. An AudioWorklet on a context at the device's rate mixes
// to mono, resamples to 24 kHz (linear interpolation after a native low-pass that keeps
// aliasing out) and converts to PCM16; it counts the device frames it captured, so the
// captured duration is exact, not an estimate from timers.

const WORKLET = `
class RtNotebookMic extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.ratio = sampleRate / 24000;  // device frames per output sample
    this.chunk = new Int16Array(2400);  // 100 ms at 24 kHz
    this.filled = 0;
    this.capturing = false;
    this.t = 0;  // next output sample's position, in device frames from this block's start
    this.previous = 0;  // the last device sample of the block before
    this.captured = 0;  // device frames captured since "start"
    this.sent = 0;  // output samples posted since "start"
    this.port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "start") {
        this.capturing = true;
        this.t = 0;
        this.previous = 0;
        this.captured = 0;
        this.sent = 0;
        this.filled = 0;
      } else if (message.type === "stop") {
        if (this.capturing) this.post(true);
        this.capturing = false;
        this.port.postMessage({ type: "stopped", captured: this.captured, sent: this.sent, rate: sampleRate });
      }
    };
  }
  post(last) {
    if (this.filled === 0 && !last) return;
    const pcm = this.chunk.slice(0, this.filled);
    this.sent += this.filled;
    this.filled = 0;
    this.port.postMessage({ type: "chunk", pcm, captured: this.captured }, [pcm.buffer]);
  }
  process(inputs) {
    if (!this.capturing) return true;
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;  // no input connected yet
    const n = channels[0].length;
    let mono = channels[0];
    if (channels.length > 1) {
      mono = new Float32Array(n);
      for (const channel of channels) for (let i = 0; i < n; i++) mono[i] += channel[i] / channels.length;
    }
    this.captured += n;
    while (Math.floor(this.t) + 1 < n) {
      const i = Math.floor(this.t);
      const frac = this.t - i;
      const a = i < 0 ? this.previous : mono[i];
      const x = a + (mono[i + 1] - a) * frac;
      const clipped = Math.max(-1, Math.min(1, x));
      this.chunk[this.filled++] = clipped < 0 ? clipped * 32768 : clipped * 32767;
      if (this.filled === this.chunk.length) this.post(false);
      this.t += this.ratio;
    }
    this.t -= n;
    this.previous = mono[n - 1];
    return true;
  }
}
registerProcessor("rt-notebook-mic", RtNotebookMic);
`;

// Why the microphone cannot be used, in words a user can act on.
function explain(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "Microphone permission denied: allow the microphone for this site in the browser's settings, then press again.";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return "No microphone found: connect one, then press again.";
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return "The microphone could not be opened (another application may be using it).";
  }
  return `The microphone could not be opened: ${name || "Error"}: ${(error && error.message) || error}`;
}

function insecure() {
  if (window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return null;
  return (
    "The microphone needs a secure page: open Jupyter over https or on localhost " +
    `(this page is ${location.protocol}//${location.host}).`
  );
}

// Close the device this long after the last capture (the browser's recording indicator
// goes off); reopening it costs a moment, so a quick next press keeps it.
const IDLE_CLOSE_MS = 30000;

function initialize({ model }) {
  const state = {
    status: "idle", // idle, opening, recording, error
    mode: null, // "push" or "handsfree" while recording
    error: "",
    seq: 0, // chunks sent since the page loaded
    captured: 0, // device frames captured in the current or last capture
    rate: 0, // the device rate
    sentBytes: 0, // PCM bytes sent in the current or last capture
    views: new Set(),
    wanted: false, // the user still holds / has hands-free on
  };
  let ctx = null;
  let stream = null;
  let node = null;
  let idleTimer = null;
  let opening = null;
  const byId = (globalThis.__rtNotebookMics = globalThis.__rtNotebookMics || new Map());
  byId.set(model.get("_mic_id"), state);

  const refresh = () => state.views.forEach((update) => update());
  const setStatus = (status, error = "") => {
    state.status = status;
    state.error = error;
    model.set({ status, error });
    model.save_changes();
    refresh();
  };

  const close = () => {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (node) node.disconnect();
    if (ctx) ctx.close().catch(() => {});
    stream = node = ctx = null;
  };

  const open = async () => {
    const why = insecure();
    if (why) throw Object.assign(new Error(why), { name: "InsecureContext", explained: why });
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    ctx = new AudioContext();
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    await ctx.audioWorklet.addModule(url);
    URL.revokeObjectURL(url);
    const source = ctx.createMediaStreamSource(stream);
    node = new AudioWorkletNode(ctx, "rt-notebook-mic", { numberOfOutputs: 0 });
    if (ctx.sampleRate > 24000) {
      const lowpass = ctx.createBiquadFilter();
      lowpass.type = "lowpass";
      lowpass.frequency.value = 11000; // below 12 kHz, the Nyquist frequency of 24 kHz
      source.connect(lowpass).connect(node);
    } else {
      source.connect(node);
    }
    state.rate = ctx.sampleRate;
    node.port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "chunk") {
        state.captured = message.captured;
        state.sentBytes += message.pcm.byteLength;
        // (content, callbacks, buffers): the chunk rides as a binary buffer.
        model.send({ event: "audio", seq: state.seq++ }, undefined, [message.pcm.buffer]);
        refresh();
      } else if (message.type === "stopped") {
        state.captured = message.captured;
        model.send({ event: "end", seq: state.seq, captured: message.captured, rate: message.rate });
        setStatus("idle");
        // Between turns the capture graph does not run: it would compete with the
        // answer's playback for the audio thread (a busy machine then glitches).
        if (ctx) ctx.suspend().catch(() => {});
        idleTimer = setTimeout(close, IDLE_CLOSE_MS);
      }
    };
  };

  // Start capturing (a press, or hands-free on): opens the device the first time.
  const start = async (mode) => {
    // Barge-in: the user talks over an answer, so it stops now, here (a round trip to the
    // kernel would let it play on); each player reports what was heard, and the kernel
    // truncates the answer there.
    const audio = globalThis.__rtNotebookAudio;
    (audio ? audio.players : []).forEach((player) => {
      if (player.stop && player.status === "playing") player.stop();
    });
    state.wanted = true;
    state.mode = mode;
    if (state.status === "recording" || state.status === "opening") return;
    clearTimeout(idleTimer);
    setStatus("opening");
    try {
      if (!ctx) {
        opening = opening || open();
        await opening;
      }
      await ctx.resume();
    } catch (error) {
      opening = null;
      close();
      state.wanted = false;
      setStatus("error", error.explained || explain(error));
      return;
    } finally {
      opening = null;
    }
    if (!state.wanted) {
      // Released before the device opened: nothing was said.
      setStatus("idle");
      return;
    }
    state.captured = 0;
    state.sentBytes = 0;
    model.send({ event: "start", mode, seq: state.seq });
    node.port.postMessage({ type: "start" });
    setStatus("recording");
  };

  // Stop capturing (a release, or hands-free off): the last partial chunk goes, then "end".
  const stop = () => {
    state.wanted = false;
    if (state.status === "recording" && node) node.port.postMessage({ type: "stop" });
  };

  state.start = start;
  state.stop = stop;
  model.on("msg:custom", (message) => {
    if (message.event === "stop") stop();
  });
  return () => {
    stop();
    close();
    byId.delete(model.get("_mic_id"));
  };
}

const MIC =
  '<rect x="5.5" y="1" width="5" height="9" rx="2.5"/>' +
  '<path d="M3.5 7.5a4.5 4.5 0 0 0 9 0M8 12v3M5.5 15h5" fill="none" stroke="currentColor" stroke-width="1.3"/>';
const HANDSFREE =
  '<rect x="6" y="2" width="4" height="8" rx="2"/>' +
  '<path d="M4.5 7.5a3.5 3.5 0 0 0 7 0M8 11v3M2.5 4.5a7 7 0 0 0 0 6M13.5 4.5a7 7 0 0 1 0 6"' +
  ' fill="none" stroke="currentColor" stroke-width="1.2"/>';
const STOP = '<rect x="3" y="3" width="10" height="10" rx="1.5"/>';

function render({ model, el }) {
  const state = globalThis.__rtNotebookMics.get(model.get("_mic_id"));
  el.classList.add("rt-notebook-mic");
  const talk = document.createElement("button");
  talk.className = "rt-notebook-mic-talk";
  talk.append(icon(MIC), " Hold to talk");
  talk.title = "Hold (mouse, touch, or Space) while you speak; release to send";
  const free = document.createElement("button");
  free.className = "rt-notebook-mic-handsfree";
  free.title = "Talk freely: the server decides when you have finished speaking";
  const label = document.createElement("span");
  label.className = "rt-notebook-mic-label";
  label.setAttribute("role", "status");
  const note = document.createElement("span");
  note.className = "rt-notebook-mic-note";
  el.append(talk, free, label, note);
  const freeOn = [icon(STOP), " Hands-free off"];
  const freeOff = [icon(HANDSFREE), " Hands-free"];

  // Push-to-talk: held with the pointer, or with Space/Enter on the focused button.
  const press = (event) => {
    event.preventDefault();
    if (state.mode === "handsfree" && state.wanted) return;
    state.start("push");
  };
  const release = () => {
    if (state.mode === "push") state.stop();
  };
  talk.addEventListener("pointerdown", press);
  talk.addEventListener("pointerup", release);
  talk.addEventListener("pointerleave", release);
  talk.addEventListener("pointercancel", release);
  talk.addEventListener("keydown", (event) => {
    event.stopPropagation(); // not a notebook shortcut
    if ((event.key === " " || event.key === "Enter") && !event.repeat) press(event);
  });
  talk.addEventListener("keyup", (event) => {
    event.stopPropagation();
    if (event.key === " " || event.key === "Enter") release();
  });
  free.addEventListener("click", () => {
    if (state.mode === "handsfree" && state.wanted) state.stop();
    else state.start("handsfree");
    update();
  });

  function update() {
    const handsfree = state.mode === "handsfree" && state.wanted;
    const recording = state.status === "recording";
    const wanted = handsfree ? freeOn : freeOff;
    if (free.firstChild !== wanted[0]) free.replaceChildren(...wanted);
    free.setAttribute("aria-pressed", String(handsfree));
    talk.disabled = handsfree;
    talk.setAttribute("aria-pressed", String(recording && state.mode === "push"));
    const seconds = state.rate ? (state.captured / state.rate).toFixed(1) : "0.0";
    label.textContent = {
      idle: "",
      opening: "opening the microphone (allow it if the browser asks)…",
      recording: handsfree ? `listening (hands-free) ${seconds} s` : `recording ${seconds} s`,
      error: state.error,
    }[state.status];
    label.classList.toggle("rt-notebook-mic-error", state.status === "error");
    note.textContent = model.get("note");
    Object.assign(el.dataset, {
      status: state.status,
      mode: state.mode || "",
      captured: String(state.captured),
      rate: String(state.rate),
      sentBytes: String(state.sentBytes),
      seq: String(state.seq),
    });
  }
  model.on("change:note", update);
  state.views.add(update);
  update();
  return () => state.views.delete(update);
}

export default { initialize, render };
