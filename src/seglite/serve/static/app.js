// seglite web page: upload or capture an image, ask POST /v1/segment for the class mask,
// and blend it over the image here, so the opacity slider needs no new request.
"use strict";

// Classes the server leaves unpainted in its overlays ("nothing in particular"); /v1/models
// sends the list (seglite.viz.UNCOLOURED) so it is defined in one place.
let UNPAINTED = new Set();
const MAX_VIEW_SIDE = 1600; // backing size of the on-screen canvas; saves use full size
const LIVE_SIDE = 640; // webcam frames sent in live mode are scaled to this long side
const LEGEND_ROWS = 16; // more classes than this are summed up in one line

const $ = (id) => document.getElementById(id);
const el = {
  model: $("model"), modelDesc: $("model-desc"), accurate: $("accurate"), file: $("file"),
  drop: $("drop"), webcam: $("webcam"), opacity: $("opacity"), opacityValue: $("opacity-value"),
  downloads: $("downloads"), saveOverlay: $("save-overlay"), saveMask: $("save-mask"),
  stage: $("stage"), view: $("view"), video: $("video"), placeholder: $("placeholder"),
  busy: $("busy"), tip: $("tip"), cameraBar: $("camera-bar"), capture: $("capture"),
  live: $("live"), cameraClose: $("camera-close"), error: $("error"), status: $("status"),
  legend: $("legend"), timings: $("timings"), serverInfo: $("server-info"), fps: $("fps"),
  effect: $("effect"), effectOptions: $("effect-options"), effectColor: $("effect-color"),
  invert: $("invert"),
};

const state = {
  models: new Map(), // name -> model info from /v1/models
  source: null, // {blob, name}: the last image sent, re-sent when the model changes
  image: null, // decoded original (HTMLImageElement or canvas)
  mask: null, // {canvas, data: ImageData, colorToIndex: Map}
  result: null, // last JSON answer
  seq: 0, // request counter: only the latest answer is drawn
  stream: null, // webcam MediaStream
  effect: null, // decoded output=cutout / output=effect picture, shown instead of the blend
  live: null, // the /v1/live WebSocket while live mode is on
};

// The request for what the "Show" picker asks: the class mask (blended here), or an effect
// the server draws (POST /v1/segment output=cutout | output=effect).
function requestParams() {
  const fx = el.effect.value;
  if (!fx) return new URLSearchParams({ output: "mask", embed: "true" });
  const params = new URLSearchParams({ embed: "true" });
  if (fx === "cutout") params.set("output", "cutout");
  else {
    params.set("output", "effect");
    params.set("effect", fx === "color" ? `color:${el.effectColor.value}` : fx);
  }
  if (el.invert.checked) params.set("invert", "true");
  return params;
}

// -- small helpers ------------------------------------------------------------------------------

function setState(name) { document.body.dataset.state = name; }
function fmtMs(ms) { return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`; }
function fmtPct(f) {
  if (f >= 0.1) return `${(f * 100).toFixed(1)}%`;
  return f >= 0.0001 ? `${(f * 100).toFixed(2)}%` : "<0.01%";
}
function rgbKey(r, g, b) { return (r << 16) | (g << 8) | b; }
function hexToKey(hex) { return parseInt(hex.slice(1), 16); }

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
  setState("error");
}
function clearError() { el.error.hidden = true; el.error.textContent = ""; }

function node(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = src;
  });
}

// -- API key ------------------------------------------------------------------------------------

// Servers started with --api-key-env want the key on every API call: open the page as
// /#key=...; the key moves to this tab's sessionStorage and leaves the address bar.
const API_KEY = (() => {
  const m = location.hash.match(/(?:^#|&)key=([^&]+)/);
  if (m) {
    sessionStorage.setItem("seglite-key", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("seglite-key");
})();

function apiHeaders(headers) {
  return API_KEY ? { ...headers, "X-API-Key": API_KEY } : headers;
}

// -- models -------------------------------------------------------------------------------------

async function loadModels() {
  try {
    const resp = await fetch("/v1/models", { headers: apiHeaders({ Accept: "application/json" }) });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const body = await resp.json();
    UNPAINTED = new Set(body.unpainted);
    el.model.replaceChildren();
    for (const m of body.models) {
      state.models.set(m.name, m);
      const opt = node("option", "", `${m.name} · ${m.classes} classes`);
      opt.value = m.name;
      opt.selected = m.name === body.default;
      el.model.append(opt);
    }
    el.model.disabled = body.models.length < 2;
    el.serverInfo.textContent = `Limits: ${body.max_upload_mb} MB upload, ${(body.max_pixels / 1e6).toFixed(0)} MP.`;
    describeModel();
  } catch (err) {
    showError(`Cannot list the models (${err.message}). Is the server running?`);
  }
}

function currentModel() { return state.models.get(el.model.value); }

function describeModel() {
  const m = currentModel();
  if (!m) return;
  el.modelDesc.textContent = `${m.description}. Input ${m.input_size[1]}×${m.input_size[0]}.`;
}

// -- sending an image ---------------------------------------------------------------------------

async function segment(blob, name, { keepView = false } = {}) {
  const seq = ++state.seq;
  state.source = { blob, name };
  clearError();
  setState("busy");
  el.busy.hidden = false;
  if (!keepView) {
    try {
      await showOriginal(blob);
    } catch (err) {
      // The browser may not decode every format the server does (e.g. TIFF): carry on.
      state.image = null;
    }
  }
  const params = requestParams();
  if (el.model.value) params.set("model", el.model.value);
  if (el.accurate.checked) params.set("accurate", "true");
  const form = new FormData();
  form.append("file", blob, name);
  const t0 = performance.now();
  let resp;
  let body = null;
  try {
    resp = await fetch(`/v1/segment?${params}`, {
      method: "POST", body: form, headers: apiHeaders({ Accept: "application/json" }),
    });
    body = await resp.json().catch(() => null);
  } catch (err) {
    if (seq === state.seq) { el.busy.hidden = true; showError(`Network error: ${err.message}`); }
    return false;
  }
  const roundTrip = performance.now() - t0;
  if (seq !== state.seq) return false; // a newer request superseded this one
  el.busy.hidden = true;
  if (!resp.ok) {
    resetResult();
    const detail = body && body.detail ? body.detail : `HTTP ${resp.status} ${resp.statusText}`;
    showError(`${resp.status === 503 ? "Server busy: " : ""}${detail}`);
    return false;
  }
  try {
    const picture = await loadImage(`data:image/png;base64,${body.image}`);
    if (body.output === "mask") {
      if (!state.image) state.image = picture; // nothing else to show the mask over
      state.mask = buildMask(picture, body);
      state.effect = null;
    } else {
      state.effect = picture;
      state.mask = null;
    }
  } catch (err) {
    showError(`Cannot draw the result: ${err.message}`);
    return false;
  }
  state.result = body;
  state.result.roundTrip = roundTrip;
  el.tip.hidden = true;
  el.saveMask.href = `data:image/png;base64,${body.image}`;
  el.saveMask.download = `${stem(name)}.${body.output === "mask" ? "mask" : el.effect.value}.png`;
  render();
  showLegend(body);
  showTimings(body, roundTrip);
  el.downloads.hidden = false;
  setState("done");
  return true;
}

function resetResult() {
  state.result = null;
  state.mask = null;
  state.effect = null;
  el.legend.replaceChildren(node("li", "empty", "No result."));
  el.timings.replaceChildren(node("dt", "", "Round trip"), node("dd", "", "–"));
  el.status.textContent = "";
  el.downloads.hidden = true;
  render();
}

function stem(name) { return (name || "image").replace(/\.[^.]+$/, ""); }

async function showOriginal(blob) {
  const url = URL.createObjectURL(blob);
  try {
    state.image = await loadImage(url); // <img> applies the EXIF orientation, as the server does
    await state.image.decode();
  } finally {
    URL.revokeObjectURL(url);
  }
  state.mask = null;
  state.effect = null;
  render();
}

// The mask PNG's colours are the class colours; unpainted classes become transparent.
function buildMask(maskImg, body) {
  const model = state.models.get(body.model);
  const colorToIndex = new Map();
  const transparent = new Set();
  const colors = model ? model.colors : body.classes.map((c) => c.color);
  const labels = model ? model.labels : body.classes.map((c) => c.label);
  colors.forEach((hex, i) => {
    const key = hexToKey(hex);
    const index = model ? i : body.classes[i].index;
    if (!colorToIndex.has(key)) colorToIndex.set(key, index);
    if (UNPAINTED.has(labels[i].toLowerCase())) transparent.add(key);
  });
  const canvas = document.createElement("canvas");
  canvas.width = maskImg.naturalWidth;
  canvas.height = maskImg.naturalHeight;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(maskImg, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const px = data.data;
  const paintable = new Uint8ClampedArray(px); // keep a copy with full alpha for hover lookups
  for (let i = 0; i < px.length; i += 4) {
    if (transparent.has(rgbKey(px[i], px[i + 1], px[i + 2]))) px[i + 3] = 0;
  }
  ctx.putImageData(data, 0, 0);
  return { canvas, pixels: paintable, width: canvas.width, height: canvas.height, colorToIndex };
}

// -- drawing ------------------------------------------------------------------------------------

function drawComposite(ctx, w, h) {
  ctx.clearRect(0, 0, w, h);
  ctx.globalAlpha = 1;
  if (state.image) ctx.drawImage(state.image, 0, 0, w, h);
  if (state.mask) {
    ctx.globalAlpha = Number(el.opacity.value) / 100;
    ctx.drawImage(state.mask.canvas, 0, 0, w, h);
    ctx.globalAlpha = 1;
  }
}

function render() {
  if (state.effect) return renderEffect();
  el.view.classList.remove("checker");
  const src = state.mask ? state.mask.canvas : state.image;
  if (!src) return;
  const fullW = state.mask ? state.mask.width : src.naturalWidth || src.width;
  const fullH = state.mask ? state.mask.height : src.naturalHeight || src.height;
  const scale = Math.min(1, MAX_VIEW_SIDE / Math.max(fullW, fullH));
  const w = Math.max(1, Math.round(fullW * scale));
  const h = Math.max(1, Math.round(fullH * scale));
  if (el.view.width !== w || el.view.height !== h) { el.view.width = w; el.view.height = h; }
  drawComposite(el.view.getContext("2d"), w, h);
  el.view.hidden = false;
  el.placeholder.hidden = true;
  if (!state.stream) el.video.hidden = true;
}

function renderEffect() {
  const src = state.effect;
  const scale = Math.min(1, MAX_VIEW_SIDE / Math.max(src.naturalWidth, src.naturalHeight));
  const w = Math.max(1, Math.round(src.naturalWidth * scale));
  const h = Math.max(1, Math.round(src.naturalHeight * scale));
  if (el.view.width !== w || el.view.height !== h) { el.view.width = w; el.view.height = h; }
  const ctx = el.view.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(src, 0, 0, w, h);
  el.view.classList.toggle("checker", el.effect.value === "cutout");
  el.view.hidden = false;
  el.placeholder.hidden = true;
  if (!state.stream) el.video.hidden = true;
}

function showEffectOptions() {
  el.effectOptions.hidden = !el.effect.value;
  el.effectColor.hidden = el.effect.value !== "color";
}

function showLegend(body) {
  el.legend.replaceChildren();
  if (!body.classes.length) {
    el.legend.append(node("li", "empty", "No classes found."));
    return;
  }
  for (const c of body.classes.slice(0, LEGEND_ROWS)) {
    const li = node("li");
    li.dataset.index = c.index;
    const unpainted = UNPAINTED.has(c.label.toLowerCase());
    if (unpainted) {
      li.classList.add("unpainted");
      li.title = "not painted in the overlay";
    }
    const swatch = node("span", "swatch");
    if (!unpainted) swatch.style.backgroundColor = c.color;
    const label = node("span", "label", c.label);
    const share = node("span", "share", fmtPct(c.fraction));
    const bar = node("span", "bar");
    const fill = node("i");
    fill.style.width = `${Math.max(1, c.fraction * 100)}%`;
    fill.style.backgroundColor = unpainted ? "#b8bdcc" : c.color;
    bar.append(fill);
    li.append(swatch, label, share, bar);
    el.legend.append(li);
  }
  const rest = body.classes.slice(LEGEND_ROWS);
  if (rest.length) {
    const share = rest.reduce((sum, c) => sum + c.fraction, 0);
    el.legend.append(node("li", "empty", `and ${rest.length} more, ${fmtPct(share)} in all`));
  }
  const painted = body.classes.filter((c) => !UNPAINTED.has(c.label.toLowerCase()));
  const top = painted.slice(0, 3).map((c) => `${c.label} ${fmtPct(c.fraction)}`).join(", ");
  el.status.replaceChildren(
    node("strong", "", top || "Only background found"),
    document.createTextNode(
      ` · ${body.width}×${body.height} · ${body.model}${body.accurate ? " (accurate)" : ""}`
    ),
  );
}

function showTimings(body, roundTrip) {
  const t = body.timings_ms;
  const rows = [
    ["Round trip", roundTrip, "main"],
    ["Server", t.server],
    ["Queue", t.queue],
    ["Decode", t.decode],
    ["Inference", t.invoke + t.preprocess],
    ["Post-processing", t.postprocess],
    ["Encoding", t.encode],
  ];
  el.timings.replaceChildren();
  for (const [name, ms, cls] of rows) {
    el.timings.append(node("dt", cls || "", name), node("dd", cls || "", fmtMs(ms)));
  }
  if (t.invocations > 1) {
    el.timings.append(node("dt", "", "Model runs"), node("dd", "", String(t.invocations)));
  }
}

// -- hovering: name the class under the pointer -------------------------------------------------

function classAt(event) {
  if (!state.mask || !state.result) return null;
  // The canvas is drawn with object-fit: contain, so find the picture's box inside the element.
  const rect = el.view.getBoundingClientRect();
  const scale = Math.min(rect.width / el.view.width, rect.height / el.view.height);
  const left = rect.left + (rect.width - el.view.width * scale) / 2;
  const top = rect.top + (rect.height - el.view.height * scale) / 2;
  const u = (event.clientX - left) / (el.view.width * scale);
  const v = (event.clientY - top) / (el.view.height * scale);
  const x = Math.floor(u * state.mask.width);
  const y = Math.floor(v * state.mask.height);
  if (x < 0 || y < 0 || x >= state.mask.width || y >= state.mask.height) return null;
  const i = (y * state.mask.width + x) * 4;
  const p = state.mask.pixels;
  const index = state.mask.colorToIndex.get(rgbKey(p[i], p[i + 1], p[i + 2]));
  if (index === undefined) return null;
  const model = state.models.get(state.result.model);
  return { index, label: model ? model.labels[index] : `class ${index}` };
}

function onHover(event) {
  const hit = classAt(event);
  for (const li of el.legend.children) {
    li.classList.toggle("hot", hit !== null && li.dataset.index === String(hit?.index));
  }
  if (!hit) { el.tip.hidden = true; return; }
  const stage = el.stage.getBoundingClientRect();
  el.tip.textContent = hit.label;
  el.tip.style.left = `${event.clientX - stage.left}px`;
  el.tip.style.top = `${event.clientY - stage.top}px`;
  el.tip.hidden = false;
}

// -- saving -------------------------------------------------------------------------------------

function saveOverlay() {
  if (!state.mask) return;
  const canvas = document.createElement("canvas");
  canvas.width = state.mask.width;
  canvas.height = state.mask.height;
  drawComposite(canvas.getContext("2d"), canvas.width, canvas.height);
  canvas.toBlob((blob) => {
    const a = node("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${stem(state.source?.name)}.overlay.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, "image/png");
}

// -- webcam -------------------------------------------------------------------------------------

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("No camera access here: browsers allow it only on https:// or http://localhost.");
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false,
    });
  } catch (err) {
    showError(`Cannot open the camera: ${err.message || err.name}`);
    return;
  }
  clearError();
  el.video.srcObject = state.stream;
  await el.video.play();
  el.video.hidden = false;
  el.view.hidden = true;
  el.placeholder.hidden = true;
  el.cameraBar.hidden = false;
}

function closeCamera() {
  el.live.checked = false;
  stopLive();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  el.video.srcObject = null;
  el.video.hidden = true;
  el.cameraBar.hidden = true;
  if (state.image) render(); else el.placeholder.hidden = false;
}

function grabFrame(maxSide) {
  const vw = el.video.videoWidth;
  const vh = el.video.videoHeight;
  if (!vw || !vh) return null;
  const scale = maxSide ? Math.min(1, maxSide / Math.max(vw, vh)) : 1;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(vw * scale);
  canvas.height = Math.round(vh * scale);
  canvas.getContext("2d").drawImage(el.video, 0, 0, canvas.width, canvas.height);
  return canvas;
}

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

async function captureFrame() {
  const frame = grabFrame(0);
  if (!frame) return;
  const blob = await canvasBlob(frame);
  closeCamera();
  await segment(blob, "webcam.jpg");
}

// Live mode: one WebSocket (/v1/live), options sent once, then one frame in flight at a time:
// the next frame leaves when the previous answer arrived, so nothing queues anywhere and the
// frame rate is what the server sustains. The answer is drawn over the frame it belongs to.
function liveOptions() {
  const opts = Object.fromEntries(requestParams());
  delete opts.embed;
  if (el.model.value) opts.model = el.model.value;
  if (el.accurate.checked) opts.accurate = "true";
  if (API_KEY) opts.api_key = API_KEY;
  return opts;
}

function liveLoop() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/live`);
  ws.binaryType = "blob";
  const live = { sent: null, frame: null, summary: null, done: [], latencies: [] };
  state.live = ws;
  clearError();

  async function sendFrame() {
    if (!el.live.checked || !state.stream || ws.readyState !== WebSocket.OPEN) return;
    const frame = grabFrame(LIVE_SIDE);
    if (!frame) { setTimeout(sendFrame, 100); return; }
    const blob = await canvasBlob(frame);
    // live mode may have been switched off while the frame was encoded
    if (!el.live.checked || ws.readyState !== WebSocket.OPEN) return;
    live.frame = frame;
    live.sent = performance.now();
    ws.send(blob);
  }

  function showRate(latency) {
    const now = performance.now();
    live.done.push(now);
    while (live.done.length && now - live.done[0] > 2000) live.done.shift();
    live.latencies.push(latency);
    if (live.latencies.length > 30) live.latencies.shift();
    const fps = live.done.length > 1 ? (live.done.length - 1) / ((now - live.done[0]) / 1000) : 0;
    const sorted = [...live.latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    el.fps.textContent = `${fps.toFixed(1)} fps · ${Math.round(median)} ms`;
    el.fps.dataset.fps = fps.toFixed(2);
    el.fps.dataset.latency = median.toFixed(1);
    el.fps.dataset.frames = String(Number(el.fps.dataset.frames || 0) + 1);
  }

  ws.addEventListener("open", () => ws.send(JSON.stringify(liveOptions())));
  ws.addEventListener("message", async (event) => {
    if (typeof event.data === "string") {
      const msg = JSON.parse(event.data);
      if (msg.error) { showError(msg.detail || msg.error); el.live.checked = false; ws.close(); return; }
      if (msg.ready) { sendFrame(); return; }
      live.summary = msg;
      return;
    }
    const body = live.summary;
    const frame = live.frame;
    const latency = performance.now() - live.sent;
    sendFrame(); // the next frame goes out while this answer is drawn
    if (!body || !frame) return;
    try {
      const url = URL.createObjectURL(event.data);
      const picture = await loadImage(url);
      URL.revokeObjectURL(url);
      state.image = frame;
      if (body.output === "mask") { state.mask = buildMask(picture, body); state.effect = null; }
      else { state.effect = picture; state.mask = null; }
      state.result = body;
      render();
      el.video.hidden = true;
      showLegend(body);
      showTimings(body, latency);
      showRate(latency);
    } catch (err) {
      showError(`Cannot draw the result: ${err.message}`);
    }
  });
  ws.addEventListener("close", () => {
    if (state.live === ws) state.live = null;
    el.live.checked = false;
    if (state.stream) { el.video.hidden = false; el.view.hidden = true; }
  });
  ws.addEventListener("error", () => showError("The live connection failed."));
}

function stopLive() {
  if (state.live) state.live.close();
  state.live = null;
}

// -- wiring -------------------------------------------------------------------------------------

function pickFile(file) {
  if (!file) return;
  if (state.stream) closeCamera();
  segment(file, file.name || "image");
}

function resend() {
  if (state.source && !state.stream) segment(state.source.blob, state.source.name, { keepView: true });
}

function wire() {
  el.file.addEventListener("change", () => { pickFile(el.file.files[0]); el.file.value = ""; });
  el.model.addEventListener("change", () => { describeModel(); resend(); });
  el.accurate.addEventListener("change", resend);
  el.effect.addEventListener("change", () => { showEffectOptions(); resend(); });
  el.effectColor.addEventListener("change", resend);
  el.invert.addEventListener("change", resend);
  el.opacity.addEventListener("input", () => {
    el.opacityValue.textContent = `${el.opacity.value}%`;
    render();
  });
  el.saveOverlay.addEventListener("click", saveOverlay);
  el.webcam.addEventListener("click", openCamera);
  el.capture.addEventListener("click", captureFrame);
  el.cameraClose.addEventListener("click", closeCamera);
  el.live.addEventListener("change", () => { if (el.live.checked) liveLoop(); else stopLive(); });
  el.view.addEventListener("mousemove", onHover);
  el.view.addEventListener("mouseleave", () => { el.tip.hidden = true; });

  let depth = 0; // dragenter/dragleave fire for every child element
  window.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; document.body.classList.add("dragging"); });
  window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; document.body.classList.remove("dragging"); } });
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    const files = [...(e.dataTransfer?.files || [])];
    pickFile(files.find((f) => f.type.startsWith("image/")) || files[0]);
  });
  window.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) pickFile(item.getAsFile());
  });
}

wire();
loadModels();
