/* A channel-wise Clebsch-Gordan product of two per-atom feature sets, fused per atom (float32, CPU).
 *
 *   out[n, column k, c] = sum over terms (i, j, k, v) of v * x[n, i, c] * y[n, j, c]
 *
 * the sparse bilinear map of `mlip.nn.product.ChannelwiseProduct` (its terms are compile-time constants: TERMS, a
 * list of {i, j, k, v}). One atom's inputs (DIM1 + DIM2 rows of CHANNELS) and outputs stay in L1 while every term
 * is applied, where the framework's form writes rows of all atoms between its kernels. Output column k of the
 * product goes to row ROW_OF[k] of its l3 group's block (N, 2*l3+1, paths, C), the blocks one after the other
 * (group k's block starts at N * BASE_OF[k] rows, an atom's rows at n * GROUP_ROWS_OF[k]), as the channel mix
 * reads them. The backward pass returns d/dx and d/dy (when x and y are one tensor, the caller's autograd adds them).
 * Shapes (contiguous): x (N, DIM1, C), y (N, DIM2, C) -> out (N * COLUMNS, C).
 */
#include <stdint.h>
#include <string.h>

#if !defined(CHANNELS) || !defined(DIM1) || !defined(DIM2) || !defined(COLUMNS) || !defined(TERM_COUNT) || \
    !defined(TERMS) || !defined(BASE_OF) || !defined(GROUP_ROWS_OF) || !defined(ROW_OF)
#error "build with the sizes, TERMS and the output layout as -D flags (mlip.nn.fused_product)"
#endif

typedef struct { int32_t i, j, k; float v; } term_t;
static const term_t terms[TERM_COUNT] = {TERMS};
static const int64_t base_of[COLUMNS] = {BASE_OF}, group_rows_of[COLUMNS] = {GROUP_ROWS_OF};
static const int64_t row_of[COLUMNS] = {ROW_OF};

static inline int64_t out_row(int64_t atoms, int64_t n, int64_t k) {
    return atoms * base_of[k] + n * group_rows_of[k] + row_of[k];
}

void channelwise_product_forward(int64_t atoms, const float *x, const float *y, float *out, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < atoms; n++) {
        float acc[COLUMNS * CHANNELS];
        memset(acc, 0, sizeof(acc));
        const float *xs = x + n * DIM1 * CHANNELS, *ys = y + n * DIM2 * CHANNELS;
        for (int64_t t = 0; t < TERM_COUNT; t++) {
            const float *xi = xs + terms[t].i * CHANNELS, *yj = ys + terms[t].j * CHANNELS;
            float *o = acc + terms[t].k * CHANNELS;
            const float v = terms[t].v;
            #pragma omp simd
            for (int64_t c = 0; c < CHANNELS; c++) o[c] += v * xi[c] * yj[c];
        }
        for (int64_t k = 0; k < COLUMNS; k++)
            memcpy(out + out_row(atoms, n, k) * CHANNELS, acc + k * CHANNELS, sizeof(float) * CHANNELS);
    }
}

void channelwise_product_backward(int64_t atoms, const float *grad, const float *x, const float *y, float *grad_x,
                                  float *grad_y, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < atoms; n++) {
        float g[COLUMNS * CHANNELS];
        for (int64_t k = 0; k < COLUMNS; k++)
            memcpy(g + k * CHANNELS, grad + out_row(atoms, n, k) * CHANNELS, sizeof(float) * CHANNELS);
        const float *xs = x + n * DIM1 * CHANNELS, *ys = y + n * DIM2 * CHANNELS;
        float *gx = grad_x + n * DIM1 * CHANNELS, *gy = grad_y + n * DIM2 * CHANNELS;
        memset(gx, 0, sizeof(float) * DIM1 * CHANNELS);
        memset(gy, 0, sizeof(float) * DIM2 * CHANNELS);
        for (int64_t t = 0; t < TERM_COUNT; t++) {
            const float *xi = xs + terms[t].i * CHANNELS, *yj = ys + terms[t].j * CHANNELS;
            const float *gk = g + terms[t].k * CHANNELS;
            float *gxi = gx + terms[t].i * CHANNELS, *gyj = gy + terms[t].j * CHANNELS;
            const float v = terms[t].v;
            #pragma omp simd
            for (int64_t c = 0; c < CHANNELS; c++) {
                const float vg = v * gk[c];
                gxi[c] += vg * yj[c];
                gyj[c] += vg * xi[c];
            }
        }
    }
}
