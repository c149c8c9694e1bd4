// The processes of a data-parallel job: a thin layer over MPI (OpenMPI). MPI is
// initialised only when the process was started by mpirun or srun (their
// environment says so); otherwise this is a world of one process and nothing
// of MPI runs, so a plain `attnlab` is unaffected.
#pragma once
#include <cstddef>
#include <cstdint>

namespace attnlab {

class Comm {
  public:
    // The world: on first use, initialises MPI when launched by mpirun/srun.
    static Comm& world();
    // Whether this process was started by an MPI launcher (without initialising anything).
    static bool launched_by_mpi();
    // Whether MPI runs with more than one rank (without initialising anything).
    static bool active() { return active_; }

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool distributed() const { return size_ > 1; }
    int local_size() const { return local_size_; }  // ranks on this machine

    // In-place sums over all ranks; every rank receives the same values.
    // Floats go in buckets of `bucket` elements (0: one call for all).
    void allreduce_sum(float* data, size_t n, size_t bucket = 0) const;
    void allreduce_sum(double* data, size_t n) const;
    void allreduce_max(uint64_t* data, size_t n) const;
    void barrier() const;
    // Ends this rank without finalising MPI, so that the launcher ends the
    // others (an error on one rank must not leave them waiting in a collective).
    [[noreturn]] void abort(int code) const;

  private:
    Comm();
    int rank_ = 0, size_ = 1, local_size_ = 1;
    bool mpi_ = false;
    static inline bool active_ = false;
};

}  // namespace attnlab
