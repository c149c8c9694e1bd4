// `attnlab sweep`: train every run of a grid locally (a process pool), as a
// Slurm job array, or spread over the ranks of mpirun; `--status` shows where
// each run stands; `--run NAME` trains one run (what an array task does).
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>

extern char** environ;

#include "cli/commands.h"
#include "core/comm.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "report/slurm.h"
#include "sweep/sweep.h"

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
        throw Error(
            "--jobs is for the local launcher; with --launcher slurm use --max-parallel K "
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
    const std::string left =
        fmt::format("{} finished, {} queued or running in Slurm", s.finished, s.in_queue);
    if (s.runs.empty()) {
        fmt::print("nothing to submit: {} runs, {}\n", plan.runs.size(), left);
        return;
    }
    if (a.dry_run) {
        fmt::print("{}# dry run: {} of {} runs would be submitted ({}); the script is {}\n",
                   s.script, s.runs.size(), plan.runs.size(), left, s.script_path);
        return;
    }
    fmt::print(
        "submitted Slurm job {}: {} of {} runs as array tasks ({}); script {}\n"
        "follow it with `attnlab sweep --status {}`\n",
        s.job_id, s.runs.size(), plan.runs.size(), left, s.script_path, a.out);
}

// Under mpirun: the unfinished runs dealt out over the ranks, each rank training
// its share one at a time (its runs use --threads threads each).
void run_mpi(const SweepArgs& a, const SweepPlan& plan) {
    if (!Comm::launched_by_mpi())
        throw Error(
            "--launcher mpi spreads the runs over the ranks of mpirun; start it as "
            "`mpirun -np R attnlab sweep --launcher mpi ...`");
    const Comm& comm = Comm::world();
    // The runs' own `attnlab train` processes must not take themselves for MPI ranks.
    for (char** e = environ; *e;) {
        const std::string var(*e);
        const std::string name = var.substr(0, var.find('='));
        if (name.rfind("OMPI_", 0) == 0 || name.rfind("PMIX_", 0) == 0 ||
            name.rfind("PMI_", 0) == 0)
            ::unsetenv(name.c_str());  // environ shifts down: look at the same slot again
        else
            ++e;
    }
    std::vector<std::string> unfinished;
    for (const auto& r : plan.runs)
        if (!read_run_result(a.out + "/" + r.name)) unfinished.push_back(r.name);
    comm.barrier();  // every rank has seen the same state before any run starts
    if (comm.rank() == 0) {
        std::error_code ec;
        fs::create_directories(a.out, ec);
        write_text_atomic(a.out + "/grid.toml", plan.text);
        write_text_atomic(a.out + "/sweep.json", sweep_json(plan));
        fmt::print("sweep {}: {} runs, {} to run over {} MPI ranks\n", plan.origin,
                   plan.runs.size(), unfinished.size(), comm.size());
        std::fflush(stdout);
    }
    SweepOptions opt;
    opt.out_dir = a.out;
    opt.jobs = 1;
    opt.binary = own_binary();
    opt.quiet = comm.rank() != 0;
    for (size_t i = size_t(comm.rank()); i < unfinished.size(); i += size_t(comm.size()))
        opt.only.push_back(unfinished[i]);
    SweepOutcome mine;
    if (!opt.only.empty()) mine = run_sweep(plan, opt);
    double counts[2] = {double(mine.ran), double(mine.failed.size())};
    comm.allreduce_sum(counts, 2);
    if (comm.rank() != 0) {
        if (counts[1] > 0) throw CLI::RuntimeError(1);
        return;
    }
    std::vector<std::optional<RunResult>> results;
    for (const auto& r : plan.runs) results.push_back(read_run_result(a.out + "/" + r.name));
    write_text_atomic(a.out + "/runs.csv", runs_csv(plan, results));
    fmt::print("sweep done: {} runs, {} trained now over {} ranks, {} failed; index {}/runs.csv\n",
               plan.runs.size(), long(counts[0]), comm.size(), long(counts[1]), a.out);
    if (counts[1] > 0) {
        fmt::print(stderr, "see `attnlab sweep --status {}`; run the sweep again to retry\n",
                   a.out);
        throw CLI::RuntimeError(1);
    }
}

void run_command(const SweepArgs& a) {
    if (a.jobs < 0) throw Error(fmt::format("--jobs {} must be >= 0 (0 = one per core)", a.jobs));
    if (a.threads < 1) throw Error(fmt::format("--threads {} must be >= 1", a.threads));
    if (!a.status.empty()) return print_status(a.status);
    if (!a.run.empty()) return run_one(a);
    if (a.grid.empty() || a.out.empty())
        throw Error("attnlab sweep needs --grid FILE and --out DIR (or --status DIR)");
    if (a.launcher != "local" && a.launcher != "slurm" && a.launcher != "mpi")
        throw Error("--launcher '" + a.launcher + "' is not known; valid: local, slurm, mpi");
    if (a.launcher != "mpi" && Comm::launched_by_mpi())
        throw Error(
            "this sweep was started by mpirun: pass --launcher mpi to spread its runs "
            "over the ranks (otherwise every rank would train every run)");
    if (a.launcher == "local" && (a.max_parallel != 0 || !a.slurm.empty()))
        throw Error(
            "--max-parallel and --slurm need --launcher slurm (locally, --jobs sets the "
            "runs at a time)");
    const SweepPlan plan = load_grid(a.grid, a.threads);
    if (a.launcher == "slurm") return submit_slurm(a, plan);
    if (a.launcher == "mpi" && !a.dry_run) return run_mpi(a, plan);
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
    sweep->add_option("--grid", a->grid,
                      "grid file: [base] configuration and [grid] values to vary");
    sweep->add_option("--out", a->out, "sweep folder (one run folder per run, runs.csv)");
    sweep->add_option("--launcher", a->launcher,
                      "local (a process pool, the default), slurm (one job array) or mpi "
                      "(under mpirun: the runs spread over the ranks)");
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
