// npbigram explore, the page itself: drawing, and its four sections (after explore_math.js).

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
        const start = (i * CELL + dy) * side + j * CELL;  // row i * CELL + dy, column j * CELL
        pixels.fill(colour, start, start + CELL);
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
    const gap = width > 3 ? 1 : 0;  // between bars wide enough
    ctx.fillRect(j * width, Math.min(y, zero), Math.max(1, width - gap), Math.abs(zero - y));
  });
}

// ---------------------------------------------------------------------------------------------
// 1. the table

const W = unpack(DATA.weight);                       // (V*V,)
const { P, lse: LSE } = softmaxTable(W);             // (V*V,) softmax(W), (V,) logsumexp(W_i)
const C = DATA.counts && unpack(DATA.counts);        // (V*V,) train pair counts, or null
const PC = C && countedTable(C);                     // (V*V,) C_ij / n_i
const N_PAIRS = C ? rowSum(C) : 0;
const vmax = (table) => table.reduce((a, b) => Math.max(a, b), 0);

function rowLoss(i) {  // row i's part of the train loss: (1/N) sum_j C_ij (logsumexp(W_i) - W_ij)
  let sum = 0;
  for (let j = 0; j < V; j++) if (C[i * V + j]) sum += C[i * V + j] * (LSE[i] - W[i * V + j]);
  return sum / N_PAIRS;
}

const TRAIN_LOSS = C ? rowSum(Array.from({ length: V }, (_, i) => rowLoss(i))) : NaN;

function cellText(i, j) {  // "after 'q', 'u': p = 0.9503 (counted 1.0000, n = 563 of 563)"
  const text = `after ${quoted(i)}, ${quoted(j)}: p = ${fmt(P[i * V + j])}`;
  if (!C) return text;
  return `${text} (counted ${fmt(PC[i * V + j])}, n = ${count(C[i * V + j])} of ` +
    `${count(rowSum(row(C, i)))})`;
}

function showCell(i, j) {
  const readout = $("cell-readout");
  readout.textContent = cellText(i, j);
  Object.assign(readout.dataset, { i, j, p: P[i * V + j], counted: C ? PC[i * V + j] : "" });
}

function showRow(i) {
  const p = row(P, i), loss = $("row-loss");
  $("row-panel").hidden = false;
  $("row-title").textContent = `row ${i} ${quoted(i)}: the distribution of the next token`;
  drawBars($("row-bars"), p);
  $("row-top").replaceChildren(...topIds(p, 10).map((j) => {
    const item = document.createElement("li");
    item.textContent = `${quoted(j)} ${fmt(p[j])}` + (C ? ` (counted ${fmt(PC[i * V + j])})` : "");
    return item;
  }));
  if (C) {
    const part = rowLoss(i);
    loss.textContent = `${quoted(i)} starts ${count(rowSum(row(C, i)))} of the ${count(N_PAIRS)} ` +
      `train pairs: it adds (1/N) Σ_j C_ij (−ln p_ij) = ${fmt(part, 6)} nats to the train ` +
      `loss ${fmt(TRAIN_LOSS)} (floor ${fmt(DATA.floor)}, the counted table's)`;
    loss.dataset.loss = part;
  } else {
    const entropy = -p.reduce((sum, pj) => sum + (pj > 0 ? pj * Math.log(pj) : 0), 0);
    loss.textContent = `entropy of the row: ${fmt(entropy)} nats (no data known: its part of ` +
      `the loss needs npbigram explore --data)`;
  }
}

function setUpTable() {
  const scale = Math.max(vmax(P), PC ? vmax(PC) : 0);  // one colour scale for both panels
  const panels = PC ? [["heat-model", P], ["heat-counted", PC]] : [["heat-model", P]];
  $("counted-figure").hidden = !PC;
  for (const [id, table] of panels) {
    const canvas = $(id);
    drawHeatmap(canvas, table, scale);
    canvas.addEventListener("mousemove", (e) => {
      const cell = cellAt(canvas, e);
      if (cell) showCell(cell.i, cell.j);
    });
    canvas.addEventListener("click", (e) => {
      const cell = cellAt(canvas, e);
      if (cell) showRow(cell.i);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 2. one batch

const XB = DATA.batch.xb, YB = DATA.batch.yb;        // (B,T) inputs and targets
const B = XB.length, T = XB[0].length, N = B * T;
const POSITIONS = XB.flat().map((x, n) => {          // (N,) in the order of logits.view(N, V)
  const b = Math.floor(n / T), t = n % T, y = YB[b][t];
  return { b, t, x, y, ...positionForward(W, x, y, N) };
});
const BATCH_LOSS = rowSum(POSITIONS.map((pos) => pos.loss)) / N;  // mean_n -ln p_n[y_n]

function readersOf(x) { return POSITIONS.filter((pos) => pos.x === x); }

function rowGradient(x) {  // dL/dW_x = sum of the gradient rows of the positions reading row x
  const sum = new Float64Array(V);
  for (const pos of readersOf(x)) pos.grad.forEach((g, j) => { sum[j] += g; });
  return sum;
}

function largest(values, k) {  // "'t' −0.0290, 'h' +0.0040": the k entries largest in size
  const signed = (x) => `${x >= 0 ? "+" : "−"}${fmt(Math.abs(x))}`;
  return topIds(values.map(Math.abs), k).map((j) => `${quoted(j)} ${signed(values[j])}`).join(", ");
}

function showPosition(b, t) {
  const pos = POSITIONS[b * T + t], readers = readersOf(pos.x), summed = rowGradient(pos.x);
  document.querySelectorAll("#batch-grid td").forEach((td) => {
    td.classList.toggle("selected", +td.dataset.b === b && +td.dataset.t === t);
    td.classList.toggle("same-row", +td.dataset.x === pos.x);
  });
  $("position-panel").hidden = false;
  $("position-title").textContent = `position (b=${b}, t=${t}): input x = ${quoted(pos.x)} ` +
    `(id ${pos.x}) reads row ${pos.x} of W; target y = ${quoted(pos.y)} (id ${pos.y})`;
  drawBars($("position-logits"), pos.logits, { highlight: pos.y, signed: true });
  drawBars($("position-probs"), pos.p, { highlight: pos.y });
  $("position-loss").textContent = `p[y] = ${fmt(pos.p[pos.y], 6)}   −ln p[y] = ` +
    `${fmt(pos.loss, 6)}  (one of the N = ${N} terms whose mean is the batch loss)`;
  drawBars($("position-grad"), pos.grad, { highlight: pos.y, signed: true });
  $("position-grad-top").textContent = `largest entries: ${largest(pos.grad, 6)}`;
  $("row-grad").hidden = readers.length < 2;
  $("row-grad-title").textContent = `row ${quoted(pos.x)} is read by ${readers.length} positions ` +
    `(${readers.map((r) => `${r.b},${r.t}`).join("; ")}): dL/dW[${pos.x}] is the sum of their ` +
    `gradient rows (scatter-add). Largest: ${largest(summed, 4)}`;
  drawBars($("row-grad-bars"), summed, { signed: true });
  Object.assign($("position-panel").dataset, {
    b, t, pTarget: pos.p[pos.y], loss: pos.loss, readers: readers.length,
    grad: JSON.stringify(Array.from(pos.grad)), rowGrad: JSON.stringify(Array.from(summed)),
  });
}

function element(tag, text) {  // a new element holding `text`
  return Object.assign(document.createElement(tag), { textContent: text });
}

function setUpBatch() {
  $("batch-about").textContent = `xb, yb (${B}, ${T}): ${DATA.batch.about}.`;
  const grid = $("batch-grid");
  grid.insertRow().append(element("th", ""), ...XB[0].map((_, t) => element("th", `t=${t}`)));
  XB.forEach((xs, b) => {
    const tr = grid.insertRow();
    tr.append(element("th", `b=${b}`));
    xs.forEach((x, t) => {
      const td = tr.insertCell(), y = YB[b][t];
      Object.assign(td.dataset, { b, t, x });
      td.title = `input ${quoted(x)} (id ${x}) → target ${quoted(y)} (id ${y})`;
      td.append(element("span", label(x)), element("span", x), element("span", `→ ${label(y)}`));
      td.children[1].className = "id";
      td.children[2].className = "target";
      if (readersOf(x).length > 1) {  // a row several positions read: one colour per row
        td.classList.add("shared");
        td.style.setProperty("--row-color", `hsl(${(x * 137) % 360} 70% 45%)`);
      }
      td.addEventListener("click", () => showPosition(b, t));
    });
  });
  const loss = $("batch-loss");
  loss.textContent = `batch loss = mean of the ${N} terms −ln p[y] = ${fmt(BATCH_LOSS, 6)} ` +
    `(computed in this page); model(xb, yb) = ${fmt(DATA.batch.model_loss, 6)} (npbigram, when ` +
    `the page was written)`;
  Object.assign(loss.dataset, { loss: BATCH_LOSS, modelLoss: DATA.batch.model_loss });
}

// ---------------------------------------------------------------------------------------------
// 3. training

const SNAPSHOTS = DATA.snapshots.map((s) => ({ step: s.step, weight: s.weight }));  // P on demand

function drawLosses(markStep) {  // train and val loss against step, the floor dashed
  const canvas = $("loss-curve"), ctx = canvas.getContext("2d"), H = DATA.history;
  const w = canvas.width, h = canvas.height, pad = 44;
  ctx.clearRect(0, 0, w, h);
  if (!H.length) return;
  const losses = H.flatMap((e) => [e.train, e.val]).concat(DATA.floor ?? []);
  const lo = Math.min(...losses) - 0.05, hi = Math.max(...losses) + 0.05;
  const last = H[H.length - 1].step || 1;
  const X = (step) => pad + (step / last) * (w - 2 * pad);
  const Y = (loss) => h - pad - ((loss - lo) / (hi - lo)) * (h - 2 * pad);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
  ctx.fillStyle = "#333";
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(`step 0 … ${last}`, w / 2 - 30, h - 14);
  ctx.fillText(fmt(hi, 2), 4, pad + 4);
  ctx.fillText(fmt(lo, 2), 4, h - pad);
  [["train", "#1f77b4"], ["val", "#ff7f0e"]].forEach(([split, colour], k) => {
    ctx.strokeStyle = ctx.fillStyle = colour;
    ctx.beginPath();
    H.forEach((e, n) => (n ? ctx.lineTo : ctx.moveTo).call(ctx, X(e.step), Y(e[split])));
    ctx.stroke();
    ctx.fillText(`${split} loss ${fmt(H[H.length - 1][split])}`, w - pad - 150, pad + 16 + 16 * k);
  });
  if (DATA.floor != null) {
    ctx.strokeStyle = ctx.fillStyle = "#000";
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(pad, Y(DATA.floor));
    ctx.lineTo(w - pad, Y(DATA.floor));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillText(`floor ${fmt(DATA.floor)}: the best train loss of any bigram`, pad + 8,
      Y(DATA.floor) - 6);
  }
  if (markStep != null) {
    ctx.fillStyle = "rgba(200, 0, 0, 0.5)";
    ctx.fillRect(X(markStep) - 1, pad, 2, h - 2 * pad);
  }
}

function showSnapshot(k) {
  const s = SNAPSHOTS[k], e = DATA.history.find((e) => e.step === s.step);
  s.P = s.P || softmaxTable(unpack(s.weight)).P;
  drawHeatmap($("heat-snapshot"), s.P, vmax(s.P));
  const readout = $("snapshot-readout");
  readout.textContent = `step ${s.step}` +
    (e ? `: train loss ${fmt(e.train)}, val loss ${fmt(e.val)}` : "");
  readout.dataset.step = s.step;
  drawLosses(s.step);
}

function setUpTraining() {
  const H = DATA.history, floor = DATA.floor != null
    ? `; the floor is the conditional entropy of ${DATA.data}'s train pairs` : "";
  const kept = SNAPSHOTS.length ? ` The slider shows the table kept at ${SNAPSHOTS.length} of them.`
    : " The run kept no snapshots of the table: train with --snapshots N to see it at each one.";
  $("training-about").textContent = H.length ? `${H.length} evaluations of the run${floor}.${kept}`
    : "The checkpoint holds no evaluations.";
  drawLosses(null);
  if (!SNAPSHOTS.length) return;
  const slider = $("snapshot-slider");
  $("snapshot-panel").hidden = false;
  slider.max = slider.value = SNAPSHOTS.length - 1;
  slider.addEventListener("input", () => showSnapshot(+slider.value));
  showSnapshot(SNAPSHOTS.length - 1);
}

// ---------------------------------------------------------------------------------------------
// 4. generation

const generation = { ids: [DATA.start_id], steps: [], random: null, timer: null };

function generatedText(ids) {  // a byte model's bytes as UTF-8, a char model's characters
  if (DATA.tokenizer === "byte") return new TextDecoder().decode(Uint8Array.from(ids));
  return ids.map((id) => DATA.texts[id]).join("");
}

function resetGeneration() {
  stopRunning();
  generation.ids = [DATA.start_id];
  generation.steps = [];
  generation.random = mulberry32(Number($("seed").value) || 0);
  renderGeneration(-1);
}

function stepGeneration() {  // one draw from the last token's row
  const temperature = Math.max(0, Number($("temperature").value) || 0);
  const topK = Math.max(0, Math.floor(Number($("top-k").value) || 0));
  const last = generation.ids[generation.ids.length - 1];
  const p = nextTokenProbs(row(W, last), temperature, topK);
  const drawn = draw(p, generation.random());
  generation.steps.push({ last, p, drawn, temperature, topK });
  generation.ids.push(drawn);
  renderGeneration(generation.steps.length - 1);
}

function renderGeneration(current) {  // the text, and the distribution of draw `current`
  const spans = [element("span", generatedText([generation.ids[0]]))];
  generation.steps.forEach((s, k) => {
    const span = element("span", DATA.tokenizer === "byte" ? label(s.drawn) : DATA.texts[s.drawn]);
    span.classList.toggle("current", k === current);
    span.addEventListener("click", () => renderGeneration(k));
    spans.push(span);
  });
  const text = $("gen-text"), readout = $("gen-readout"), s = generation.steps[current];
  text.replaceChildren(...spans);
  text.dataset.ids = JSON.stringify(generation.ids);
  text.dataset.text = generatedText(generation.ids);
  if (!s) {
    readout.textContent = `start: ${quoted(DATA.start_id)}; press step or run`;
    drawBars($("gen-dist"), new Float64Array(V));
    return;
  }
  readout.textContent = `draw ${current + 1}: after ${quoted(s.last)}, softmax(W[${s.last}] / ` +
    `${s.temperature}) over ${s.topK ? `the top ${s.topK}` : "all"} tokens; drew ` +
    `${quoted(s.drawn)} with p = ${fmt(s.p[s.drawn])}; most likely: ` +
    topIds(s.p, 5).map((j) => `${quoted(j)} ${fmt(s.p[j], 3)}`).join(", ");
  drawBars($("gen-dist"), s.p, { highlight: s.drawn });
}

function stopRunning() {
  clearInterval(generation.timer);
  generation.timer = null;
  $("gen-run").textContent = "run";
}

function setUpGeneration() {
  const range = $("temperature-range"), number = $("temperature");
  range.addEventListener("input", () => { number.value = range.value; });
  number.addEventListener("input", () => { range.value = number.value; });
  $("seed").value = DATA.seed;
  $("seed").addEventListener("change", resetGeneration);
  $("gen-reset").addEventListener("click", resetGeneration);
  $("gen-step").addEventListener("click", stepGeneration);
  $("gen-run").addEventListener("click", (e) => {
    if (generation.timer) return stopRunning();
    e.target.textContent = "stop";
    generation.timer = setInterval(stepGeneration, 50);
  });
  resetGeneration();
}

// ---------------------------------------------------------------------------------------------

$("title").textContent = `npbigram explore: ${DATA.name}`;
$("about").textContent = `step ${DATA.step}; ${DATA.tokenizer} tokenizer, V = ${V} tokens; ` +
  (DATA.data ? `data: ${DATA.data} (${count(N_PAIRS)} train pairs).`
    : "no data known (npbigram explore --data FILE adds the counts).");
setUpTable();
setUpBatch();
setUpTraining();
setUpGeneration();
window.npbigram = {  // for tests and the curious: what the page computed
  V, labels: DATA.labels, renderMs: performance.now() - started, batchLoss: BATCH_LOSS,
  cellCenter(canvasId, i, j) {  // where cell (i, j) of a heatmap is in the window
    const box = $(canvasId).getBoundingClientRect();
    return { x: box.left + MARGIN + (j + 0.5) * CELL, y: box.top + MARGIN + (i + 0.5) * CELL };
  },
};
document.body.dataset.ready = "1";
