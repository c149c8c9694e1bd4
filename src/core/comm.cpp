// MPI behind Comm: initialised lazily, finalised at exit.
#include "core/comm.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "core/error.h"

namespace attnlab {

namespace {

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : fallback;
}

void finalize_at_exit() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string("MPI ") + what + " failed: " + std::string(msg, size_t(len)));
}

}  // namespace

bool Comm::launched_by_mpi() {
    // OpenMPI's mpirun, and PMIx / PMI2 launchers such as srun --mpi=pmix.
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
        if (std::getenv(v)) return true;
    return false;
}

Comm::Comm() {
    if (!launched_by_mpi()) return;
    int provided = 0;
    // Only the main thread calls MPI; OpenMP threads compute between the calls.
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "initialisation");
    std::atexit(finalize_at_exit);
    mpi_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    active_ = size_ > 1;
    local_size_ = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("SLURM_NTASKS_PER_NODE", 1));
    // Errors come back as codes (and become attnlab::Error) instead of aborting silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

Comm& Comm::world() {
    static Comm w;
    return w;
}

void Comm::allreduce_sum(float* data, size_t n, size_t bucket) const {
    if (!mpi_ || size_ == 1) return;
    const size_t step = std::min<size_t>(bucket ? bucket : n, INT_MAX);
    for (size_t off = 0; off < n; off += step)
        check(MPI_Allreduce(MPI_IN_PLACE, data + off, int(std::min(step, n - off)), MPI_FLOAT,
                            MPI_SUM, MPI_COMM_WORLD),
              "allreduce");
}

void Comm::allreduce_sum(double* data, size_t n) const {
    if (!mpi_ || size_ == 1) return;
    check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
          "allreduce");
}

void Comm::allreduce_max(uint64_t* data, size_t n) const {
    if (!mpi_ || size_ == 1) return;
    check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD),
          "allreduce");
}

void Comm::barrier() const {
    if (mpi_ && size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

void Comm::abort(int code) const {
    // Leaving without MPI_Finalize and with a non-zero code makes mpirun end the
    // other ranks (MPI_Abort would too, with pages of launcher noise).
    std::_Exit(code);
}

}  // namespace attnlab
