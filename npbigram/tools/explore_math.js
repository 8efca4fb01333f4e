"use strict";
// npbigram explore, the page's data and its math (explore.js draws and explains it). Every
// number the page shows is computed from the table W it holds, in float64 as NumPy's float64;
// tables are flat row-major arrays (V*V,), entry (i, j) at i * V + j.
const started = performance.now();
const DATA = JSON.parse(document.getElementById("npbigram-data").textContent);
const V = DATA.labels.length;
const TYPED = { float32: Float32Array, float64: Float64Array, uint32: Uint32Array };
const $ = (id) => document.getElementById(id);

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

function mulberry32(seed) {  // a small seeded generator of uniforms in [0, 1)
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// (V,) -> p (V,): softmax((logits - max) / temperature) over the top k logits (ties at the k-th
// kept; topK 0: all); temperature 0 is its limit, all of p on the first largest logit
function nextTokenProbs(logits, temperature, topK) {
  if (temperature === 0) {
    const best = argmax(logits);
    return Float64Array.from(logits, (_, j) => +(j === best));
  }
  const kth = topK > 0 && topK < V ? Float64Array.from(logits).sort()[V - topK] : -Infinity;
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  return softmax(Float64Array.from(logits, (x) => (x < kth ? -Infinity : (x - max) / temperature)));
}

function draw(p, u) {  // inverse CDF: the first j with cdf_j > u * sum(p), of probability > 0
  const target = u * rowSum(p);
  let cdf = 0, lastNonzero = 0;
  for (let j = 0; j < V; j++) {
    if (p[j] > 0) lastNonzero = j;
    cdf += p[j];
    if (cdf > target && p[j] > 0) return j;
  }
  return lastNonzero;
}
