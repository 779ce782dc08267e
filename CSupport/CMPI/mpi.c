#include "srppo_mpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

// Open MPI's handles are pointers to its predefined objects; functions as in its mpi.h.
typedef void *handle;
static int (*mpi_init)(int *, char ***);
static int (*mpi_comm_rank)(handle, int *);
static int (*mpi_comm_size)(handle, int *);
static int (*mpi_allreduce)(const void *, void *, int, handle, handle, handle);
static int (*mpi_allgather)(const void *, int, handle, void *, int, handle, handle);
static int (*mpi_allgatherv)(const void *, int, handle, void *, const int *, const int *, handle, handle);
static int (*mpi_barrier)(handle);
static int (*mpi_abort)(handle, int);
static int (*mpi_finalize)(void);
static handle comm_world, type_float, type_double, type_byte, type_long, op_sum, in_place;
static int rank, size = 1;

int srppo_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

int srppo_mpi_init(char *error, size_t error_size) {
    // RTLD_GLOBAL: Open MPI's components, loaded by libmpi itself, resolve symbols against it.
    void *library = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        snprintf(error, error_size, "cannot load Open MPI (libmpi.so.40: %s): install openmpi-bin and libopenmpi-dev", dlerror());
        return -1;
    }
#define LOAD(variable, name)                                                                                   \
    do {                                                                                                       \
        *(void **)&variable = dlsym(library, name);                                                            \
        if (!variable) {                                                                                       \
            snprintf(error, error_size, "libmpi.so.40 has no symbol %s: not the Open MPI srppo was written for", name); \
            return -1;                                                                                         \
        }                                                                                                      \
    } while (0)
    LOAD(mpi_init, "MPI_Init");
    LOAD(mpi_comm_rank, "MPI_Comm_rank");
    LOAD(mpi_comm_size, "MPI_Comm_size");
    LOAD(mpi_allreduce, "MPI_Allreduce");
    LOAD(mpi_allgather, "MPI_Allgather");
    LOAD(mpi_allgatherv, "MPI_Allgatherv");
    LOAD(mpi_barrier, "MPI_Barrier");
    LOAD(mpi_abort, "MPI_Abort");
    LOAD(mpi_finalize, "MPI_Finalize");
    LOAD(comm_world, "ompi_mpi_comm_world");
    LOAD(type_float, "ompi_mpi_float");
    LOAD(type_double, "ompi_mpi_double");
    LOAD(type_byte, "ompi_mpi_byte");
    LOAD(type_long, "ompi_mpi_long");
    LOAD(op_sum, "ompi_mpi_op_sum");
#undef LOAD
    in_place = (handle)1;  // MPI_IN_PLACE in Open MPI's mpi.h
    int code = mpi_init(NULL, NULL);
    if (code != 0) {
        snprintf(error, error_size, "MPI_Init failed with code %d", code);
        return -1;
    }
    mpi_comm_rank(comm_world, &rank);
    mpi_comm_size(comm_world, &size);
    return 0;
}

int srppo_mpi_rank(void) { return rank; }
int srppo_mpi_size(void) { return size; }

// MPI counts are int: long buffers go in pieces.
#define PIECE (1 << 28)

static int allreduce_sum(void *values, size_t count, size_t element_size, handle type) {
    for (size_t start = 0; start < count; start += PIECE) {
        int n = (int)(count - start < PIECE ? count - start : PIECE);
        int code = mpi_allreduce(in_place, (char *)values + start * element_size, n, type, op_sum, comm_world);
        if (code != 0) return code;
    }
    return 0;
}

int srppo_mpi_allreduce_sum_float(float *values, size_t count) {
    return allreduce_sum(values, count, sizeof(float), type_float);
}

int srppo_mpi_allreduce_sum_double(double *values, size_t count) {
    return allreduce_sum(values, count, sizeof(double), type_double);
}

int srppo_mpi_allgather_long(long value, long *all) {
    return mpi_allgather(&value, 1, type_long, all, 1, type_long, comm_world);
}

int srppo_mpi_allgather_bytes(const void *send, int send_size, void *receive, const int *sizes) {
    int *offsets = malloc(sizeof(int) * (size_t)size);
    if (!offsets) return -1;
    int offset = 0;
    for (int r = 0; r < size; r++) {
        offsets[r] = offset;
        offset += sizes[r];
    }
    int code = mpi_allgatherv(send, send_size, type_byte, receive, sizes, offsets, type_byte, comm_world);
    free(offsets);
    return code;
}

int srppo_mpi_barrier(void) { return mpi_barrier(comm_world); }

void srppo_mpi_abort(int code) { mpi_abort(comm_world, code); }

int srppo_mpi_finalize(void) { return mpi_finalize(); }
