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
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t atoms, degree, channels, dim_in, dim_sh, paths, left_width, out_cols, pieces;
    float cutoff, scale;
} shape_t;

/* The table's values (and slopes in d/dr when slopes != NULL) of every path and channel at distance r. */
static void radial_row(const shape_t *shape, const float *coefficients, float r, float *values, float *slopes) {
    const int64_t width = shape->paths * shape->channels;
    const float per_length = (float)shape->pieces / shape->cutoff;
    float clamped = r < 0.0f ? 0.0f : (r > shape->cutoff ? shape->cutoff : r);
    float x = clamped * per_length;
    float piece = floorf(x);
    if (piece > (float)(shape->pieces - 1)) piece = (float)(shape->pieces - 1);
    const float t = x - piece;
    const float *a = coefficients + (int64_t)piece * 6 * width;
    const float inside = (r >= 0.0f && r <= shape->cutoff) ? per_length : 0.0f; /* clamp passes the gradient inside */
    #pragma omp simd
    for (int64_t q = 0; q < width; q++) {
        const float a0 = a[q], a1 = a[width + q], a2 = a[2 * width + q];
        const float a3 = a[3 * width + q], a4 = a[4 * width + q], a5 = a[5 * width + q];
        values[q] = a0 + t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))));
    }
    if (slopes != NULL) {
        #pragma omp simd
        for (int64_t q = 0; q < width; q++) {
            const float a1 = a[width + q], a2 = a[2 * width + q], a3 = a[3 * width + q];
            const float a4 = a[4 * width + q], a5 = a[5 * width + q];
            slopes[q] = inside * (a1 + t * (2.0f * a2 + t * (3.0f * a3 + t * (4.0f * a4 + t * 5.0f * a5))));
        }
    }
}

/* L = sh_row @ coupling: (dim_sh,) x (dim_sh, left_width) -> (left_width,). */
static void left_row(const shape_t *shape, const float *sh_row, const float *coupling, float *left) {
    const int64_t width = shape->left_width;
    memset(left, 0, sizeof(float) * width);
    for (int64_t m = 0; m < shape->dim_sh; m++) {
        const float value = sh_row[m];
        const float *row = coupling + m * width;
        #pragma omp simd
        for (int64_t q = 0; q < width; q++) left[q] += value * row[q];
    }
}

/* Atom i's first output row of path p (its component w at + w * stride * C): see the layout above. */
static inline float *output_of(const shape_t *shape, float *out, const int64_t *group_at, const int64_t *group_cols,
                               const int64_t *in_group, int64_t p, int64_t i) {
    return out + (shape->atoms * group_at[p] + i * group_cols[p] + in_group[p]) * shape->channels;
}

void tabulated_convolution_forward(const shape_t *shape, const int64_t *meta, const float *sh, const float *lengths,
                                   const float *filled, const float *coefficients, const float *features,
                                   const int64_t *senders, const float *coupling, float *out, int threads) {
    const int64_t C = shape->channels, D = shape->degree, P = shape->paths;
    const int64_t *l_in = meta, *w3 = meta + P, *left_at = meta + 2 * P, *group_at = meta + 3 * P;
    const int64_t *group_cols = meta + 4 * P, *in_group = meta + 5 * P, *stride = meta + 6 * P;
    #pragma omp parallel num_threads(threads)
    {
        float *radial = malloc(sizeof(float) * P * C);
        float *left = malloc(sizeof(float) * shape->left_width);
        float *product = malloc(sizeof(float) * C);
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < shape->atoms; i++) {
            for (int64_t p = 0; p < P; p++)  /* this atom's outputs of every path */
                for (int64_t w = 0; w < w3[p]; w++)
                    memset(output_of(shape, out, group_at, group_cols, in_group, p, i) + w * stride[p] * C, 0,
                           sizeof(float) * C);
            for (int64_t d = 0; d < D; d++) {
                const int64_t s = i * D + d;
                if (filled[s] == 0.0f) continue;
                radial_row(shape, coefficients, lengths[s], radial, NULL);
                left_row(shape, sh + s * shape->dim_sh, coupling, left);
                const float *x = features + senders[s] * shape->dim_in * C;
                for (int64_t p = 0; p < P; p++) {
                    const int64_t k_count = 2 * l_in[p] + 1, width = w3[p];
                    const float *r = radial + p * C, *l = left + left_at[p];
                    float *o = output_of(shape, out, group_at, group_cols, in_group, p, i);
                    for (int64_t k = 0; k < k_count; k++) {
                        const float *xk = x + (l_in[p] * l_in[p] + k) * C;
                        #pragma omp simd
                        for (int64_t c = 0; c < C; c++) product[c] = r[c] * xk[c];
                        for (int64_t w = 0; w < width; w++) {
                            const float lw = l[k * width + w];
                            float *ow = o + w * stride[p] * C;
                            #pragma omp simd
                            for (int64_t c = 0; c < C; c++) ow[c] += lw * product[c];
                        }
                    }
                }
            }
            for (int64_t p = 0; p < P; p++)
                for (int64_t w = 0; w < w3[p]; w++) {
                    float *o = output_of(shape, out, group_at, group_cols, in_group, p, i) + w * stride[p] * C;
                    #pragma omp simd
                    for (int64_t c = 0; c < C; c++) o[c] *= shape->scale;
                }
        }
        free(radial);
        free(left);
        free(product);
    }
}

void tabulated_convolution_backward(const shape_t *shape, const int64_t *meta, const float *grad_out,
                                    const float *sh, const float *lengths, const float *filled,
                                    const float *coefficients, const float *features, const int64_t *senders,
                                    const float *coupling, float *grad_lengths, float *grad_sh,
                                    float *grad_sender_features, int threads) {
    const int64_t C = shape->channels, D = shape->degree, P = shape->paths;
    const int64_t *l_in = meta, *w3 = meta + P, *left_at = meta + 2 * P, *group_at = meta + 3 * P;
    const int64_t *group_cols = meta + 4 * P, *in_group = meta + 5 * P, *stride = meta + 6 * P;
    #pragma omp parallel num_threads(threads)
    {
        float *radial = malloc(sizeof(float) * P * C), *slopes = malloc(sizeof(float) * P * C);
        float *grad_radial = malloc(sizeof(float) * P * C);
        float *left = malloc(sizeof(float) * shape->left_width), *grad_left = malloc(sizeof(float) * shape->left_width);
        float *product = malloc(sizeof(float) * C), *back = malloc(sizeof(float) * C);
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < shape->atoms; i++) {
            for (int64_t d = 0; d < D; d++) {
                const int64_t s = i * D + d;
                float *gx = grad_sender_features + s * shape->dim_in * C;
                memset(gx, 0, sizeof(float) * shape->dim_in * C);
                if (filled[s] == 0.0f) {
                    grad_lengths[s] = 0.0f;
                    memset(grad_sh + s * shape->dim_sh, 0, sizeof(float) * shape->dim_sh);
                    continue;
                }
                radial_row(shape, coefficients, lengths[s], radial, slopes);
                left_row(shape, sh + s * shape->dim_sh, coupling, left);
                memset(grad_radial, 0, sizeof(float) * P * C);
                const float *x = features + senders[s] * shape->dim_in * C;
                for (int64_t p = 0; p < P; p++) {
                    const int64_t k_count = 2 * l_in[p] + 1, width = w3[p];
                    const float *r = radial + p * C, *l = left + left_at[p];
                    float *gl = grad_left + left_at[p], *gr = grad_radial + p * C;
                    const float *gp = output_of(shape, (float *)grad_out, group_at, group_cols, in_group, p, i);
                    for (int64_t k = 0; k < k_count; k++) {
                        const int64_t row = l_in[p] * l_in[p] + k;
                        const float *xk = x + row * C;
                        float *gxk = gx + row * C;
                        #pragma omp simd
                        for (int64_t c = 0; c < C; c++) { product[c] = r[c] * xk[c]; back[c] = 0.0f; }
                        for (int64_t w = 0; w < width; w++) {
                            const float *gw = gp + w * stride[p] * C;
                            const float lw = l[k * width + w];
                            float dot = 0.0f;
                            #pragma omp simd reduction(+:dot)
                            for (int64_t c = 0; c < C; c++) { dot += gw[c] * product[c]; back[c] += lw * gw[c]; }
                            gl[k * width + w] = dot * shape->scale;
                        }
                        #pragma omp simd
                        for (int64_t c = 0; c < C; c++) {
                            gr[c] += back[c] * xk[c];
                            gxk[c] += shape->scale * back[c] * r[c];
                        }
                    }
                }
                float grad_length = 0.0f;
                #pragma omp simd reduction(+:grad_length)
                for (int64_t q = 0; q < P * C; q++) grad_length += grad_radial[q] * slopes[q];
                grad_lengths[s] = shape->scale * grad_length;
                float *gsh = grad_sh + s * shape->dim_sh;
                for (int64_t m = 0; m < shape->dim_sh; m++) {
                    const float *row = coupling + m * shape->left_width;
                    float total = 0.0f;
                    #pragma omp simd reduction(+:total)
                    for (int64_t q = 0; q < shape->left_width; q++) total += grad_left[q] * row[q];
                    gsh[m] = total;
                }
            }
        }
        free(radial); free(slopes); free(grad_radial); free(left); free(grad_left); free(product); free(back);
    }
}
