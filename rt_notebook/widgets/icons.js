// Shared by the microphone's and the player's ES modules: Python puts this file in front of
// each (anywidget loads one module per widget, with no relative imports).

// Icons as inline SVG drawn in the text colour: emoji render as empty boxes where the
// machine has no emoji font (a CI runner, many Linux desktops).
const SVG_NS = "http://www.w3.org/2000/svg";
function icon(shapes) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "1em");
  svg.setAttribute("height", "1em");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "rt-notebook-icon");
  svg.innerHTML = shapes; // constant markup from our modules, never model text
  return svg;
}
