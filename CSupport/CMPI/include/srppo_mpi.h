#ifndef SRPPO_MPI_H
#define SRPPO_MPI_H

// Open MPI, loaded at run time (dlopen of libmpi.so.40) and only when the process was started by an
// MPI launcher (mpirun, or srun with PMIx): building srppo and running it alone need no MPI. The
// functions are declared here as Open MPI's mpi.h declares them, and its predefined handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of its exported objects.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// 1 when an MPI launcher started this process (OMPI_COMM_WORLD_SIZE or PMIX_RANK is set).
int srppo_mpi_launched(void);

// Loads libmpi and calls MPI_Init. 0 on success; otherwise -1 and a message in `error`.
int srppo_mpi_init(char *error, size_t error_size);

int srppo_mpi_rank(void);
int srppo_mpi_size(void);

// In-place sums over all ranks (every rank ends with the same values). 0 on success, else the MPI code.
int srppo_mpi_allreduce_sum_float(float *values, size_t count);
int srppo_mpi_allreduce_sum_double(double *values, size_t count);

// Every rank's `send_size` bytes, one after another in rank order, into `receive` (sum of sizes).
// `sizes` (one per rank, in bytes) must be the same on every rank (gather them first with
// srppo_mpi_allgather_long).
int srppo_mpi_allgather_bytes(const void *send, int send_size, void *receive, const int *sizes);
int srppo_mpi_allgather_long(long value, long *all);

int srppo_mpi_barrier(void);
// Ends every rank of the job (mpirun reports it) with `code`.
void srppo_mpi_abort(int code);
int srppo_mpi_finalize(void);

#ifdef __cplusplus
}
#endif

#endif
