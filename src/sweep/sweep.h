// Sweeps (src/sweep/): a grid file (a base configuration and the values to vary) expanded
// into runs, validated up front, and run as parallel `attnlab train` child
// processes into one folder, resumably, with an index of results (runs.csv).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "train/config.h"

namespace attnlab {

// One axis of the grid. A plain axis is one configuration key with a list of
// values; a tied axis is a list of points that each set several keys at once
// (e.g. an architecture together with its width).
struct GridAxis {
    std::string name;  // the configuration key, or the tied axis's own name
    bool tied = false;
    std::vector<std::string> keys;    // the configuration keys this axis sets
    std::vector<std::string> labels;  // per point: the value as text, or the point's name
    // Per point: the (key, value) settings it applies.
    std::vector<std::vector<std::pair<std::string, std::string>>> settings;
};

struct SweepRun {
    std::string name;                 // folder name inside the sweep folder
    std::vector<std::string> values;  // per axis: the label of this run's point
    std::vector<std::pair<std::string, std::string>> settings;  // all grid settings, in axis order
    RunConfig cfg;  // the complete, resolved configuration
};

struct SweepPlan {
    std::string origin;  // the grid file, for messages
    std::string title;   // the grid's `title` (may be empty)
    std::string text;    // the grid file's contents
    std::vector<GridAxis> axes;
    std::vector<SweepRun> runs;  // the cartesian product, first axis slowest
};

// Parses a grid document and expands it; every run's configuration is resolved
// here, so a bad key or value fails before anything runs, with an Error naming
// the grid file, the run and the key. `threads` becomes every run's train.threads.
SweepPlan plan_sweep(const std::string& grid_text, const std::string& origin, int threads = 1);
SweepPlan load_grid(const std::string& path, int threads = 1);

// The final evaluation of a finished run, read from its summary.json.
struct RunResult {
    double accuracy = 0, loss = 0;
    std::optional<double> bits_per_byte;                   // byte-level tasks (text)
    std::optional<double> fid;                             // diffusion runs, lower is better
    std::vector<std::pair<std::string, double>> per_task;  // label -> accuracy
    long steps = 0;
    size_t params = 0;
    double wall_s = 0;
};
// nullopt when the run has no summary.json (not finished); throws Error if it is unreadable.
std::optional<RunResult> read_run_result(const std::string& run_dir);

struct SweepOptions {
    std::string out_dir;
    std::string binary;  // the attnlab executable that trains one run
    int jobs = 0;        // parallel runs (0 = number of cores)
    bool quiet = false;  // no progress lines
    // When not empty: run only these runs (by name) and leave the others alone;
    // what a Slurm array task does with its one run.
    std::vector<std::string> only;
};

struct SweepOutcome {
    int total = 0, skipped = 0, ran = 0;
    std::vector<std::string> failed;  // run names
};

// Runs every run of the plan that is not finished yet. A finished run
// (summary.json present) is skipped; an interrupted one is resumed from its
// checkpoint, or redone when that fails. A run folder whose configuration
// differs from the plan is an error (nothing is overwritten). Writes
// <out>/grid.toml, <out>/sweep.json (the plan) and, after every finished run,
// <out>/runs.csv; each run's output goes to <out>/<run>/train.log.
SweepOutcome run_sweep(const SweepPlan& plan, const SweepOptions& opt);

// The first key (train.threads aside) in which the run folder's config.toml
// differs from the planned configuration, as "key is X in the folder but Y in the grid".
std::optional<std::string> config_difference(const std::string& dir, const RunConfig& planned);

// runs.csv for the finished runs of the plan (results[i] for plan.runs[i]).
std::string runs_csv(const SweepPlan& plan, const std::vector<std::optional<RunResult>>& results);

// The plan as JSON (what `attnlab report` reads back): title, axes, runs.
std::string sweep_json(const SweepPlan& plan);

}  // namespace attnlab
