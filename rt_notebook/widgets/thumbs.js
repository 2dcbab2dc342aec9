// Shared by the composer's and the chat view's ES modules: Python puts this file in front
// of each (anywidget loads one module per widget, with no relative imports).
//
// Images the user pasted or dropped into the composer, and their thumbnails. The page keeps
// each image's bytes (the File, a Blob) under a random token in one map per page; the kernel
// gets the bytes as a comm buffer and hands back only the token, in a bubble's meta. A
// thumbnail is a canvas this code draws from those bytes: no <img>, no data: or blob: URL,
// and a token that is not in the map (anything the kernel, a server or a model could make
// up) draws nothing.

const THUMB_TOKEN = /^[0-9a-f]{32}$/;
const THUMB_SIDE = 96; // px, the longer side of a thumbnail

function pastedImages() {
  return (globalThis.__rtNotebookPasted = globalThis.__rtNotebookPasted || new Map());
}

function newPastedToken() {
  // crypto.getRandomValues works on plain-http pages too (randomUUID needs https).
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// The page keeps the last KEPT_IMAGES pasted images (older bubbles then show their labels).
const KEPT_IMAGES = 200;

function keepPasted(blob) {
  const token = newPastedToken();
  const kept = pastedImages();
  kept.set(token, blob);
  for (const old of kept.keys()) {
    if (kept.size <= KEPT_IMAGES) {
      break;
    }
    kept.delete(old); // a Map iterates oldest first
  }
  return token;
}

// A canvas showing the pasted image `token`, or null when the page holds no such image.
function thumbCanvas(token) {
  const blob = THUMB_TOKEN.test(String(token)) ? pastedImages().get(token) : undefined;
  if (!(blob instanceof Blob)) {
    return null;
  }
  const canvas = document.createElement("canvas");
  canvas.className = "rt-chat-thumb";
  canvas.width = 1;
  canvas.height = 1;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "pasted image");
  createImageBitmap(blob).then(
    (bitmap) => {
      const scale = Math.min(1, THUMB_SIDE / Math.max(bitmap.width, bitmap.height));
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      canvas.dataset.drawn = "yes";
    },
    () => {
      canvas.dataset.drawn = "failed"; // not an image the browser can decode
    },
  );
  return canvas;
}

// The images row of a user's bubble: each image's thumbnail (when this page holds its bytes)
// and its label as text ("[image 640×480 PNG, 41 KB]", from the kernel).
function imagesRow(thumbs, labels) {
  const tokens = Array.isArray(thumbs) ? thumbs : [];
  const texts = Array.isArray(labels) ? labels : [];
  const count = Math.min(Math.max(tokens.length, texts.length), 32);
  if (!count) {
    return null;
  }
  const row = document.createElement("div");
  row.className = "rt-chat-images";
  for (let index = 0; index < count; index++) {
    const canvas = thumbCanvas(tokens[index]);
    if (!canvas && texts[index] == null) {
      continue; // an image this page did not paste, not labelled yet
    }
    const figure = document.createElement("div");
    figure.className = "rt-chat-image";
    if (canvas) {
      figure.appendChild(canvas);
    }
    if (texts[index] != null) {
      const caption = document.createElement("div");
      caption.className = "rt-chat-image-label";
      caption.textContent = `[${String(texts[index])}]`;
      figure.appendChild(caption);
    }
    row.appendChild(figure);
  }
  return row.childElementCount ? row : null;
}
