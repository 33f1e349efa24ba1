/* The neighbour sums of an equivariant convolution with a tabulated radial function, fused per atom (float32, CPU).
 *
 * For receiver i and each coupling path p (l_in, l_sh -> l3), over the atom's D neighbour slots s = i*D + d:
 *
 *   out[i, col(p, w), c] = scale * sum_s sum_k L[s, p, k, w] * R[s, p, c] * x[sender(s), l_in^2 + k, c]
 *
 * with L[s] = sh[s] @ coupling (the edge's Clebsch-Gordan block, dim_sh -> left_width columns), R[s] the quintic
 * table of the radial function at the slot's distance (zero in padding slots) and x the senders' features. Each
 * slot's operands are made and used in registers/L1 and never stored: the per-slot tensors that a framework
 * would write (L, R, R*x, and their gradients) are the memory traffic that dominated the compiled call.
 *
 * Built once per convolution shape: CHANNELS, PATHS, DIM_IN, DIM_SH, LEFT_WIDTH and the per-path metadata META
 * (7 * PATHS integers, below) are compile-time constants (-D flags), so every loop over paths, components and
 * channels has a constant trip count and the compiler unrolls and vectorises it (as Inductor specialises its
 * kernels); atom and slot counts stay run-time values.
 *
 * The backward pass recomputes L and R per slot and returns, per slot, d/d(length), d/d(sh) and d/d(x[sender])
 * (the caller sums the last over senders). Both parallelise over receivers with OpenMP; every output row is
 * written by one thread, so results do not depend on the thread count.
 *
 * Metadata per path p (int64 rows): l_in; width w3 = 2*l3 + 1; offset of its L block (rows k < 2*l_in+1, columns
 * w < w3, row-major); and where its outputs go. The outputs of the paths sharing an l3 (a group) form one
 * contiguous block (N, w3, paths in the group, C), the blocks one after the other, so that the channel mix
 * (`PathLinear`) reads each as a matrix without a copy: per path the group's first column (over all atoms:
 * the block starts at N * first_column * C), the group's columns per atom, its index in the group and the
 * group's path count (the stride between components w). Shapes (all contiguous):
 *   sh (N*D, dim_sh), lengths (N*D,) Angstrom, filled (N*D,) 1 or 0, coefficients (pieces, 6, paths*C),
 *   features (N, dim_in, C), senders (N*D,), coupling (dim_sh, left_width) -> out (N*out_cols, C).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(CHANNELS) || !defined(PATHS) || !defined(DIM_IN) || !defined(DIM_SH) || !defined(LEFT_WIDTH) || !defined(META)
#error "build with -DCHANNELS= -DPATHS= -DDIM_IN= -DDIM_SH= -DLEFT_WIDTH= -DMETA= (mlip.nn.tabulated_convolution)"
#endif

#define WIDTH (PATHS * CHANNELS)

static const int64_t meta[7 * PATHS] = {META};
#define L_IN(p) meta[p]
#define W3(p) meta[PATHS + (p)]
#define LEFT_AT(p) meta[2 * PATHS + (p)]
#define GROUP_AT(p) meta[3 * PATHS + (p)]
#define GROUP_COLS(p) meta[4 * PATHS + (p)]
#define IN_GROUP(p) meta[5 * PATHS + (p)]
#define STRIDE(p) meta[6 * PATHS + (p)]

typedef struct {
    int64_t atoms, degree, pieces;
    float cutoff, scale;
} shape_t;

/* Atom i's first output row of path p (its component w at + w * STRIDE(p) * CHANNELS): see the layout above. */
static inline float *output_of(const shape_t *shape, float *out, int64_t p, int64_t i) {
    return out + (shape->atoms * GROUP_AT(p) + i * GROUP_COLS(p) + IN_GROUP(p)) * CHANNELS;
}

/* The table's values (and slopes in d/dr when slopes != NULL) of every path and channel at distance r. */
static inline void radial_row(const shape_t *shape, const float *coefficients, float r, float *values,
                              float *slopes) {
    const float per_length = (float)shape->pieces / shape->cutoff;
    const float clamped = r < 0.0f ? 0.0f : (r > shape->cutoff ? shape->cutoff : r);
    const float x = clamped * per_length;
    float piece = floorf(x);
    if (piece > (float)(shape->pieces - 1)) piece = (float)(shape->pieces - 1);
    const float t = x - piece;
    const float *a = coefficients + (int64_t)piece * 6 * WIDTH;
    const float inside = (r >= 0.0f && r <= shape->cutoff) ? per_length : 0.0f; /* clamp passes the gradient inside */
    #pragma omp simd
    for (int64_t q = 0; q < WIDTH; q++) {
        const float a1 = a[WIDTH + q], a2 = a[2 * WIDTH + q], a3 = a[3 * WIDTH + q];
        const float a4 = a[4 * WIDTH + q], a5 = a[5 * WIDTH + q];
        values[q] = a[q] + t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))));
        if (slopes != NULL)
            slopes[q] = inside * (a1 + t * (2.0f * a2 + t * (3.0f * a3 + t * (4.0f * a4 + t * 5.0f * a5))));
    }
}

/* L = sh_row @ coupling: (DIM_SH,) x (DIM_SH, LEFT_WIDTH) -> (LEFT_WIDTH,). */
static inline void left_row(const float *sh_row, const float *coupling, float *left) {
    #pragma omp simd
    for (int64_t q = 0; q < LEFT_WIDTH; q++) left[q] = sh_row[0] * coupling[q];
    #pragma GCC unroll 16
    for (int64_t m = 1; m < DIM_SH; m++) {
        const float value = sh_row[m];
        #pragma omp simd
        for (int64_t q = 0; q < LEFT_WIDTH; q++) left[q] += value * coupling[m * LEFT_WIDTH + q];
    }
}

/* Slot s's operands: its radial row (and slopes when slopes != NULL), its coupling block L, and a pointer to its
 * sender's features (DIM_IN rows of CHANNELS). */
static inline const float *slot_operands(const shape_t *shape, int64_t s, const float *sh, const float *lengths,
                                         const float *coefficients, const float *features, const int64_t *senders,
                                         const float *coupling, float *radial, float *slopes, float *left) {
    radial_row(shape, coefficients, lengths[s], radial, slopes);
    left_row(sh + s * DIM_SH, coupling, left);
    return features + senders[s] * DIM_IN * CHANNELS;
}

void tabulated_convolution_forward(const shape_t *shape, const float *sh, const float *lengths, const float *filled,
                                   const float *coefficients, const float *features, const int64_t *senders,
                                   const float *coupling, float *out, int threads) {
    const int64_t D = shape->degree;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < shape->atoms; i++) {
        float radial[WIDTH], left[LEFT_WIDTH], product[CHANNELS];
        #pragma GCC unroll 16
        for (int64_t p = 0; p < PATHS; p++)  /* this atom's outputs of every path */
            for (int64_t w = 0; w < W3(p); w++)
                memset(output_of(shape, out, p, i) + w * STRIDE(p) * CHANNELS, 0, sizeof(float) * CHANNELS);
        for (int64_t d = 0; d < D; d++) {
            const int64_t s = i * D + d;
            if (filled[s] == 0.0f) continue;
            const float *x = slot_operands(shape, s, sh, lengths, coefficients, features, senders, coupling, radial,
                                           NULL, left);
            #pragma GCC unroll 16
            for (int64_t p = 0; p < PATHS; p++) {
                const float *r = radial + p * CHANNELS, *l = left + LEFT_AT(p);
                float *o = output_of(shape, out, p, i);
                #pragma GCC unroll 8
                for (int64_t k = 0; k < 2 * L_IN(p) + 1; k++) {
                    const float *xk = x + (L_IN(p) * L_IN(p) + k) * CHANNELS;
                    #pragma omp simd
                    for (int64_t c = 0; c < CHANNELS; c++) product[c] = r[c] * xk[c];
                    #pragma GCC unroll 8
                    for (int64_t w = 0; w < W3(p); w++) {
                        const float lw = l[k * W3(p) + w];
                        float *ow = o + w * STRIDE(p) * CHANNELS;
                        #pragma omp simd
                        for (int64_t c = 0; c < CHANNELS; c++) ow[c] += lw * product[c];
                    }
                }
            }
        }
        #pragma GCC unroll 16
        for (int64_t p = 0; p < PATHS; p++)
            for (int64_t w = 0; w < W3(p); w++) {
                float *o = output_of(shape, out, p, i) + w * STRIDE(p) * CHANNELS;
                #pragma omp simd
                for (int64_t c = 0; c < CHANNELS; c++) o[c] *= shape->scale;
            }
    }
}

void tabulated_convolution_backward(const shape_t *shape, const float *grad_out, const float *sh,
                                    const float *lengths, const float *filled, const float *coefficients,
                                    const float *features, const int64_t *senders, const float *coupling,
                                    float *grad_lengths, float *grad_sh, float *grad_sender_features, int threads) {
    const int64_t D = shape->degree;
    const float scale = shape->scale;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < shape->atoms; i++) {
        float radial[WIDTH], slopes[WIDTH], grad_radial[WIDTH], left[LEFT_WIDTH], grad_left[LEFT_WIDTH];
        float product[CHANNELS], back[CHANNELS];
        for (int64_t d = 0; d < D; d++) {
            const int64_t s = i * D + d;
            float *gx = grad_sender_features + s * DIM_IN * CHANNELS;
            memset(gx, 0, sizeof(float) * DIM_IN * CHANNELS);
            if (filled[s] == 0.0f) {
                grad_lengths[s] = 0.0f;
                memset(grad_sh + s * DIM_SH, 0, sizeof(float) * DIM_SH);
                continue;
            }
            const float *x = slot_operands(shape, s, sh, lengths, coefficients, features, senders, coupling, radial,
                                           slopes, left);
            #pragma GCC unroll 1
            for (int64_t p = 0; p < PATHS; p++) {
                const float *r = radial + p * CHANNELS, *l = left + LEFT_AT(p);
                float *gl = grad_left + LEFT_AT(p), *gr = grad_radial + p * CHANNELS;
                const float *gp = output_of(shape, (float *)grad_out, p, i);
                #pragma omp simd
                for (int64_t c = 0; c < CHANNELS; c++) gr[c] = 0.0f;
                #pragma GCC unroll 1
                for (int64_t k = 0; k < 2 * L_IN(p) + 1; k++) {
                    const int64_t row = L_IN(p) * L_IN(p) + k;
                    const float *xk = x + row * CHANNELS;
                    float *gxk = gx + row * CHANNELS;
                    #pragma omp simd
                    for (int64_t c = 0; c < CHANNELS; c++) { product[c] = r[c] * xk[c]; back[c] = 0.0f; }
                    #pragma GCC unroll 8
                    for (int64_t w = 0; w < W3(p); w++) {
                        const float *gw = gp + w * STRIDE(p) * CHANNELS;
                        const float lw = l[k * W3(p) + w];
                        float dot = 0.0f;
                        #pragma omp simd reduction(+:dot)
                        for (int64_t c = 0; c < CHANNELS; c++) { dot += gw[c] * product[c]; back[c] += lw * gw[c]; }
                        gl[k * W3(p) + w] = dot * scale;
                    }
                    #pragma omp simd
                    for (int64_t c = 0; c < CHANNELS; c++) {
                        gr[c] += back[c] * xk[c];
                        gxk[c] += scale * back[c] * r[c];
                    }
                }
            }
            float grad_length = 0.0f;
            #pragma omp simd reduction(+:grad_length)
            for (int64_t q = 0; q < WIDTH; q++) grad_length += grad_radial[q] * slopes[q];
            grad_lengths[s] = scale * grad_length;
            float *gsh = grad_sh + s * DIM_SH;
            #pragma GCC unroll 1
            for (int64_t m = 0; m < DIM_SH; m++) {
                float total = 0.0f;
                #pragma omp simd reduction(+:total)
                for (int64_t q = 0; q < LEFT_WIDTH; q++) total += grad_left[q] * coupling[m * LEFT_WIDTH + q];
                gsh[m] = total;
            }
        }
    }
}
