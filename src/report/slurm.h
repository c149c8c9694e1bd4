// Sweeps on a Slurm cluster and the state of a sweep's runs: one job-array
// script per submission (one array task per unfinished run), submitted with
// sbatch, and `sweep --status` from the run folders and the Slurm queue.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sweep/sweep.h"

namespace attnlab {

struct SlurmOptions {
    std::string out_dir;      // the sweep folder (on a filesystem every node sees)
    std::string binary;       // the attnlab executable the array tasks run
    std::string workdir;      // the tasks' working folder (relative paths in the grid)
    std::string sbatch_args;  // extra sbatch options, e.g. "--partition=p --time=01:00:00"
    int max_parallel = 0;     // array tasks at a time (the %K of --array); 0: no limit
    int threads = 1;          // train.threads of every run = --cpus-per-task
    bool dry_run = false;     // write and print the script, submit nothing
};

struct SlurmSubmission {
    std::string script_path;         // DIR/slurm/sweep.sbatch
    std::string script;              // its text
    std::vector<std::string> runs;   // the runs it submits, by array index
    int finished = 0, in_queue = 0;  // runs left out: finished, or queued/running in Slurm
    std::string job_id;              // sbatch's job id (empty for a dry run or nothing to do)
};

// Writes DIR/grid.toml, DIR/sweep.json and DIR/slurm/sweep.sbatch for the runs
// that are neither finished nor already queued or running in Slurm, and
// submits it with sbatch (unless dry_run or there is nothing to run). A run
// folder whose configuration differs from the plan is an error, as for local sweeps.
SlurmSubmission submit_slurm_sweep(const SweepPlan& plan, const SlurmOptions& opt);

// The job-array script for `runs` (names of plan runs, in array-index order).
std::string slurm_script(const std::vector<std::string>& runs, const SlurmOptions& opt);

// Splits an option string as a shell would split words (single and double
// quotes, backslash), without expansion; throws Error on an open quote.
std::vector<std::string> split_words(const std::string& s);

enum class RunState { finished, running, queued, failed, not_started };
const char* run_state_name(RunState s);

struct RunStatus {
    std::string name;
    RunState state = RunState::not_started;
    std::string detail;  // e.g. "step 120 of 400", "Slurm job 12_3", the error line
};

// The state of every run of the sweep in DIR (from DIR/sweep.json), for local
// and Slurm sweeps alike: finished (summary.json), running (its folder is in
// use by a training process, or its Slurm task runs), queued (a pending Slurm
// task), failed (started, stopped without finishing), not started. When the
// Slurm queue cannot be read, `note` says why and only the folders count.
std::vector<RunStatus> sweep_status(const std::string& dir, std::string* note);

// The sweep's Slurm tasks (of the submissions in DIR/slurm/jobs) that are
// pending or running, by run name.
struct SlurmTask {
    bool running = false;
    std::string id;  // "<array job>_<index>"
};
// Throws Error when squeue fails, unless `problem` is given (then it says why).
std::map<std::string, SlurmTask> slurm_tasks_in_queue(const std::string& dir,
                                                      std::string* problem = nullptr);

}  // namespace attnlab
