// The edgemtl viewer: one WebSocket gives, per update, the state as JSON text and the frame as JPEG bytes.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const history = { fps: [], p99: [] };
const HISTORY = 120;
let meta = { tasks: [] };
let shownUrl = null;
let stateFrame = null;  // the frame number of the last state: the JPEG that follows it is that frame's

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A number as text; null (what the server sends for a NaN: JSON has no NaN) as a dash.
function fixed(value, digits) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function bar(name, value, on) {
  const row = el("div", on ? "bar on" : "bar");
  row.append(el("span", "name", name));
  const track = el("span", "track"), fill = el("span", "fill");
  fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  fill.style.display = "block";
  track.append(fill);
  row.append(track, el("span", "value", fixed(value, 2)));
  return row;
}

// A class's colour as the legend has it (boxes: the colour the overlay draws them in).
function colourOf(task, classId) {
  const entry = meta.tasks.find((t) => t.name === task);
  return (entry && entry.colors[classId]) || "#888";
}

// Detected objects, one row each: colour, class, track id (with --track; "–" until confirmed), score, held.
function renderObjects(box, task, objects) {
  box.append(el("div", "", `${objects.length} object${objects.length === 1 ? "" : "s"}`));
  for (const o of objects) {
    const row = el("div", o.held ? "object held" : "object");
    row.title = `box ${o.box.join(", ")} (x1, y1, x2, y2 in frame pixels)`;
    const swatch = el("span", "swatch");
    swatch.style.background = colourOf(task, o.class_id);
    const id = o.track_id === undefined ? "" : o.track_id >= 0 ? `#${o.track_id}` : "–";
    row.append(swatch, el("span", "name", o.class), el("span", "track", id), el("span", "value", fixed(o.score, 2)));
    if (o.held) row.append(el("span", "flag", "held"));
    box.append(row);
  }
}

// Each result is drawn by its shape (what its kind's to_dict gives), not by a list of kinds.
function renderResult(name, result) {
  const box = el("div", "task");
  box.append(el("div", "task-name", name));
  if (result.probabilities && result.label !== undefined) {
    box.append(el("div", "", `${result.label} (${fixed(result.confidence, 2)})`));
    for (const [c, p] of Object.entries(result.probabilities)) box.append(bar(c, p, c === result.label));
  } else if (result.probabilities && result.labels) {
    for (const [c, p] of Object.entries(result.probabilities)) {
      box.append(el("span", result.labels.includes(c) ? "flag on" : "flag", `${c} ${fixed(p, 2)}`));
    }
  } else if (result.values) {
    for (const [c, v] of Object.entries(result.values)) box.append(el("div", "", `${c}: ${fixed(v, 3)}`));
  } else if (Array.isArray(result.objects)) {
    renderObjects(box, name, result.objects);
  } else if (result.class_fractions) {
    for (const [c, f] of Object.entries(result.class_fractions)) box.append(bar(c, f, false));
  } else {
    box.append(el("pre", "", JSON.stringify(result)));
  }
  return box;
}

function renderLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  for (const task of meta.tasks) {
    const row = el("div", "task");
    row.append(el("span", "task-name", `${task.name}`), el("span", "", ` (${task.kind})`));
    const classes = el("div");
    task.classes.forEach((c, i) => {
      if (task.colors[i]) {
        const swatch = el("span", "swatch");
        swatch.style.background = task.colors[i];
        classes.append(swatch);
      }
      classes.append(document.createTextNode(`${c}  `));
    });
    row.append(classes);
    legend.append(row);
  }
}

function drawChart() {
  const canvas = $("chart"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#2a2f36";
  for (let y = 0; y <= 4; y++) { g.beginPath(); g.moveTo(0, (y * h) / 4); g.lineTo(w, (y * h) / 4); g.stroke(); }
  for (const [series, colour] of [[history.fps, "#5bd"], [history.p99, "#fb5"]]) {
    if (series.length < 2) continue;
    const top = Math.max(...series) * 1.2 || 1;
    g.strokeStyle = colour; g.beginPath();
    series.forEach((v, i) => {
      const x = (i / (HISTORY - 1)) * w, y = h - (v / top) * h;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
    g.fillStyle = colour; g.fillText(top.toFixed(0), colour === "#5bd" ? 2 : w - 30, 10);
  }
}

function showState(state) {
  $("frame-count").textContent = state.frame ?? "–";
  $("frame-name").textContent = state.name || "";
  const live = state.live || {};
  if (live.fps !== undefined) {
    $("fps").textContent = fixed(live.fps, 1);
    $("p50").textContent = fixed(live.latency_p50_ms, 1);
    $("p99").textContent = fixed(live.latency_p99_ms, 1);
    $("dropped").textContent = live.dropped;
    history.fps.push(live.fps); history.p99.push(live.latency_p99_ms);
    for (const s of Object.values(history)) if (s.length > HISTORY) s.shift();
    drawChart();
  }
  const results = $("results");
  results.replaceChildren(...Object.entries(state.results || {}).map(([n, r]) => renderResult(n, r)));
}

// The image says which frame it shows (data-frame): what is drawn on it can be matched with that frame's results.
function showFrame(blob, frame) {
  const url = URL.createObjectURL(blob), img = $("frame");
  img.onload = () => {
    if (shownUrl) URL.revokeObjectURL(shownUrl);
    shownUrl = url;
    img.dataset.frame = frame ?? "";
  };
  img.src = url;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/ws${query}`);
  socket.binaryType = "blob";
  socket.onopen = () => { $("status").textContent = "live"; $("status").className = "status live"; };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") return showFrame(event.data, stateFrame);
    const message = JSON.parse(event.data);
    if (message.type === "meta") { meta = message; renderLegend(); return; }
    stateFrame = message.frame;
    showState(message);
  };
  socket.onclose = () => {
    $("status").textContent = "disconnected, retrying…"; $("status").className = "status down";
    setTimeout(connect, 1000);
  };
}

connect();
