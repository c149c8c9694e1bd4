// The run folder around a training loop, shared by the token trainer (train/trainer.cpp)
// and the diffusion trainer (diffusion/train.cpp): opening it for a new run (--force,
// the lock, stale temporaries), opening it to resume (the lock, a checkpoint a kill
// interrupted, the configuration and the keys that may change), and reading its
// checkpoint and metrics back with checked parsers. Checkpoints themselves are
// written with CheckpointWriter (train/checkpoint.h).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/file_lock.h"
#include "train/checkpoint.h"
#include "train/config.h"

namespace attnlab {

// The exclusive lock of a run folder, held by its one writer until the run ends.
using RunLock = std::unique_ptr<FolderLock>;

// Makes `dir` the folder of a new run: creates it, locks it, refuses a non-empty
// folder unless `force`, checks that it is writable, removes the files of an earlier
// run and writes config.toml (config_toml).
RunLock open_new_run(const std::string& dir, bool force, const std::string& config_toml);

// Throws unless `dir` is a run folder (a folder holding config.toml).
void require_run_folder(const std::string& dir);

// Locks the run folder `dir` to continue it, finishes a checkpoint a kill
// interrupted and removes what the killed writer left.
RunLock lock_run_to_resume(const std::string& dir);

// The keys that `--set` may change when a run is resumed.
const std::vector<std::string>& resumable_keys();

// dir/config.toml with `settings` applied; throws when a setting changes a key
// that is not one of resumable_keys().
RunConfig resume_config(const std::string& dir, const std::vector<std::string>& settings);

// The step of the run folder's checkpoint (model.safetensors with optimizer.safetensors),
// or none when the run stopped before its first one; throws when only one of them is there.
std::optional<long> checkpoint_in(const std::string& dir);

// metrics.csv of a run folder: its rows up to step `last_step`, checked.
MetricsRows read_run_metrics(const std::string& dir, long last_step);

// Field `i` of a metrics.csv row (negative: from the end) as a finite number, 0 when
// empty; throws Error naming metrics.csv otherwise.
double metrics_field(const std::string& row, int i);

// The text of metrics.csv: the header and the rows.
std::string metrics_text(const std::string& header, const std::vector<std::string>& rows);

// A resumed run trains on: the summary and samples of its shorter self are stale, and
// config.toml takes the new settings.
void continue_run(const std::string& dir, const std::string& config_toml);

}  // namespace attnlab
