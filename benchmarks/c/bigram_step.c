/*
 * One AdamW training step of the bigram language model, written by hand in C with OpenMP in
 * the style of llm.c: forward, loss, backward and AdamW in one parallel pass over the rows of
 * the table. benchmarks/peers.py builds it (gcc -O3 -march=native -fopenmp -fno-math-errno
 * -shared -fPIC) and calls bigram_step() through ctypes; it is the practical limit a compiled
 * step is judged by.
 *
 * The model: W is the (V, V) float32 table, row i the logits of the token after token i. A
 * batch is N = B*T pairs (x_n, y_n) of input and target ids. W does not change within a step,
 * so every position with input i has the same softmax row p_i = softmax(W[i]), and with
 * n_i = #{n : x_n = i} and C_i[j] = #{n : (x_n, y_n) = (i, j)}:
 *
 *     loss  = (1/N) sum_n (lse(W[x_n]) - W[x_n, y_n])       lse = log sum_j exp
 *           = (1/N) sum_i (n_i lse(W[i]) - sum_{n: x_n = i} W[i, y_n])
 *     dW[i] = (n_i p_i - C_i) / N
 *
 * The step, all inside one OpenMP parallel region:
 *   1. group the positions by input id (a parallel counting sort: each thread counts its
 *      share of the batch, one prefix sum gives every (id, thread) its place, each thread
 *      writes its targets there), so row i's targets lie in one run;
 *   2. each thread takes whole rows i: the row's max and exponentials (only where n_i > 0),
 *      its share of the loss, its gradient in a scratch row, then AdamW on the row. W, m and
 *      v are read and written once per step; the gradient never leaves the thread's cache.
 *
 * AdamW is torch.optim.AdamW's (decoupled weight decay, bias-corrected moments), at step t:
 *     W <- W (1 - lr wd);  m <- m + (1 - b1)(g - m);  v <- b2 v + (1 - b2) g^2
 *     W <- W - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Below this many elements of work (N positions + V^2 table entries) one thread is faster:
 * waking the team and its barriers cost more than the step. */
#define PARALLEL_MIN_WORK (1 << 17)

/* Everything a step reads and writes; peers.py fills it once (ctypes.Structure, same order). */
typedef struct {
    float *weight, *m, *v;            /* (V, V) row-major: the table and AdamW's moments */
    const int64_t *inputs, *targets;  /* (N,) ids in [0, V) */
    int64_t n_positions;              /* N = B*T */
    int64_t vocab_size;               /* V */
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;                     /* AdamW's t: steps taken, incremented by bigram_step */
    float loss;                       /* the mean cross-entropy of the last step's forward */
    /* scratch: the targets of the positions with input i are
     * targets_by_row[row_start[i] .. row_start[i + 1] - 1] */
    int64_t *row_start;               /* (V + 1,) */
    int64_t *targets_by_row;          /* (N,) */
} BigramStep;

/* exp(x) for float32 x <= 0 (the rows are shifted by their max): x = n ln2 + r, |r| <= ln2/2,
 * exp(x) = 2^n (1 + r + r^2 P(r)) with Cephes expf's P, as npbigram's exp_f32. n is rounded by
 * truncating x/ln2 - 1/2 (x <= 0), not by floorf, which gcc does not vectorize; there are no
 * branches, so gcc vectorizes the loops that call it. 2^n is applied in two halves, so neither
 * factor underflows before the product does (results below 2^-126 are subnormal, zero below
 * exp(-104)). */
static inline float exp_nonpositive(float x) {
    x = x > -104.0f ? x : -104.0f;
    const int32_t k = (int32_t)fmaf(x, 1.44269504088896341f, -0.5f); /* nearest to x/ln2 */
    const float n = (float)k;
    const float r = fmaf(n, 2.12194440e-4f, fmaf(n, -0.693359375f, x)); /* x - n ln2 */
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    const int32_t half = k >> 1;
    union { int32_t bits; float value; } a, b; /* 2^half and 2^(k - half) */
    a.bits = (half + 127) << 23;
    b.bits = (k - half + 127) << 23;
    return p * a.value * b.value;
}

/* AdamW on one row of V entries with gradient g (constants of step t precomputed). */
static inline void adamw_row(float *restrict w, float *restrict m, float *restrict v,
                             const float *restrict g, int64_t V, float decay, float one_m_b1,
                             float beta2, float one_m_b2, float step_size, float inv_sqrt_bc2,
                             float eps) {
#pragma omp simd
    for (int64_t j = 0; j < V; j++) {
        float mj = m[j] + one_m_b1 * (g[j] - m[j]);
        float vj = beta2 * v[j] + one_m_b2 * g[j] * g[j];
        m[j] = mj;
        v[j] = vj;
        w[j] = w[j] * decay - step_size * mj / (sqrtf(vj) * inv_sqrt_bc2 + eps);
    }
}

/* Set OpenMP's thread count for the steps that follow. */
void bigram_set_threads(int threads) { omp_set_num_threads(threads); }

/* One training step of s (see the top of the file). Returns 0, or -1 if its scratch memory
 * could not be allocated (nothing is changed then). */
int bigram_step(BigramStep *s) {
    const int64_t V = s->vocab_size, N = s->n_positions;
    const int max_threads = omp_get_max_threads();
    /* count[t * stride + i]: positions with input i in thread t's share of the batch; each
     * thread's counts start on their own 64-byte cache line, so no two threads share one */
    const int64_t stride = (V + 7) / 8 * 8;
    int64_t *count = calloc((size_t)max_threads * (size_t)stride, sizeof(int64_t));
    float *grad_rows = malloc((size_t)max_threads * (size_t)stride * sizeof(float));
    if (count == NULL || grad_rows == NULL) {
        free(count);
        free(grad_rows);
        return -1;
    }
    s->step += 1;
    const double t = (double)s->step;
    const float decay = 1.0f - s->lr * s->weight_decay;
    const float step_size = (float)(s->lr / (1.0 - pow(s->beta1, t)));
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(s->beta2, t)));
    const float one_m_b1 = 1.0f - s->beta1, one_m_b2 = 1.0f - s->beta2;
    const float inv_n = 1.0f / (float)N;
    const int64_t *inputs = s->inputs, *targets = s->targets;
    int64_t *row_start = s->row_start, *targets_by_row = s->targets_by_row;
    double loss_sum = 0.0; /* sum_n (lse(W[x_n]) - W[x_n, y_n]) */

#pragma omp parallel reduction(+ : loss_sum) if (N + V * V >= PARALLEL_MIN_WORK)
    {
        const int tid = omp_get_thread_num(), threads = omp_get_num_threads();
        const int64_t lo = N * tid / threads, hi = N * (tid + 1) / threads;
        int64_t *my_count = count + tid * stride;
        float *g = grad_rows + tid * stride; /* the gradient of the row this thread is on */

        /* 1. the counting sort of the positions by input id */
        for (int64_t n = lo; n < hi; n++) my_count[inputs[n]]++;
#pragma omp barrier
#pragma omp single
        { /* exclusive prefix sum in (id, thread) order: each count becomes its write cursor */
            int64_t start = 0;
            for (int64_t i = 0; i < V; i++) {
                row_start[i] = start;
                for (int u = 0; u < threads; u++) {
                    int64_t c = count[u * stride + i];
                    count[u * stride + i] = start;
                    start += c;
                }
            }
            row_start[V] = start;
        } /* the implicit barrier of single: every cursor is ready */
        for (int64_t n = lo; n < hi; n++) targets_by_row[my_count[inputs[n]]++] = targets[n];
#pragma omp barrier

        /* 2. each row: forward, loss, gradient, AdamW */
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < V; i++) {
            float *w = s->weight + i * V;
            const int64_t *row_targets = targets_by_row + row_start[i];
            const int64_t n_i = row_start[i + 1] - row_start[i];
            if (n_i == 0) {
                memset(g, 0, (size_t)V * sizeof(float)); /* no position reads row i */
            } else {
                float row_max = w[0];
#pragma omp simd reduction(max : row_max)
                for (int64_t j = 1; j < V; j++) row_max = w[j] > row_max ? w[j] : row_max;
                float total = 0.0f;
#pragma omp simd reduction(+ : total)
                for (int64_t j = 0; j < V; j++) {
                    g[j] = exp_nonpositive(w[j] - row_max);
                    total += g[j];
                }
                /* loss: n_i lse_i less the logits of the row's targets (before the update) */
                loss_sum += (double)n_i * ((double)row_max + log((double)total));
                for (int64_t k = 0; k < n_i; k++) loss_sum -= w[row_targets[k]];
                /* gradient: n_i p_i / N, less 1/N at each target */
                const float scale = (float)n_i * inv_n / total;
                for (int64_t j = 0; j < V; j++) g[j] *= scale;
                for (int64_t k = 0; k < n_i; k++) g[row_targets[k]] -= inv_n;
            }
            adamw_row(w, s->m + i * V, s->v + i * V, g, V, decay, one_m_b1, s->beta2, one_m_b2,
                      step_size, inv_sqrt_bc2, s->eps);
        }
    }
    free(count);
    free(grad_rows);
    s->loss = (float)(loss_sum / (double)N);
    return 0;
}
