// Front end of the audio player: PCM16 24 kHz mono chunks in (binary comm buffers), sound
// out through one AudioWorklet per answer on one AudioContext per page.
//
// Playback lives in the model (initialize), not in a view: the cell swaps the player for an
// <audio> element when playback ends, and a view may be removed or shown twice meanwhile.
// The worklet counts the samples it renders, so the played position is exact (what the
// listener heard), not an estimate from timers.

const WORKLET = `
class RtNotebookPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.head = null;
    this.offset = 0;
    this.played = 0;
    this.started = false;
    this.stopped = false;
    this.quanta = 0;
    this.starved = 0;
    this.port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "pcm") {
        if (!this.stopped) this.queue.push(message.samples);
      } else if (message.type === "stop") {
        this.stopped = true;
        this.queue = [];
        this.head = null;
        this.port.postMessage({ type: "stopped", played: this.played, time: currentTime });
      }
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length) {
      if (this.head === null) {
        this.head = this.queue.shift() || null;
        this.offset = 0;
        if (this.head === null) break;
        if (!this.started) {
          this.started = true;
          // The context time at which the first sample of the answer sounds.
          this.port.postMessage({ type: "started", time: currentTime + i / sampleRate });
        }
      }
      const n = Math.min(out.length - i, this.head.length - this.offset);
      out.set(this.head.subarray(this.offset, this.offset + n), i);
      i += n;
      this.offset += n;
      this.played += n;
      if (this.offset >= this.head.length) this.head = null;
    }
    if (this.started && ++this.quanta % 20 === 0) {
      this.port.postMessage({ type: "position", played: this.played });  // ~every 107 ms
    }
    const idle = this.started && this.head === null && this.queue.length === 0;
    // The page learns the silence it waited through when playback resumes (also when a
    // chunk shorter than a quantum came and went within this one).
    if (this.idle && i > 0) this.port.postMessage({ type: "resumed", starved: this.starved });
    if (idle && (!this.idle || i > 0)) this.port.postMessage({ type: "idle", played: this.played });
    // Silence rendered while waiting for data that is late (not the answer's own audio),
    // including the rest of the quantum in which the queue ran dry.
    if (this.started && i < out.length) this.starved += out.length - i;
    this.idle = idle;
    return !this.stopped;
  }
}
registerProcessor("rt-notebook-player", RtNotebookPlayer);
`;

// One context per page: a click that enables sound enables it for every player.
function pageAudio() {
  if (!globalThis.__rtNotebookAudio) {
    const ctx = new AudioContext({ sampleRate: 24000 });
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    const listeners = new Set();
    ctx.onstatechange = () => listeners.forEach((listener) => listener(ctx.state));
    globalThis.__rtNotebookAudio = {
      ctx,
      listeners,
      loaded: ctx.audioWorklet.addModule(url),
      players: [], // every player's state on this page, oldest first (tests read it)
      byId: new Map(), // player id -> state, for the views
    };
    ctx.resume().catch(() => {});
  }
  return globalThis.__rtNotebookAudio;
}

function initialize({ model }) {
  const audio = pageAudio();
  const state = {
    received: 0, // samples received from the kernel
    scheduled: 0, // samples handed to the worklet
    played: 0, // samples rendered by the worklet
    startTime: null, // AudioContext time of the first sample
    starved: 0, // samples of silence while later audio was still on its way
    ended: false, // the kernel said no more audio will come
    status: "waiting",
    node: null,
    pending: [],
    next: 0, // the sequence number of the next chunk to play
    early: new Map(), // chunks that arrived before an earlier one
    chunks: Infinity, // how many chunks the answer has, once the kernel says
  };
  const views = new Set();
  state.views = views;
  audio.players.push(state);
  audio.byId.set(model.get("_player_id"), state);

  const blocked = () => audio.ctx.state !== "running";
  const refresh = () => views.forEach((update) => update());
  let lastSave = 0;
  const report = (force) => {
    // Tell the kernel, but not on every render quantum: comm messages are rate-limited.
    const now = performance.now();
    if (!force && now - lastSave < 250) return;
    lastSave = now;
    model.set({ scheduled: state.scheduled, played: state.played, status: state.status });
    model.save_changes();
  };
  const setStatus = (status) => {
    state.status = status;
    refresh();
    report(true);
  };

  const push = (samples) => {
    // (state.idle stays as the worklet last said: it turns false with "resumed", when the
    // silence waited through is known.)
    state.scheduled += samples.length; // counted first: the transfer empties the array
    state.node.port.postMessage({ type: "pcm", samples }, [samples.buffer]);
  };
  const finishIfDone = () => {
    const done = state.received === 0 || (state.idle && state.played >= state.scheduled);
    if (state.ended && state.next >= state.chunks && done && state.status !== "ended" && state.status !== "stopped") {
      if (state.node) state.node.disconnect();
      setStatus("ended");
    }
  };
  audio.loaded.then(() => {
    const node = new AudioWorkletNode(audio.ctx, "rt-notebook-player");
    node.connect(audio.ctx.destination);
    node.port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "started") {
        state.startTime = message.time;
        setStatus("playing");
      } else if (message.type === "position") {
        state.played = message.played;
        refresh();
        report(false);
      } else if (message.type === "resumed") {
        state.starved = message.starved;
        state.idle = false;
      } else if (message.type === "idle") {
        state.played = message.played;
        state.idle = true;
        finishIfDone();
      } else if (message.type === "stopped") {
        state.played = message.played;
        state.stopTime = message.time;
        node.disconnect();
        if (state.dropping) {
          setStatus("dropped"); // not the user's Stop: nothing to truncate
          return;
        }
        model.send({ event: "stopped", played: state.played });
        setStatus("stopped");
      }
    };
    state.node = node;
    state.pending.forEach(push);
    state.pending = [];
    refresh();
  });

  const onBlockChange = () => {
    if (state.status === "waiting" || state.status === "blocked") {
      setStatus(blocked() ? "blocked" : "waiting");
    }
  };
  audio.listeners.add(onBlockChange);

  model.on("msg:custom", (message, buffers) => {
    if (message.event === "pcm") {
      const buffer = (buffers || [])[0];
      // In order, once each: a chunk lost before this listener existed comes again
      // after "ready", and later chunks wait for it.
      if (!buffer || message.seq < state.next || state.early.has(message.seq)) return;
      state.early.set(message.seq, buffer);
      while (state.early.has(state.next)) {
        const chunk = state.early.get(state.next);
        state.early.delete(state.next);
        state.next += 1;
        const bytes = chunk instanceof DataView ? chunk : new DataView(chunk.buffer || chunk);
        const count = bytes.byteLength >> 1;
        const samples = new Float32Array(count);
        for (let i = 0; i < count; i++) samples[i] = bytes.getInt16(2 * i, true) / 32768;
        state.received += count;
        if (state.node) push(samples);
        else state.pending.push(samples);
      }
      if (blocked() && state.status === "waiting") setStatus("blocked");
      refresh();
    } else if (message.event === "end") {
      state.chunks = message.count;
      state.ended = true;
      finishIfDone();
      refresh();
    } else if (message.event === "stop") {
      stop();
    }
  });

  const stop = () => {
    if (state.node && state.status !== "ended" && state.status !== "stopped") {
      state.node.port.postMessage({ type: "stop" });
    }
  };
  state.stop = stop;

  // A blocked player with no view left (its cell kept the answer as <audio controls>
  // before the page could play it) must not sound out of nowhere when a click on another
  // player enables sound: it is dropped, silently (the kept audio is what the user plays).
  state.drop = () => {
    if (state.status !== "blocked" || state.views.size > 0 || state.startTime !== null) return;
    state.dropping = true;
    state.pending = [];
    if (state.node) {
      state.node.disconnect();
      state.node.port.postMessage({ type: "stop" });
    } else {
      setStatus("dropped");
    }
  };

  // The kernel holds audio back until this arrives: messages sent before the front end
  // had its listener would be lost.
  model.send({ event: "ready", received: state.received });
  return () => audio.listeners.delete(onBlockChange);
}

function seconds(samples) {
  return (samples / 24000).toFixed(1);
}

const SPEAKER = '<path d="M1.5 5.5h3l4-3.5v12l-4-3.5h-3z"/>';
const WAVES = '<path d="M10.5 5.5a3.5 3.5 0 0 1 0 5M12.5 3.5a6.5 6.5 0 0 1 0 9" fill="none" stroke="currentColor" stroke-width="1.3"/>';
const MUTED = '<path d="M10.5 5.5l4 5M14.5 5.5l-4 5" fill="none" stroke="currentColor" stroke-width="1.3"/>';
const STOP = '<rect x="3" y="3" width="10" height="10" rx="1.5"/>';
const ICONS = {
  waiting: SPEAKER,
  blocked: SPEAKER + MUTED,
  playing: SPEAKER + WAVES,
  ended: SPEAKER,
  stopped: STOP,
};

function render({ model, el }) {
  const audio = pageAudio();
  const state = audio.byId.get(model.get("_player_id"));
  el.classList.add("rt-notebook-player");
  const label = document.createElement("span");
  label.className = "rt-notebook-player-label";
  const enable = document.createElement("button");
  enable.textContent = "Enable sound";
  enable.title = "The browser blocks sound until you click on the page";
  enable.addEventListener("click", () => {
    audio.players.forEach((other) => other !== state && other.drop());
    audio.ctx.resume().then(update);
  });
  const stop = document.createElement("button");
  stop.textContent = "Stop";
  stop.className = "rt-notebook-player-stop";
  stop.addEventListener("click", () => state.stop());
  el.append(label, enable, stop);
  const icons = {}; // status -> this view's icon, made once
  const text = document.createTextNode("");

  function update() {
    const status = audio.ctx.state !== "running" && state.status !== "ended" ? "blocked" : state.status;
    const words = {
      waiting: "waiting for audio…",
      blocked: "The browser blocked sound: click to hear the answer.",
      playing: "playing",
      ended: "played",
      stopped: "stopped",
      dropped: "not played",
    }[status];
    text.data = ` ${words} ${seconds(state.played)} s / ${seconds(state.received)} s`;
    const shown = (icons[status] ??= icon(ICONS[status] ?? SPEAKER));
    if (label.firstChild !== shown) label.replaceChildren(shown, text);
    enable.hidden = status !== "blocked";
    stop.disabled = !(status === "playing" || status === "blocked" || status === "waiting");
    Object.assign(el.dataset, {
      status,
      received: String(state.received),
      scheduled: String(state.scheduled),
      played: String(state.played),
      startTime: String(state.startTime ?? ""),
    });
  }
  state.views.add(update);
  update();
  return () => state.views.delete(update);
}

export default { initialize, render };
