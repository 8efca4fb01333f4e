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
 *           = (1/N) sum_i (n_i lse(W[i]) - sum_j C_i[j] W[i, j])
 *     dW[i] = (n_i p_i - C_i) / N
 *
 * The step, all inside one OpenMP parallel region:
 *   1. group the batch by input id, one of two ways:
 *      - pair counts, where a V x V table per thread costs no more than the batch (small V,
 *        large batch): each thread counts the (x, y) pairs of its share of the batch;
 *      - else a parallel counting sort: each thread counts the input ids of its share, one
 *        prefix sum gives every (id, thread) its place, each thread writes its targets
 *        there, so row i's targets lie in one run;
 *   2. each thread takes whole rows i: the row's counts C_i (summed over the threads' tables,
 *      or counted from its run of targets), its max and exponentials (only where n_i > 0),
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

/* Step 1 by pair counts: pairs[tid][x * V + y] += 1 over this thread's positions [lo, hi). */
static void count_pairs(const BigramStep *s, int32_t *my_pairs, int64_t lo, int64_t hi) {
    const int64_t V = s->vocab_size;
    for (int64_t n = lo; n < hi; n++) my_pairs[s->inputs[n] * V + s->targets[n]]++;
}

/* Step 1 by a counting sort of the positions by input id; count holds one row of `stride`
 * per thread. Called by every thread of the team: it has barriers. */
static void sort_by_input(BigramStep *s, int64_t *count, int64_t stride, int64_t lo,
                          int64_t hi) {
    const int64_t V = s->vocab_size;
    const int tid = omp_get_thread_num(), threads = omp_get_num_threads();
    int64_t *my_count = count + tid * stride;
    for (int64_t n = lo; n < hi; n++) my_count[s->inputs[n]]++;
#pragma omp barrier
#pragma omp single
    { /* exclusive prefix sum in (id, thread) order: each count becomes its write cursor */
        int64_t start = 0;
        for (int64_t i = 0; i < V; i++) {
            s->row_start[i] = start;
            for (int u = 0; u < threads; u++) {
                int64_t c = count[u * stride + i];
                count[u * stride + i] = start;
                start += c;
            }
        }
        s->row_start[V] = start;
    } /* the implicit barrier of single: every cursor is ready */
    for (int64_t n = lo; n < hi; n++) s->targets_by_row[my_count[s->inputs[n]]++] = s->targets[n];
}

/* One training step of s (see the top of the file). Returns 0, or -1 if its scratch memory
 * could not be allocated (nothing is changed then). */
int bigram_step(BigramStep *s) {
    const int64_t V = s->vocab_size, N = s->n_positions;
    const int team = N + V * V >= PARALLEL_MIN_WORK ? omp_get_max_threads() : 1;
    const int by_pairs = V * V * team <= N; /* step 1's way: pair counts, else the sort */
    /* scratch rows of `stride` entries, so that each thread's start on their own 64-byte
     * cache line and no two threads share one */
    const int64_t stride = (V + 7) / 8 * 8;
    int32_t *pairs = by_pairs ? calloc((size_t)(team * V * V), sizeof(int32_t)) : NULL;
    int64_t *count = by_pairs ? NULL : calloc((size_t)(team * stride), sizeof(int64_t));
    /* per thread: the gradient g and the counts c of the row it is on */
    float *grad_rows = malloc((size_t)(team * stride) * sizeof(float));
    int32_t *count_rows = malloc((size_t)(team * stride) * sizeof(int32_t));
    if ((by_pairs ? pairs == NULL : count == NULL) || grad_rows == NULL || count_rows == NULL) {
        free(pairs);
        free(count);
        free(grad_rows);
        free(count_rows);
        return -1;
    }
    s->step += 1;
    const double t = (double)s->step;
    const float decay = 1.0f - s->lr * s->weight_decay;
    const float step_size = (float)(s->lr / (1.0 - pow(s->beta1, t)));
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(s->beta2, t)));
    const float one_m_b1 = 1.0f - s->beta1, one_m_b2 = 1.0f - s->beta2;
    const float inv_n = 1.0f / (float)N;
    double loss_sum = 0.0; /* sum_n (lse(W[x_n]) - W[x_n, y_n]) */

#pragma omp parallel num_threads(team) reduction(+ : loss_sum)
    {
        const int tid = omp_get_thread_num(), threads = omp_get_num_threads();
        const int64_t lo = N * tid / threads, hi = N * (tid + 1) / threads;
        float *g = grad_rows + tid * stride;
        int32_t *c = count_rows + tid * stride;

        /* 1. the batch grouped by input id */
        if (by_pairs) {
            count_pairs(s, pairs + tid * V * V, lo, hi);
        } else {
            sort_by_input(s, count, stride, lo, hi);
        }
#pragma omp barrier

        /* 2. each row: its counts, forward, loss, gradient, AdamW */
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < V; i++) {
            float *w = s->weight + i * V;
            int64_t n_i = 0; /* positions with input i */
            if (by_pairs) {
                for (int64_t j = 0; j < V; j++) c[j] = 0;
                for (int u = 0; u < threads; u++) {
                    const int32_t *theirs = pairs + (u * V + i) * V;
                    for (int64_t j = 0; j < V; j++) c[j] += theirs[j];
                }
                for (int64_t j = 0; j < V; j++) n_i += c[j];
            } else {
                const int64_t first = s->row_start[i];
                n_i = s->row_start[i + 1] - first;
                if (n_i > 0) {
                    memset(c, 0, (size_t)V * sizeof(int32_t));
                    for (int64_t k = 0; k < n_i; k++) c[s->targets_by_row[first + k]]++;
                }
            }
            if (n_i == 0) {
                memset(g, 0, (size_t)V * sizeof(float)); /* no position reads row i */
            } else {
                float row_max = w[0];
#pragma omp simd reduction(max : row_max)
                for (int64_t j = 1; j < V; j++) row_max = w[j] > row_max ? w[j] : row_max;
                float total = 0.0f, target_logits = 0.0f; /* sum_j C_i[j] W[i, j] */
#pragma omp simd reduction(+ : total, target_logits)
                for (int64_t j = 0; j < V; j++) {
                    g[j] = exp_nonpositive(w[j] - row_max);
                    total += g[j];
                    target_logits += (float)c[j] * w[j];
                }
                /* the loss before the update: n_i lse_i less the logits of the targets */
                loss_sum += (double)n_i * ((double)row_max + log((double)total)) - target_logits;
                /* the gradient: (n_i p_i - C_i) / N */
                const float scale = (float)n_i * inv_n / total;
#pragma omp simd
                for (int64_t j = 0; j < V; j++) g[j] = g[j] * scale - (float)c[j] * inv_n;
            }
            adamw_row(w, s->m + i * V, s->v + i * V, g, V, decay, one_m_b1, s->beta2, one_m_b2,
                      step_size, inv_sqrt_bc2, s->eps);
        }
    }
    free(pairs);
    free(count);
    free(grad_rows);
    free(count_rows);
    s->loss = (float)(loss_sum / (double)N);
    return 0;
}
