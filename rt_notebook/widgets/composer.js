// The chat panel's input row: a textarea (Enter sends, Shift+Enter adds a line), Send, Stop.
// Sends custom messages {event: "submit", text, images} and {event: "stop"}; Python does the
// rest. Images pasted or dropped into the row wait above it as thumbnails (thumbs.js, in
// front of this module) and go with the next submit as binary comm buffers, one per image
// ({token, type} in `images`, same order), never as base64 text or widget state.
// Jupyter's server takes at most 10 MiB in one message from the page (a bigger one closes
// the kernel's connection), so an image over PLAIN_LIMIT is first drawn within the kernel's
// own box (2000 x 768 px, rt_notebook/images.py: the kernel would scale it there anyway) and
// sent as PNG (JPEG if the PNG is still big); one message holds at most SEND_LIMIT.
// When the kernel goes away (restart), the whole panel says so and stops taking input.

const SEND_LIMIT = 8 * 1024 * 1024;
const PLAIN_LIMIT = 2 * 1024 * 1024;
const KERNEL_BOX = [2000, 768]; // long side, short side

function encodedCanvas(canvas, type, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

// `blob`, or a copy scaled into the kernel's box when it is too big to send as it is;
// null when the browser cannot read a big one.
async function sendable(blob) {
  if (blob.size <= PLAIN_LIMIT) {
    return blob;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch (error) {
    return null;
  }
  const long = Math.max(bitmap.width, bitmap.height);
  const short = Math.min(bitmap.width, bitmap.height);
  const scale = Math.min(1, KERNEL_BOX[0] / long, KERNEL_BOX[1] / short);
  const canvas = document.createElement("canvas"); // never in the page
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const png = await encodedCanvas(canvas, "image/png");
  if (png && png.size <= PLAIN_LIMIT) {
    return png;
  }
  return encodedCanvas(canvas, "image/jpeg", 0.92);
}

function button(label, className) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.className = `jupyter-button widget-button rt-chat-button ${className}`;
  return element;
}

function render({ model, el }) {
  const row = document.createElement("div");
  row.className = "rt-chat-composer";
  const box = document.createElement("textarea");
  box.className = "rt-chat-input";
  box.rows = 2;
  box.setAttribute("aria-label", "Message");
  const send = button("Send", "rt-chat-send mod-primary");
  const stop = button("Stop", "rt-chat-stop mod-warning");
  row.append(box, send, stop);
  const attachments = document.createElement("div");
  attachments.className = "rt-chat-attachments";
  attachments.hidden = true;
  el.append(attachments, row);

  let pending = []; // [{token, blob}] waiting for the next submit
  let attaching = Promise.resolve(); // images being read, in order
  let reading = 0;
  let note = ""; // why the last image was not attached

  // Runs `step` after every earlier one (a paste, then Enter: the message waits for it).
  function queue(step) {
    attaching = attaching.then(step).catch(() => {
      note = "The images could not be read: paste them again.";
      showPending();
    });
  }

  function showPending() {
    attachments.replaceChildren();
    if (note) {
      const line = document.createElement("div");
      line.className = "rt-chat-attach-note";
      line.textContent = note;
      attachments.appendChild(line);
    }
    for (const image of pending) {
      const figure = document.createElement("div");
      figure.className = "rt-chat-image rt-chat-pending";
      const canvas = thumbCanvas(image.token);
      if (canvas) {
        figure.appendChild(canvas);
      }
      const remove = button("\u00d7", "rt-chat-unattach");
      remove.title = "Remove image";
      remove.setAttribute("aria-label", "Remove image");
      remove.addEventListener("click", () => {
        pending = pending.filter((other) => other !== image);
        showPending();
      });
      figure.appendChild(remove);
      attachments.appendChild(figure);
    }
    attachments.hidden = !pending.length && !note;
  }

  // Image files of a paste or drop (other files and plain text are left to the browser).
  function imageFiles(transfer) {
    if (!transfer) {
      return [];
    }
    // Both lists name the same files; some browsers fill only `items` for a paste.
    let files = Array.from(transfer.files || []);
    if (!files.length) {
      files = Array.from(transfer.items || [])
        .map((item) => (item.kind === "file" ? item.getAsFile() : null))
        .filter(Boolean);
    }
    return files.filter((file) => /^image\//i.test(file.type || ""));
  }

  function attach(files) {
    if (dead || model.get("disabled")) {
      return;
    }
    reading += 1;
    queue(async () => {
      note = "";
      try {
        for (const file of files) {
          const blob = await sendable(file);
          const total = pending.reduce((sum, image) => sum + image.blob.size, 0);
          if (!blob) {
            note = `${file.name || "The image"}: not an image this browser can read.`;
          } else if (total + blob.size > SEND_LIMIT) {
            note = "One message takes at most 8 MB of images: send these first.";
          } else {
            pending.push({ token: keepPasted(blob), blob });
          }
        }
      } finally {
        reading -= 1;
        showPending();
      }
    });
  }

  function onPaste(event) {
    const files = imageFiles(event.clipboardData);
    if (files.length) {
      event.preventDefault(); // the image, not its file name, goes in
      attach(files);
    }
  }

  function onDragOver(event) {
    const types = Array.from((event.dataTransfer && event.dataTransfer.types) || []);
    if (types.includes("Files")) {
      event.preventDefault(); // allow the drop here
      event.stopPropagation();
    }
  }

  function onDrop(event) {
    const files = imageFiles(event.dataTransfer);
    if (files.length) {
      // Not JupyterLab's: a file dropped on the notebook would otherwise be opened.
      event.preventDefault();
      event.stopPropagation();
      attach(files);
    }
  }

  function submit() {
    const text = box.value;
    if ((!text.trim() && !pending.length && !reading) || model.get("disabled")) {
      return;
    }
    box.value = "";
    queue(async () => {
      const images = pending;
      pending = [];
      note = "";
      showPending();
      if (!text.trim() && !images.length) {
        return;
      }
      const buffers = await Promise.all(images.map((image) => image.blob.arrayBuffer()));
      const described = images.map((image) => ({ token: image.token, type: image.blob.type }));
      model.send({ event: "submit", text, images: described }, undefined, buffers);
    });
  }

  function onKeydown(event) {
    // Keep JupyterLab's notebook shortcuts (Shift+Enter runs a cell) out of the textarea.
    event.stopPropagation();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  }

  // The draft stays in the browser (no message per keystroke); Python can set one.
  function setDraft() {
    box.value = model.get("value");
  }

  function sync() {
    watchPanel(); // once the view is inside its panel
    if (dead) {
      return;
    }
    box.placeholder = model.get("placeholder");
    box.disabled = model.get("disabled");
    send.disabled = model.get("disabled");
    stop.disabled = !model.get("responding");
  }

  // ipywidgets marks every view of a kernel that restarted with this class (and sends
  // "comm_live_update"): nothing the panel shows will change any more, so say so and
  // disable the controls instead of leaving "responding…" and a lit Stop on screen.
  const gone = document.createElement("div");
  gone.className = "rt-chat-status rt-chat-kernel-gone";
  gone.dataset.state = "kernel-gone";
  gone.textContent =
    "● kernel gone (restarted or shut down): this panel is no longer connected. " +
    "Run its cell again for a new one.";

  let dead = false;
  function markDead() {
    dead = true;
    box.disabled = true;
    send.disabled = true;
    stop.disabled = true;
    const panel = el.closest(".rt-chat");
    if (panel) {
      panel.dataset.kernel = "gone";
    }
    if (!gone.isConnected) {
      el.prepend(gone);
    }
  }

  // The panel's own box gets the class too (any of them may be updated first).
  let observer = null;
  function watchPanel() {
    const panel = el.closest(".rt-chat");
    if (!panel || observer) {
      return;
    }
    const check = () => {
      if (panel.classList.contains("jupyter-widgets-disconnected")) {
        markDead();
      }
    };
    observer = new MutationObserver(check);
    observer.observe(panel, { attributes: true, attributeFilter: ["class"] });
    check(); // a view rendered after the restart (side area)
  }

  box.addEventListener("keydown", onKeydown);
  box.addEventListener("paste", onPaste);
  el.addEventListener("dragover", onDragOver);
  el.addEventListener("drop", onDrop);
  box.addEventListener("keypress", (event) => event.stopPropagation());
  send.addEventListener("click", submit);
  stop.addEventListener("click", () => model.send({ event: "stop" }));
  model.on("change", sync);
  model.on("change:value", setDraft);
  // Sent when the kernel restarts (the connection to this model is gone for good).
  model.on("comm_live_update", markDead);
  setDraft();
  sync();
  requestAnimationFrame(watchPanel); // the view is placed in its panel after render
  return () => {
    model.off("change", sync);
    model.off("change:value", setDraft);
    model.off("comm_live_update", markDead);
    if (observer) {
      observer.disconnect();
    }
  };
}

export default { render };
