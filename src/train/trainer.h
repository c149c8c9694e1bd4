// Training runs: the run folder (config.toml, metrics.csv, summary.json,
// model.safetensors, optimizer.safetensors), the loop with progress and
// periodic evaluation, bit-exact resume, and re-evaluation of a finished run.
#pragma once
#include <optional>
#include <string>

#include "train/config.h"
#include "train/data.h"

namespace attnlab {

struct TrainOptions {
    std::string out_dir;
    bool force = false;              // allow a non-empty out_dir (its run files are replaced)
    std::optional<long> stop_after;  // stop (with a checkpoint) after this many steps in total
    bool quiet = false;              // no progress output
};

struct TrainSummary {
    EvalResult eval;
    double final_loss = 0;
    long steps = 0;
    double wall_s = 0;
    double tokens_per_s = 0;
    size_t params = 0;
};

// Starts a new run in opt.out_dir.
TrainSummary train_new(RunConfig cfg, const TrainOptions& opt);
// Continues the run in dir from its last checkpoint (train.steps may be raised by `settings`);
// a complete run is left as it is (its summary.json written if missing).
TrainSummary train_resume(const std::string& dir, const std::vector<std::string>& settings,
                          const TrainOptions& opt);

// Loads a run's configuration (config.toml) and model checkpoint.
struct LoadedRun {
    RunConfig cfg;
    std::unique_ptr<Task> task;
    std::unique_ptr<Model> model;
};
LoadedRun load_run(const std::string& dir, int max_batch = 0);

// Prints per-task accuracy as a small table.
std::string format_eval(const EvalResult& r);

}  // namespace attnlab
