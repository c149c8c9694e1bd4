// The sweep runner: a small process pool of `attnlab train` children, one per
// run, each writing its own run folder; finished runs are skipped, interrupted
// ones resumed, and runs.csv rewritten after every finished run.
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/file_lock.h"
#include "core/parent_death.h"
#include "core/safetensors.h"
#include "sweep/sweep.h"
#include "train/checkpoint.h"
#include "train/progress.h"

extern char** environ;

namespace attnlab {

namespace fs = std::filesystem;

namespace {

enum class Mode { fresh, resume };

// SIGINT / SIGTERM while a sweep runs: stop starting runs, end the running
// ones (their last checkpoints stay intact) and leave; the next sweep resumes.
volatile std::sig_atomic_t stop_requested = 0;
extern "C" void request_stop(int) {
    stop_requested = 1;
}

struct StopSignals {
    struct sigaction old_int {
    }, old_term{};
    StopSignals() {
        stop_requested = 0;
        struct sigaction sa {};
        sa.sa_handler = request_stop;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: waitpid returns EINTR
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    ~StopSignals() {
        sigaction(SIGINT, &old_int, nullptr);
        sigaction(SIGTERM, &old_term, nullptr);
    }
};

pid_t spawn_train(const std::string& binary, const std::vector<std::string>& args,
                  const std::string& log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> all{binary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = child_environment();  // the child dies with this process
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary.c_str(), &fa, nullptr, argv.data(),
                               environment_pointers(env).data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw Error("cannot start '" + binary + "': " + std::strerror(rc));
    return pid;
}

std::string last_lines(const std::string& path, size_t n) {
    std::ifstream in(path);
    std::deque<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        // Progress bars redraw with '\r': keep what was drawn last.
        if (const size_t cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);
        if (line.empty()) continue;
        lines.push_back(line);
        if (lines.size() > n) lines.pop_front();
    }
    std::string s;
    for (const auto& l : lines) s += "    " + l + "\n";
    return s;
}

using Clock = std::chrono::steady_clock;

struct Running {
    size_t run;
    Mode mode;
    Clock::time_point start;
};

// What one sweep process is doing: the plan, its options, the results so far.
struct SweepState {
    const SweepPlan& plan;
    const SweepOptions& opt;
    SweepOutcome out;
    std::vector<std::optional<RunResult>> results;
    std::deque<std::pair<size_t, Mode>> pending;
    std::map<pid_t, Running> running;
    int finished = 0;
    Clock::time_point t0 = Clock::now();

    SweepState(const SweepPlan& p, const SweepOptions& o)
        : plan(p), opt(o), results(p.runs.size()) {
        out.total = int(p.runs.size());
    }
    std::string dir(size_t i) const { return opt.out_dir + "/" + plan.runs[i].name; }
};

// Sorts every run into skipped (finished), resumed or fresh before anything
// starts, so a folder holding another configuration stops the sweep at once.
void classify_runs(SweepState& s) {
    const SweepPlan& plan = s.plan;
    const SweepOptions& opt = s.opt;
    std::vector<std::string> stale;
    for (size_t i = 0; i < plan.runs.size(); i++) {
        const std::string dir = s.dir(i);
        if (!opt.only.empty() &&
            std::find(opt.only.begin(), opt.only.end(), plan.runs[i].name) == opt.only.end()) {
            s.out.total--;  // not this sweep process's run: only its result is read
            s.results[i] = read_run_result(dir);
            continue;
        }
        if (!fs::exists(dir + "/config.toml")) {
            s.pending.emplace_back(i, Mode::fresh);
            continue;
        }
        {  // a run of a killed sweep dies with it: wait for it, then finish its last checkpoint
            const FolderLock run_lock(dir, "run folder", 10.0);
            recover_run_folder(dir);
        }
        if (auto diff = config_difference(dir, plan.runs[i].cfg)) {
            stale.push_back("'" + dir + "': " + *diff);
            continue;
        }
        if ((s.results[i] = read_run_result(dir)))
            s.out.skipped++;
        else if (fs::exists(dir + "/model.safetensors") &&
                 fs::exists(dir + "/optimizer.safetensors"))
            s.pending.emplace_back(i, Mode::resume);
        else
            s.pending.emplace_back(i, Mode::fresh);
    }
    if (stale.empty()) return;
    std::string msg = std::to_string(stale.size()) +
                      " run folder(s) hold a different configuration than the grid now asks for "
                      "(remove them, or choose another --out):";
    for (size_t i = 0; i < std::min<size_t>(stale.size(), 5); i++) msg += "\n  " + stale[i];
    if (stale.size() > 5) msg += "\n  ...";
    throw Error(msg);
}

// Ends the running children (their last checkpoints stay intact) and reports how far it got.
[[noreturn]] void stop_sweep(SweepState& s) {
    for (const auto& [pid, r] : s.running) ::kill(pid, SIGTERM);
    for (const auto& [pid, r] : s.running) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    throw Error(
        fmt::format("sweep interrupted with {} of {} runs finished; run the same command again to "
                    "resume (interrupted runs continue from their last checkpoint)",
                    s.finished, s.out.total));
}

// Starts the next pending run: `train --resume` or `train --config` into its folder.
void start_next(SweepState& s) {
    const auto [i, mode] = s.pending.front();
    s.pending.pop_front();
    const SweepRun& run = s.plan.runs[i];
    const std::string dir = s.dir(i);
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string log = dir + "/train.log";
    std::vector<std::string> args;
    if (mode == Mode::resume) {
        args = {"train", "--resume", dir};
    } else {
        write_text_atomic(dir + "/sweep-config.toml", to_toml(run.cfg));
        args = {"train", "--config", dir + "/sweep-config.toml", "--out", dir, "--force"};
    }
    std::ofstream(log, std::ios::app)
        << "# attnlab " << (mode == Mode::resume ? "resuming" : "starting") << " run " << run.name
        << "\n";
    s.running[spawn_train(s.opt.binary, args, log)] = {i, mode, Clock::now()};
}

// One progress line of a finished run: accuracy, per-task accuracies, time, ETA.
void print_finished(const SweepState& s, const Running& r, const RunResult& res) {
    const double wall = std::chrono::duration<double>(Clock::now() - r.start).count();
    const double elapsed = std::chrono::duration<double>(Clock::now() - s.t0).count();
    const int done_here = s.out.ran + int(s.out.failed.size());
    const double eta = elapsed / done_here * double(s.out.total - s.finished);
    std::string per;
    if (res.per_task.size() > 1)
        for (const auto& [label, acc] : res.per_task)
            per += fmt::format(" {} {:.1f}%", label, 100 * acc);
    if (res.bits_per_byte) per += fmt::format(" {:.3f} bits/byte", *res.bits_per_byte);
    fmt::print("[{}/{}] {}  acc {:.2f}%{}  {:.1f} s  elapsed {}  ETA {}\n", s.finished, s.out.total,
               s.plan.runs[r.run].name, 100 * res.accuracy,
               per.empty() ? "" : " (" + per.substr(1) + ")", wall, format_duration(elapsed),
               format_duration(eta));
    std::fflush(stdout);
}

// A child ended: record its result, or retry a failed resume from scratch, or
// count it failed and show the end of its log.
void on_exit(SweepState& s, const Running& r, int status) {
    const SweepRun& run = s.plan.runs[r.run];
    const std::string dir = s.dir(r.run);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::optional<RunResult> res;
    if (ok) res = read_run_result(dir);
    if (!res && r.mode == Mode::resume) {  // the checkpoint could not be continued: start over
        if (!s.opt.quiet) fmt::print("run {} could not be resumed; starting it again\n", run.name);
        s.pending.emplace_front(r.run, Mode::fresh);
        return;
    }
    s.finished++;
    if (!res) {
        s.out.failed.push_back(run.name);
        if (!s.opt.quiet)
            fmt::print("[{}/{}] {} FAILED ({}); the end of {}/train.log:\n{}", s.finished,
                       s.out.total, run.name,
                       WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                         : fmt::format("signal {}", WTERMSIG(status)),
                       dir, last_lines(dir + "/train.log", 4));
        std::fflush(stdout);
        return;
    }
    s.results[r.run] = res;
    s.out.ran++;
    // Other processes (Slurm array tasks, MPI ranks) finish runs of the same sweep.
    for (size_t i = 0; i < s.plan.runs.size(); i++)
        if (!s.results[i]) s.results[i] = read_run_result(s.dir(i));
    write_text_atomic(s.opt.out_dir + "/runs.csv", runs_csv(s.plan, s.results));
    if (!s.opt.quiet) print_finished(s, r, *res);
}

}  // namespace

SweepOutcome run_sweep(const SweepPlan& plan, const SweepOptions& opt) {
    if (opt.binary.empty() || !fs::exists(opt.binary))
        throw Error("the attnlab executable '" + opt.binary +
                    "' to run the sweep with does not exist");
    const int jobs =
        opt.jobs > 0 ? opt.jobs : int(std::max(1u, std::thread::hardware_concurrency()));
    std::error_code ec;
    fs::create_directories(opt.out_dir, ec);
    if (!fs::is_directory(opt.out_dir))
        throw Error("cannot create sweep folder '" + opt.out_dir + "'");
    // One sweep per folder; the array tasks of a Slurm sweep (opt.only) share it.
    const FolderLock lock(opt.out_dir, "sweep folder", 0,
                          opt.only.empty() ? LockMode::exclusive : LockMode::shared);
    if (opt.only.empty()) remove_stale_temps(opt.out_dir);

    SweepState s(plan, opt);
    classify_runs(s);
    if (opt.only.empty()) {  // a process that runs some of the runs leaves the plan as it is
        write_text_atomic(opt.out_dir + "/grid.toml", plan.text);
        write_text_atomic(opt.out_dir + "/sweep.json", sweep_json(plan));
        write_text_atomic(opt.out_dir + "/runs.csv", runs_csv(plan, s.results));
    }
    if (!opt.quiet)
        fmt::print("sweep {}: {} runs, {} finished already, {} to run, {} at a time\n", plan.origin,
                   s.out.total, s.out.skipped, s.pending.size(), jobs);
    std::fflush(stdout);

    s.finished = s.out.skipped;
    s.t0 = Clock::now();
    const StopSignals signals;
    while (!s.pending.empty() || !s.running.empty()) {
        if (stop_requested) stop_sweep(s);
        while (!s.pending.empty() && int(s.running.size()) < jobs) start_next(s);
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            throw Error(std::string("waiting for the sweep's runs failed: ") +
                        std::strerror(errno));
        }
        auto it = s.running.find(pid);
        if (it == s.running.end()) continue;
        const Running r = it->second;
        s.running.erase(it);
        on_exit(s, r, status);
    }
    return s.out;
}

}  // namespace attnlab
