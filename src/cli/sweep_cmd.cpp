// `attnlab sweep`: train every run of a grid locally (a process pool), as a
// Slurm job array, or spread over the ranks of mpirun; `--status` shows where
// each run stands; `--run NAME` trains one run (what an array task does).
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "report/slurm.h"
#include "report/sweep.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

struct SweepArgs {
    std::string grid, out, launcher = "local", slurm, status, run;
    int jobs = 0, threads = 1, max_parallel = 0;
    bool dry_run = false;
};

std::string own_binary() {
    std::error_code ec;
    const std::string exe = fs::read_symlink("/proc/self/exe", ec).string();
    if (ec) throw Error("cannot find the attnlab executable (/proc/self/exe): " + ec.message());
    return exe;
}

void print_status(const std::string& dir) {
    std::string note;
    const auto runs = sweep_status(dir, &note);
    if (!note.empty()) fmt::print(stderr, "note: {}; states from the run folders only\n", note);
    size_t width = 3;
    for (const auto& r : runs) width = std::max(width, r.name.size());
    fmt::print("{:<{}}  {:<11}  {}\n", "run", width, "state", "detail");
    int counts[5] = {};
    for (const auto& r : runs) {
        counts[int(r.state)]++;
        fmt::print("{:<{}}  {:<11}  {}\n", r.name, width, run_state_name(r.state), r.detail);
    }
    fmt::print("{} runs: {} finished, {} running, {} queued, {} failed, {} not started\n",
               runs.size(), counts[int(RunState::finished)], counts[int(RunState::running)],
               counts[int(RunState::queued)], counts[int(RunState::failed)],
               counts[int(RunState::not_started)]);
}

void report_outcome(const SweepOutcome& o, const std::string& out) {
    fmt::print(
        "sweep done: {} runs, {} trained now, {} finished before, {} failed; index {}/runs.csv\n",
        o.total, o.ran, o.skipped, o.failed.size(), out);
    if (o.failed.empty()) return;
    std::string names;
    for (const auto& n : o.failed) names += " " + n;
    fmt::print(stderr, "failed runs (see <run>/train.log; run the sweep again to retry):{}\n",
               names);
    throw CLI::RuntimeError(1);
}

// One run of the sweep in `out` (an array task): the plan is read back from out/grid.toml.
void run_one(const SweepArgs& a) {
    if (a.out.empty()) throw Error("--run NAME needs --out DIR, the sweep folder");
    const std::string grid = a.grid.empty() ? a.out + "/grid.toml" : a.grid;
    const SweepPlan plan = load_grid(grid, a.threads);
    bool known = false;
    for (const auto& r : plan.runs) known = known || r.name == a.run;
    if (!known)
        throw Error("--run '" + a.run + "' is not a run of " + grid +
                    " (see `attnlab sweep --status " + a.out + "`)");
    SweepOptions opt;
    opt.out_dir = a.out;
    opt.jobs = 1;
    opt.binary = own_binary();
    opt.only = {a.run};
    report_outcome(run_sweep(plan, opt), a.out);
}

void submit_slurm(const SweepArgs& a, const SweepPlan& plan) {
    if (a.jobs != 0)
        throw Error("--jobs is for the local launcher; with --launcher slurm use --max-parallel K "
                    "(array tasks at a time)");
    SlurmOptions opt;
    opt.out_dir = fs::absolute(a.out).lexically_normal().string();
    opt.binary = own_binary();
    opt.workdir = fs::current_path().string();
    opt.sbatch_args = a.slurm;
    opt.max_parallel = a.max_parallel;
    opt.threads = a.threads;
    opt.dry_run = a.dry_run;
    const SlurmSubmission s = submit_slurm_sweep(plan, opt);
    const std::string left = fmt::format("{} finished, {} queued or running in Slurm", s.finished,
                                         s.in_queue);
    if (s.runs.empty()) {
        fmt::print("nothing to submit: {} runs, {}\n", plan.runs.size(), left);
        return;
    }
    if (a.dry_run) {
        fmt::print("{}# dry run: {} of {} runs would be submitted ({}); the script is {}\n",
                   s.script, s.runs.size(), plan.runs.size(), left, s.script_path);
        return;
    }
    fmt::print("submitted Slurm job {}: {} of {} runs as array tasks ({}); script {}\n"
               "follow it with `attnlab sweep --status {}`\n",
               s.job_id, s.runs.size(), plan.runs.size(), left, s.script_path, a.out);
}

void run_command(const SweepArgs& a) {
    if (a.jobs < 0) throw Error(fmt::format("--jobs {} must be >= 0 (0 = one per core)", a.jobs));
    if (a.threads < 1) throw Error(fmt::format("--threads {} must be >= 1", a.threads));
    if (!a.status.empty()) return print_status(a.status);
    if (!a.run.empty()) return run_one(a);
    if (a.grid.empty() || a.out.empty())
        throw Error("attnlab sweep needs --grid FILE and --out DIR (or --status DIR)");
    if (a.launcher != "local" && a.launcher != "slurm")
        throw Error("--launcher '" + a.launcher + "' is not known; valid: local, slurm");
    if (a.launcher == "local" && (a.max_parallel != 0 || !a.slurm.empty()))
        throw Error("--max-parallel and --slurm need --launcher slurm (locally, --jobs sets the "
                    "runs at a time)");
    const SweepPlan plan = load_grid(a.grid, a.threads);
    if (a.launcher == "slurm") return submit_slurm(a, plan);
    if (a.dry_run) {
        for (const auto& r : plan.runs) {
            std::string settings;
            for (const auto& [k, v] : r.settings) settings += " " + k + "=" + v;
            fmt::print("{}{}\n", r.name, settings);
        }
        fmt::print("{} runs; the grid is valid\n", plan.runs.size());
        return;
    }
    SweepOptions opt;
    opt.out_dir = a.out;
    opt.jobs = a.jobs;
    opt.binary = own_binary();
    report_outcome(run_sweep(plan, opt), a.out);
}

}  // namespace

void add_sweep_command(CLI::App& app) {
    auto a = std::make_shared<SweepArgs>();
    auto* sweep = app.add_subcommand(
        "sweep", "train every run of a grid file (locally, on Slurm or under mpirun), resumably");
    sweep->add_option("--grid", a->grid, "grid file: [base] configuration and [grid] values to vary");
    sweep->add_option("--out", a->out, "sweep folder (one run folder per run, runs.csv)");
    sweep->add_option("--launcher", a->launcher,
                      "local (a process pool, the default) or slurm (one job array)");
    sweep->add_option("--jobs", a->jobs, "local: runs at a time (default: the number of cores)");
    sweep->add_option("--threads", a->threads,
                      "train.threads of every run (default 1; Slurm: --cpus-per-task)");
    sweep->add_option("--slurm", a->slurm,
                      "slurm: extra sbatch options, e.g. \"--partition=p --time=01:00:00\"");
    sweep->add_option("--max-parallel", a->max_parallel,
                      "slurm: array tasks at a time (the %K of --array; default: no limit)");
    sweep->add_flag("--dry-run", a->dry_run,
                    "validate the grid and list its runs (slurm: print the script), train nothing");
    sweep->add_option("--status", a->status,
                      "show which runs of the sweep in this folder are finished, running, "
                      "queued, failed or not started");
    sweep->add_option("--run", a->run,
                      "train only this run of the sweep in --out (what a Slurm array task runs)");
    sweep->callback([a] { run_command(*a); });
}

}  // namespace attnlab
