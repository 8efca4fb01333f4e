"use strict";
// npbigram explore: the page's script. Every number shown is computed here, in float64, from
// the table W the page holds; tables are flat row-major arrays, entry (i, j) at i * V + j.
const started = performance.now();
const DATA = JSON.parse(document.getElementById("npbigram-data").textContent);
const V = DATA.labels.length;
const TYPED = { float32: Float32Array, float64: Float64Array, uint32: Uint32Array };

function unpack(packed) {  // {dtype, base64} -> a typed array of that dtype
  const text = atob(packed.base64), bytes = new Uint8Array(text.length);
  for (let k = 0; k < text.length; k++) bytes[k] = text.charCodeAt(k);
  return new TYPED[packed.dtype](bytes.buffer);
}

// ---------------------------------------------------------------------------------------------
// the math

function row(table, i) { return table.subarray(i * V, (i + 1) * V); }  // (V*V,) -> (V,)

function logsumexp(logits) {  // (V,) -> ln sum_j exp(logits_j), the max subtracted first
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

function softmax(logits) {  // (V,) -> p (V,): p_j = exp(logits_j - logsumexp(logits))
  const lse = logsumexp(logits);
  return Float64Array.from(logits, (x) => Math.exp(x - lse));
}

function softmaxTable(W) {  // W (V*V,) -> P (V*V,), each row softmax(W_i); and lse (V,)
  const P = new Float64Array(V * V), lse = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    const logits = row(W, i);
    lse[i] = logsumexp(logits);
    for (let j = 0; j < V; j++) P[i * V + j] = Math.exp(logits[j] - lse[i]);
  }
  return { P, lse };
}

function countedTable(C) {  // C (V*V,) -> P^c (V*V,): C_ij / n_i, a row never seen uniform
  const P = new Float64Array(V * V);
  for (let i = 0; i < V; i++) {
    const n = rowSum(row(C, i));
    for (let j = 0; j < V; j++) P[i * V + j] = n > 0 ? C[i * V + j] / n : 1 / V;
  }
  return P;
}

function rowSum(values) { let s = 0; for (const x of values) s += x; return s; }

function argmax(values) {  // the first index of the largest value, as np.argmax
  let best = 0;
  for (let j = 1; j < values.length; j++) if (values[j] > values[best]) best = j;
  return best;
}

function topIds(values, k) {  // the k largest entries' ids, largest first (stable)
  return Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b).slice(0, k);
}

// one position of a batch: input x, target y, N positions in the batch
function positionForward(W, x, y, N) {
  const logits = row(W, x);                        // (V,)  W[x]
  const p = softmax(logits);                       // (V,)
  const loss = logsumexp(logits) - logits[y];      // -ln p[y], computed without rounding p
  const grad = Float64Array.from(p, (pj, j) => (pj - (j === y ? 1 : 0)) / N);  // (V,)
  return { logits, p, loss, grad };
}

// ---------------------------------------------------------------------------------------------
// drawing

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const LUT = Uint32Array.from({ length: 256 }, (_, k) => {  // 256 viridis colours as RGBA pixels
  const x = (k / 255) * (VIRIDIS.length - 1), a = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const [r, g, b] = VIRIDIS[a].map((c, n) => Math.round(c + (x - a) * (VIRIDIS[a + 1][n] - c)));
  return new Uint32Array(new Uint8Array([r, g, b, 255]).buffer)[0];  // in the platform's byte order
});

const label = (id) => DATA.labels[id];
const quoted = (id) => `'${label(id)}'`;
const fmt = (x, digits = 4) => x.toFixed(digits);
const count = (n) => n.toLocaleString("en-US");

const CELL = Math.max(1, Math.floor(560 / V));   // pixels per cell: 8 for V = 65, 1 for V = 800
const MARGIN = 34;                               // room for the labels

function drawHeatmap(canvas, P, vmax) {  // P (V*V,) on a square-root colour scale up to vmax
  canvas.width = canvas.height = MARGIN + V * CELL;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(V * CELL, V * CELL), side = V * CELL;
  const pixels = new Uint32Array(image.data.buffer);        // (side*side,) RGBA pixels
  for (let i = 0; i < V; i++) {
    for (let j = 0; j < V; j++) {
      const colour = LUT[Math.min(255, Math.round(255 * Math.sqrt(P[i * V + j] / vmax)))];
      for (let dy = 0; dy < CELL; dy++) {
        pixels.fill(colour, (i * CELL + dy) * side + j * CELL, (i * CELL + dy) * side + (j + 1) * CELL);
      }
    }
  }
  ctx.putImageData(image, MARGIN, MARGIN);
  ctx.fillStyle = "#333";
  ctx.font = `${Math.min(12, Math.max(9, CELL + 2))}px ui-monospace, monospace`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const widest = Math.max(...DATA.labels.map((text) => ctx.measureText(text).width));
  const across = Math.ceil((Math.min(widest, MARGIN) + 4) / CELL), down = Math.ceil(13 / CELL);
  for (let k = 0; k < V; k++) {  // every label that has room: the next token j along the top,
    const at = MARGIN + (k + 0.5) * CELL;  // the current token i down the side
    if (k % across === 0) ctx.fillText(label(k), at, MARGIN / 2, MARGIN - 2);
    if (k % down === 0) ctx.fillText(label(k), MARGIN / 2, at, MARGIN - 2);
  }
}

function cellAt(canvas, event) {  // the (i, j) under the pointer, or null
  const box = canvas.getBoundingClientRect();
  const i = Math.floor((event.clientY - box.top - MARGIN) / CELL);
  const j = Math.floor((event.clientX - box.left - MARGIN) / CELL);
  return i >= 0 && j >= 0 && i < V && j < V ? { i, j } : null;
}

function drawBars(canvas, values, { highlight = -1, signed = false } = {}) {  // (V,) as bars
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  let top = 0;
  for (const x of values) top = Math.max(top, Math.abs(x));
  top = top || 1;
  const bottom = signed ? -top : 0;                        // the bars span [bottom, top]
  const Y = (x) => h - ((x - bottom) / (top - bottom)) * h, zero = Y(0), width = w / values.length;
  ctx.fillStyle = "#ddd";
  ctx.fillRect(0, zero, w, 1);
  values.forEach((x, j) => {
    const y = Y(x);
    ctx.fillStyle = j === highlight ? "#d33" : "#3b528b";
    ctx.fillRect(j * width, Math.min(y, zero), Math.max(1, width - (width > 3)), Math.abs(zero - y));
  });
}

// ---------------------------------------------------------------------------------------------
// 1. the table

const W = unpack(DATA.weight);                       // (V*V,)
const { P, lse: LSE } = softmaxTable(W);            // (V*V,) softmax(W), (V,) logsumexp(W_i)
const C = DATA.counts && unpack(DATA.counts);        // (V*V,) train pair counts, or null
const PC = C && countedTable(C);                     // (V*V,) C_ij / n_i
const N_PAIRS = C ? rowSum(C) : 0;
const vmax = (table) => table.reduce((a, b) => Math.max(a, b), 0);

function rowLoss(i) {  // row i's part of the train loss: (1/N) sum_j C_ij (logsumexp(W_i) - W_ij)
  let sum = 0;
  for (let j = 0; j < V; j++) if (C[i * V + j]) sum += C[i * V + j] * (LSE[i] - W[i * V + j]);
  return sum / N_PAIRS;
}

function cellText(i, j) {
  let text = `after ${quoted(i)}, ${quoted(j)}: p = ${fmt(P[i * V + j])}`;
  if (C) {
    text += ` (counted ${fmt(PC[i * V + j])}, n = ${count(C[i * V + j])} of ${count(rowSum(row(C, i)))})`;
  }
  return text;
}

function showCell(i, j) {
  const readout = document.getElementById("cell-readout");
  readout.textContent = cellText(i, j);
  Object.assign(readout.dataset, { i, j, p: P[i * V + j], counted: C ? PC[i * V + j] : "" });
}

function showRow(i) {
  const panel = document.getElementById("row-panel");
  panel.hidden = false;
  const p = row(P, i);
  document.getElementById("row-title").textContent =
    `row ${i} ${quoted(i)}: the distribution of the token after ${quoted(i)}`;
  drawBars(document.getElementById("row-bars"), p);
  document.getElementById("row-top").replaceChildren(...topIds(p, 10).map((j) => {
    const item = document.createElement("li");
    item.textContent = `${quoted(j)} ${fmt(p[j])}` + (C ? ` (counted ${fmt(PC[i * V + j])})` : "");
    return item;
  }));
  const loss = document.getElementById("row-loss");
  if (C) {
    const n = rowSum(row(C, i)), part = rowLoss(i);
    loss.textContent = `${quoted(i)} starts ${count(n)} of the ${count(N_PAIRS)} train pairs: it adds ` +
      `(1/N) Σ_j C_ij (−ln p_ij) = ${fmt(part, 6)} nats to the train loss ${fmt(TRAIN_LOSS)} ` +
      `(floor ${fmt(DATA.floor)}, the counted table's)`;
    loss.dataset.loss = part;
  } else {
    const entropy = -p.reduce((s, pj) => s + (pj > 0 ? pj * Math.log(pj) : 0), 0);
    loss.textContent = `entropy of the row: ${fmt(entropy)} nats (no data known: its part of the ` +
      `loss needs npbigram explore --data)`;
  }
}

const TRAIN_LOSS = C ? Array.from({ length: V }, (_, i) => rowLoss(i)).reduce((a, b) => a + b, 0) : NaN;

function setUpTable() {
  const scale = Math.max(vmax(P), PC ? vmax(PC) : 0);
  const panels = [["heat-model", P]];
  if (PC) panels.push(["heat-counted", PC]);
  else document.getElementById("counted-figure").hidden = true;
  for (const [id, table] of panels) {
    const canvas = document.getElementById(id);
    drawHeatmap(canvas, table, scale);
    canvas.addEventListener("mousemove", (e) => { const c = cellAt(canvas, e); if (c) showCell(c.i, c.j); });
    canvas.addEventListener("click", (e) => { const c = cellAt(canvas, e); if (c) showRow(c.i); });
  }
}

// ---------------------------------------------------------------------------------------------
// 2. one batch

const XB = DATA.batch.xb, YB = DATA.batch.yb;        // (B,T) inputs and targets
const B = XB.length, T = XB[0].length, N = B * T;
const POSITIONS = XB.flatMap((xs, b) => xs.map((x, t) => ({ b, t, x, y: YB[b][t], ...positionForward(W, x, YB[b][t], N) })));
const BATCH_LOSS = POSITIONS.reduce((s, pos) => s + pos.loss, 0) / N;  // mean_n -ln p_n[y_n]

function readersOf(x) { return POSITIONS.filter((pos) => pos.x === x); }

function rowGradient(x) {  // dL/dW_x = sum of the gradient rows of the positions reading row x
  const sum = new Float64Array(V);
  for (const pos of readersOf(x)) pos.grad.forEach((g, j) => { sum[j] += g; });
  return sum;
}

function largest(values, k) {  // "'t' −0.0290, 'h' +0.0040": the k entries largest in size
  return topIds(values.map(Math.abs), k).map((j) => `${quoted(j)} ${values[j] >= 0 ? "+" : "−"}${fmt(Math.abs(values[j]))}`).join(", ");
}

function showPosition(b, t) {
  const pos = POSITIONS[b * T + t], panel = document.getElementById("position-panel");
  panel.hidden = false;
  document.querySelectorAll("#batch-grid td").forEach((td) => {
    td.classList.toggle("selected", +td.dataset.b === b && +td.dataset.t === t);
    td.classList.toggle("same-row", +td.dataset.x === pos.x);
  });
  document.getElementById("position-title").textContent = `position (b=${b}, t=${t}): input x = ` +
    `${quoted(pos.x)} (id ${pos.x}) reads row ${pos.x} of W; target y = ${quoted(pos.y)} (id ${pos.y})`;
  drawBars(document.getElementById("position-logits"), pos.logits, { highlight: pos.y, signed: true });
  drawBars(document.getElementById("position-probs"), pos.p, { highlight: pos.y });
  document.getElementById("position-loss").textContent = `p[y] = ${fmt(pos.p[pos.y], 6)}   ` +
    `−ln p[y] = ${fmt(pos.loss, 6)}  (one of the N = ${N} terms whose mean is the batch loss)`;
  drawBars(document.getElementById("position-grad"), pos.grad, { highlight: pos.y, signed: true });
  document.getElementById("position-grad-top").textContent = `largest entries: ${largest(pos.grad, 6)}`;
  const readers = readersOf(pos.x), shared = document.getElementById("row-grad");
  shared.hidden = readers.length < 2;
  const summed = rowGradient(pos.x);
  document.getElementById("row-grad-title").textContent = `row ${quoted(pos.x)} is read by ` +
    `${readers.length} positions (${readers.map((r) => `${r.b},${r.t}`).join("; ")}): dL/dW[${pos.x}] ` +
    `is the sum of their gradient rows (scatter-add). Largest: ${largest(summed, 4)}`;
  drawBars(document.getElementById("row-grad-bars"), summed, { signed: true });
  Object.assign(panel.dataset, { b, t, pTarget: pos.p[pos.y], loss: pos.loss, readers: readers.length,
    grad: JSON.stringify(Array.from(pos.grad)), rowGrad: JSON.stringify(Array.from(summed)) });
}

function setUpBatch() {
  document.getElementById("batch-about").textContent = `xb, yb (${B}, ${T}): ${DATA.batch.about}.`;
  const grid = document.getElementById("batch-grid");
  const header = grid.insertRow();
  header.append(document.createElement("th"), ...XB[0].map((_, t) => Object.assign(document.createElement("th"), { textContent: `t=${t}` })));
  XB.forEach((xs, b) => {
    const tr = grid.insertRow();
    tr.append(Object.assign(document.createElement("th"), { textContent: `b=${b}` }));
    xs.forEach((x, t) => {
      const td = tr.insertCell();
      Object.assign(td.dataset, { b, t, x });
      td.title = `input ${quoted(x)} (id ${x}) → target ${quoted(YB[b][t])} (id ${YB[b][t]})`;
      td.innerHTML = "<span class=input></span><span class=id></span><span class=target></span>";
      td.children[0].textContent = label(x);
      td.children[1].textContent = x;
      td.children[2].textContent = `→ ${label(YB[b][t])}`;
      if (readersOf(x).length > 1) {
        td.classList.add("shared");
        td.style.setProperty("--row-color", `hsl(${(x * 137) % 360} 70% 45%)`);
      }
      td.addEventListener("click", () => showPosition(b, t));
    });
  });
  const loss = document.getElementById("batch-loss");
  loss.textContent = `batch loss = mean of the ${N} terms −ln p[y] = ${fmt(BATCH_LOSS, 6)} (computed in ` +
    `this page); model(xb, yb) = ${fmt(DATA.batch.model_loss, 6)} (npbigram, when the page was written)`;
  Object.assign(loss.dataset, { loss: BATCH_LOSS, modelLoss: DATA.batch.model_loss });
}

// ---------------------------------------------------------------------------------------------
// 3. training

const SNAPSHOTS = DATA.snapshots.map((s) => ({ step: s.step, weight: s.weight }));  // unpacked when shown

function drawLosses(markStep) {
  const canvas = document.getElementById("loss-curve"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 44, H = DATA.history;
  ctx.clearRect(0, 0, w, h);
  if (!H.length) return;
  const losses = H.flatMap((e) => [e.train, e.val]).concat(DATA.floor ?? []);
  const lo = Math.min(...losses) - 0.05, hi = Math.max(...losses) + 0.05, last = H[H.length - 1].step || 1;
  const X = (step) => pad + (step / last) * (w - 2 * pad), Y = (loss) => h - pad + ((lo - loss) / (hi - lo)) * (h - 2 * pad);
  ctx.strokeStyle = "#999"; ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
  ctx.fillStyle = "#333"; ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(`step 0 … ${last}`, w / 2 - 30, h - 14);
  ctx.fillText(`${fmt(hi, 2)}`, 4, pad + 4); ctx.fillText(`${fmt(lo, 2)}`, 4, h - pad);
  const series = [["train", "#1f77b4"], ["val", "#ff7f0e"]];
  series.forEach(([split, colour], k) => {
    ctx.strokeStyle = ctx.fillStyle = colour; ctx.beginPath();
    H.forEach((e, n) => (n ? ctx.lineTo : ctx.moveTo).call(ctx, X(e.step), Y(e[split])));
    ctx.stroke();
    ctx.fillText(`${split} loss ${fmt(H[H.length - 1][split])}`, w - pad - 150, pad + 16 + 16 * k);
  });
  if (DATA.floor != null) {
    ctx.strokeStyle = ctx.fillStyle = "#000"; ctx.setLineDash([6, 4]); ctx.beginPath();
    ctx.moveTo(pad, Y(DATA.floor)); ctx.lineTo(w - pad, Y(DATA.floor)); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillText(`floor ${fmt(DATA.floor)}: the best train loss of any bigram`, pad + 8, Y(DATA.floor) - 6);
  }
  if (markStep != null) { ctx.fillStyle = "rgba(200,0,0,0.5)"; ctx.fillRect(X(markStep) - 1, pad, 2, h - 2 * pad); }
}

function showSnapshot(k) {
  const s = SNAPSHOTS[k], e = DATA.history.find((e) => e.step === s.step);
  s.P = s.P || softmaxTable(unpack(s.weight)).P;
  drawHeatmap(document.getElementById("heat-snapshot"), s.P, vmax(s.P));
  const readout = document.getElementById("snapshot-readout");
  readout.textContent = `step ${s.step}` + (e ? `: train loss ${fmt(e.train)}, val loss ${fmt(e.val)}` : "");
  readout.dataset.step = s.step;
  drawLosses(s.step);
}

function setUpTraining() {
  const H = DATA.history;
  document.getElementById("training-about").textContent = H.length
    ? `${H.length} evaluations of the run${DATA.floor != null ? `; the floor is the conditional entropy of ${DATA.data}'s train pairs` : ""}.` +
      (SNAPSHOTS.length ? ` The slider shows the table kept at ${SNAPSHOTS.length} of them.` : " The run kept no snapshots of the table: train with --snapshots N to see it at each evaluation.")
    : "The checkpoint holds no evaluations.";
  drawLosses(null);
  if (!SNAPSHOTS.length) return;
  document.getElementById("snapshot-panel").hidden = false;
  const slider = document.getElementById("snapshot-slider");
  slider.max = SNAPSHOTS.length - 1;
  slider.value = SNAPSHOTS.length - 1;
  slider.addEventListener("input", () => showSnapshot(+slider.value));
  showSnapshot(SNAPSHOTS.length - 1);
}

// ---------------------------------------------------------------------------------------------
// 4. generation

function mulberry32(seed) {  // a small seeded generator of uniforms in [0, 1)
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nextTokenProbs(logits, temperature, topK) {  // (V,) -> p (V,) of softmax(logits / temperature) over the top k
  if (temperature === 0) return Float64Array.from(logits, (_, j) => (j === argmax(logits) ? 1 : 0));
  const kth = topK > 0 && topK < V ? Float64Array.from(logits).sort()[V - topK] : -Infinity;
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const z = Float64Array.from(logits, (x) => (x < kth ? -Infinity : (x - max) / temperature));
  return softmax(z);
}

function draw(p, u) {  // inverse CDF: the first j with cdf_j > u * sum(p), never a zero-probability token
  const target = u * rowSum(p);
  let cdf = 0, lastNonzero = 0;
  for (let j = 0; j < V; j++) {
    if (p[j] > 0) lastNonzero = j;
    cdf += p[j];
    if (cdf > target && p[j] > 0) return j;
  }
  return lastNonzero;
}

const generation = { ids: [DATA.start_id], steps: [], random: null, timer: null };

function generatedText(ids) {
  if (DATA.tokenizer === "byte") return new TextDecoder().decode(Uint8Array.from(ids));
  return ids.map((id) => DATA.texts[id]).join("");
}

function resetGeneration() {
  stopRunning();
  generation.ids = [DATA.start_id];
  generation.steps = [];
  generation.random = mulberry32(Number(document.getElementById("seed").value) || 0);
  renderGeneration(-1);
}

function stepGeneration() {
  const temperature = Math.max(0, Number(document.getElementById("temperature").value) || 0);
  const topK = Math.max(0, Math.floor(Number(document.getElementById("top-k").value) || 0));
  const last = generation.ids[generation.ids.length - 1];
  const p = nextTokenProbs(row(W, last), temperature, topK);
  const drawn = draw(p, generation.random());
  generation.steps.push({ last, p, drawn, temperature, topK });
  generation.ids.push(drawn);
  renderGeneration(generation.steps.length - 1);
}

function renderGeneration(current) {
  const text = document.getElementById("gen-text");
  const spans = [Object.assign(document.createElement("span"), { textContent: generatedText([generation.ids[0]]), title: "the start token" })];
  generation.steps.forEach((s, k) => {
    const span = document.createElement("span");
    span.textContent = DATA.tokenizer === "byte" ? label(s.drawn) : DATA.texts[s.drawn];
    span.classList.toggle("current", k === current);
    span.addEventListener("click", () => renderGeneration(k));
    spans.push(span);
  });
  text.replaceChildren(...spans);
  text.dataset.ids = JSON.stringify(generation.ids);
  text.dataset.text = generatedText(generation.ids);
  const readout = document.getElementById("gen-readout"), s = generation.steps[current];
  if (!s) { readout.textContent = `start: ${quoted(DATA.start_id)}; press step or run`; drawBars(document.getElementById("gen-dist"), new Float64Array(V)); return; }
  readout.textContent = `draw ${current + 1}: after ${quoted(s.last)}, softmax(W[${s.last}] / ${s.temperature}) over ` +
    `${s.topK ? `the top ${s.topK}` : "all"} tokens; drew ${quoted(s.drawn)} with p = ${fmt(s.p[s.drawn])}; most likely: ` +
    topIds(s.p, 5).map((j) => `${quoted(j)} ${fmt(s.p[j], 3)}`).join(", ");
  drawBars(document.getElementById("gen-dist"), s.p, { highlight: s.drawn });
}

function stopRunning() {
  clearInterval(generation.timer);
  generation.timer = null;
  document.getElementById("gen-run").textContent = "run";
}

function setUpGeneration() {
  const range = document.getElementById("temperature-range"), number = document.getElementById("temperature");
  range.addEventListener("input", () => { number.value = range.value; });
  number.addEventListener("input", () => { range.value = number.value; });
  document.getElementById("seed").value = DATA.seed;
  document.getElementById("seed").addEventListener("change", resetGeneration);
  document.getElementById("gen-reset").addEventListener("click", resetGeneration);
  document.getElementById("gen-step").addEventListener("click", stepGeneration);
  document.getElementById("gen-run").addEventListener("click", (e) => {
    if (generation.timer) return stopRunning();
    e.target.textContent = "stop";
    generation.timer = setInterval(stepGeneration, 50);
  });
  resetGeneration();
}

// ---------------------------------------------------------------------------------------------

document.getElementById("title").textContent = `npbigram explore: ${DATA.name}`;
document.getElementById("about").textContent = `step ${DATA.step}; ${DATA.tokenizer} tokenizer, V = ${V} ` +
  `tokens; ${DATA.data ? `data: ${DATA.data} (${count(N_PAIRS)} train pairs)` : "no data known (npbigram explore --data FILE adds the counts)"}.`;
setUpTable();
setUpBatch();
setUpTraining();
setUpGeneration();
const renderMs = performance.now() - started;
window.npbigram = {
  V, labels: DATA.labels, renderMs, batchLoss: BATCH_LOSS,
  cellCenter(canvasId, i, j) {  // where (i, j) of a heatmap is on the page, for a pointer
    const box = document.getElementById(canvasId).getBoundingClientRect();
    return { x: box.left + MARGIN + (j + 0.5) * CELL, y: box.top + MARGIN + (i + 0.5) * CELL };
  },
};
document.body.dataset.ready = "1";
