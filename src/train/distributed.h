// Data-parallel training over the ranks of mpirun: every rank holds the same
// parameters and optimizer state, trains on its slice of each step's global
// batch (the same windows one process would draw), and the gradients are summed
// with one allreduce of the gradient arena, so every rank takes the same step.
// With one process every call here is free and changes nothing.
#pragma once
#include <cstdint>

#include "core/comm.h"
#include "train/data.h"

namespace attnlab {

class DataParallel {
  public:
    explicit DataParallel(const Comm& comm = Comm::world()) : comm_(comm) {}

    int rank() const { return comm_.rank(); }
    int ranks() const { return comm_.size(); }
    bool is_root() const { return comm_.rank() == 0; }  // the rank that writes files and prints

    // The rows of the global batch this rank trains on; Error when B is not a multiple of R.
    int local_batch(int global_batch) const;
    // Threads per rank: `threads`, or when 0 (all cores) the cores shared by this machine's ranks.
    int threads(int threads) const;
    // Index of this rank's first window of `step` in the stream of training windows.
    uint64_t first_window(long step, int global_batch) const;

    // The loss, counted and correct targets of the whole global batch.
    LossResult global_loss(const LossResult& local) const;
    // Turns this rank's gradients (of its mean loss over `local_counted` targets)
    // into the gradient of the global batch's mean loss, on every rank.
    void reduce_gradients(Model& model, long local_counted, long global_counted);
    // The evaluation set split over the ranks, its sums added.
    EvalResult evaluate(const EvalSet& set, Model& model) const;
    // Error unless every rank holds bitwise the same parameters (a cheap hash).
    void check_same_params(const Model& model) const;

    double allreduce_seconds() const {
        return allreduce_s_;
    }  // total time in the gradient allreduce

  private:
    const Comm& comm_;
    double allreduce_s_ = 0;
};

}  // namespace attnlab
