/* OpenBLAS sgemm/dgemm called from C, for comparison with the koffi path (bench/gemm.ts).
 * Build: cc -O2 -o gemm gemm.c -l:libopenblas.so.0
 * Usage: gemm <float32|float64> <threads> <n>... ; prints "n median_gflops" per size.
 * The CBLAS prototypes are declared here, so no -dev package (cblas.h) is needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                 const double *b, int ldb, double beta, double *c, int ldc);
void openblas_set_num_threads(int n);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s <float32|float64> <threads> <n>...\n", argv[0]);
    return 2;
  }
  int f64 = strcmp(argv[1], "float64") == 0;
  openblas_set_num_threads(atoi(argv[2]));
  for (int arg = 3; arg < argc; arg++) {
    int n = atoi(argv[arg]);
    size_t count = (size_t)n * n, es = f64 ? sizeof(double) : sizeof(float);
    void *a = malloc(count * es), *b = malloc(count * es), *c = malloc(count * es);
    srand(1);
    for (size_t i = 0; i < count; i++) {
      double x = rand() / (double)RAND_MAX - 0.5, y = rand() / (double)RAND_MAX - 0.5;
      if (f64) { ((double *)a)[i] = x; ((double *)b)[i] = y; }
      else { ((float *)a)[i] = (float)x; ((float *)b)[i] = (float)y; }
    }
    double flops = 2.0 * n * n * n, times[64];
    int reps = 0, warmup = 2;
    double start = now();
    for (int r = 0; r < 64; r++) {
      double t0 = now();
      if (f64) cblas_dgemm(101, 111, 111, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
      else cblas_sgemm(101, 111, 111, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      double t = now() - t0;
      if (r >= warmup) times[reps++] = t;
      if (reps >= 5 && now() - start > 1.0) break;
    }
    qsort(times, reps, sizeof(double), cmp);
    printf("%d %.3f\n", n, flops / times[reps / 2] / 1e9);
    fflush(stdout);
    free(a); free(b); free(c);
  }
  return 0;
}
