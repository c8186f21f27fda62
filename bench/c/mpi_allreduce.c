/* MPI's own all-reduce time in C, the reference for bench/mpi-allreduce.ts: float32 sum in place,
 * 1 MB to 64 MB, median of REPS runs each, every run after a barrier; rank 0 prints the slowest
 * rank's median per size.
 * Build and run: mpicc -O2 bench/c/mpi_allreduce.c -o /tmp/mpi_allreduce && mpirun -np 2 /tmp/mpi_allreduce [reps] [max-mb]
 * (node dist/bench/mpi-allreduce.js, without a launcher, builds it and runs both for 2 and 4 processes). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int reps = argc > 1 ? atoi(argv[1]) : 11;
  if (reps < 1) reps = 1;
  int max_mb = argc > 2 ? atoi(argv[2]) : 64;
  if (max_mb < 1) max_mb = 1;
  double *ms = malloc(sizeof(double) * (size_t)reps);
  if (rank == 0) printf("| MB | MPI_Allreduce ms (C) |\n| ---: | ---: |\n");
  for (int mb = 1; mb <= max_mb; mb *= 2) {
    int n = (int)((long)mb * 1024 * 1024 / 4);
    float *buf = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) buf[i] = 1.0f;
    for (int i = 0; i <= reps; i++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (i > 0) ms[i - 1] = (MPI_Wtime() - t0) * 1e3;
    }
    qsort(ms, (size_t)reps, sizeof(double), cmp);
    double mine = ms[reps / 2], worst;
    MPI_Reduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("| %d | %.3f |\n", mb, worst);
    free(buf);
  }
  free(ms);
  MPI_Finalize();
  return 0;
}
