// A run folder's checkpoint as one atomic unit. Its files (model.safetensors,
// optimizer.safetensors, metrics.csv and, at the end, summary.json) are written
// into <run>/.checkpoint.tmp, which is then renamed to <run>/.checkpoint.new: that
// rename is the commit. The files are then moved into the run folder one by one;
// a kill during the moves is finished by the next writer (finish_pending_checkpoint),
// so the folder always presents one consistent checkpoint, old or new.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"
#include "train/optimizer.h"

namespace attnlab {

// The files one checkpoint consists of, in the order they are moved into place
// (samples.png: a diffusion run's final samples; summary.json, of the last step, last).
inline const std::vector<std::string>& checkpoint_files() {
    static const std::vector<std::string> files{"optimizer.safetensors", "model.safetensors",
                                                "metrics.csv", "samples.png", "summary.json"};
    return files;
}

class CheckpointWriter {
  public:
    // Starts a checkpoint of the run folder `dir` (whose lock the caller holds).
    explicit CheckpointWriter(const std::string& dir);
    // Without a commit (an error, a full disk), the staged files are removed again.
    ~CheckpointWriter();
    CheckpointWriter(const CheckpointWriter&) = delete;
    CheckpointWriter& operator=(const CheckpointWriter&) = delete;
    // Where to write the checkpoint file `name` (one of checkpoint_files()).
    std::string path(const std::string& name) const;
    // Commits the files written so far and moves them into the run folder.
    void commit();

  private:
    std::string dir_, staging_;
    bool committed_ = false;
};

// Completes a committed checkpoint whose files were not all moved into place yet
// (the writer was killed), and removes an uncommitted one and stale temporaries.
// Call with the folder's lock held, before reading the checkpoint.
void recover_run_folder(const std::string& dir);
// Removes every checkpoint file (committed, pending or staged) and stale temporary.
void clear_checkpoint(const std::string& dir);

// The optimizer's state (AdamW moments, step) of the parameters in `table` as a
// safetensors file.
void save_optimizer_state(const ParamTable& table, const Optimizer& opt, const std::string& path);
// Reads it back, checking that it holds exactly the moments of `table`'s tensors, all
// finite, and a step that matches `step` (the model file's step); throws Error naming
// the file and the tensor otherwise.
void load_optimizer_state(const ParamTable& table, Optimizer& opt, const std::string& path,
                          long step);

// The step a checkpoint file records in its metadata; throws Error naming the file.
long checkpoint_step(const std::string& path);

// metrics.csv rows up to step `last_step`, checked; throws Error naming the file and line.
struct MetricsRows {
    std::vector<std::string> rows;
    double elapsed_s = 0;  // the last kept row's elapsed_s
};
MetricsRows read_metrics(const std::string& path, long last_step);

}  // namespace attnlab
