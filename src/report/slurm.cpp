// The Slurm launcher of sweeps (a job array of `attnlab sweep --run NAME`
// tasks) and the run states behind `attnlab sweep --status`.
#include "report/slurm.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"

extern char** environ;

namespace attnlab {

namespace fs = std::filesystem;

namespace {

struct CommandResult {
    int status = -1;  // exit code; -1 when it could not start or died of a signal
    std::string out;  // stdout and stderr together
};

// Runs argv[0] (looked up in PATH) and collects what it prints.
CommandResult run_command(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe(fds) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    CommandResult r;
    if (rc != 0) {
        ::close(fds[0]);
        r.out = std::strerror(rc);
        return r;
    }
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        r.out.append(buf, size_t(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
    return r;
}

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(uint8_t(s.back()))) s.pop_back();
    size_t b = 0;
    while (b < s.size() && std::isspace(uint8_t(s[b]))) b++;
    return s.substr(b);
}

// A word for a bash script: plain when safe, else single-quoted.
std::string shell_quote(const std::string& s) {
    const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(uint8_t(c)) || std::strchr("_-.,/:=+%@", c);
    });
    if (plain) return s;
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

bool has_option(const std::vector<std::string>& words, const std::string& long_name,
                const std::string& short_name) {
    for (const auto& w : words)
        if (w == long_name || w.rfind(long_name + "=", 0) == 0 ||
            (!short_name.empty() && w.rfind(short_name, 0) == 0))
            return true;
    return false;
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
        if (!trim(l).empty()) lines.push_back(trim(l));
    return lines;
}

// The last step in a run folder's metrics.csv (0 when none).
long last_logged_step(const std::string& dir) {
    long step = 0;
    std::ifstream in(dir + "/metrics.csv");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line))
        if (!line.empty()) step = std::atol(line.c_str());
    return step;
}

// The last "error: ..." line of a run's train.log, if any.
std::string last_error(const std::string& dir) {
    std::ifstream in(dir + "/train.log");
    std::string line, err;
    while (std::getline(in, line))
        if (line.rfind("error: ", 0) == 0) err = line;
    return err;
}

// Whether a process holds the run folder's lock (flock on <dir>/.lock, held by
// `attnlab train` while it writes the folder); probed without waiting.
bool run_folder_in_use(const std::string& dir) {
    const int fd = ::open((dir + "/.lock").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return busy;
}

}  // namespace

std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    for (size_t i = 0; i < s.size(); i++) {
        const char c = s[i];
        if (quote) {
            if (c == quote)
                quote = 0;
            else if (c == '\\' && quote == '"' && i + 1 < s.size())
                cur += s[++i];
            else
                cur += c;
        } else if (c == '\'' || c == '"') {
            quote = c, in_word = true;
        } else if (c == '\\' && i + 1 < s.size()) {
            cur += s[++i], in_word = true;
        } else if (std::isspace(uint8_t(c))) {
            if (in_word) words.push_back(cur), cur.clear(), in_word = false;
        } else {
            cur += c, in_word = true;
        }
    }
    if (quote)
        throw Error("--slurm \"" + s + "\" has an unclosed " + std::string(1, quote) + " quote");
    if (in_word) words.push_back(cur);
    return words;
}

std::string slurm_script(const std::vector<std::string>& runs, const SlurmOptions& opt) {
    const std::vector<std::string> extra = split_words(opt.sbatch_args);
    for (const auto& w : extra)
        if (w.empty() || w[0] != '-')
            throw Error("--slurm \"" + opt.sbatch_args + "\": '" + w +
                        "' is not an sbatch option; give options like --partition=p "
                        "--time=01:00:00 (each with its value after '=')");
    for (const char* own : {"--array", "--output", "--error", "--chdir"})
        if (has_option(extra, own, ""))
            throw Error(
                fmt::format("--slurm: {} is set by attnlab sweep (one array task per run, "
                            "logs in DIR/slurm/logs); leave it out",
                            own));
    const std::string slurm_dir = opt.out_dir + "/slurm";
    std::string s = "#!/bin/bash\n";
    s += "# Written by `attnlab sweep --launcher slurm`: one array task per run that is not\n"
         "# finished; each trains its run into " +
         opt.out_dir + "/<run> (log: <run>/train.log).\n";
    s += "#SBATCH --job-name=attnlab-sweep\n";
    std::string array = fmt::format("0-{}", runs.size() - 1);
    if (opt.max_parallel > 0) array += fmt::format("%{}", opt.max_parallel);
    s += "#SBATCH --array=" + array + "\n";
    s += "#SBATCH --ntasks=1\n";
    if (!has_option(extra, "--cpus-per-task", "-c"))
        s += fmt::format("#SBATCH --cpus-per-task={}\n", opt.threads);
    s += "#SBATCH --chdir=" + shell_quote(opt.workdir) + "\n";
    s += "#SBATCH --output=" + shell_quote(slurm_dir + "/logs/%A_%a.out") + "\n";
    for (const auto& w : extra) s += "#SBATCH " + shell_quote(w) + "\n";
    s += "\nruns=(\n";
    for (const auto& r : runs) s += "  " + shell_quote(r) + "\n";
    s += ")\n";
    s += "run=${runs[$SLURM_ARRAY_TASK_ID]}\n";
    // train.threads is fixed in every run's configuration; OpenMP and OpenBLAS follow it.
    s += fmt::format("export OMP_NUM_THREADS={}\n", opt.threads);
    s += "exec " + shell_quote(opt.binary) + " sweep --out " + shell_quote(opt.out_dir) +
         " --run \"$run\" --threads " + std::to_string(opt.threads) + "\n";
    return s;
}

std::map<std::string, SlurmTask> slurm_tasks_in_queue(const std::string& dir,
                                                      std::string* problem) {
    std::map<std::string, SlurmTask> tasks;
    const std::string jobs_dir = dir + "/slurm/jobs";
    std::error_code ec;
    if (!fs::is_directory(jobs_dir, ec)) return tasks;
    // job id -> run names by array index, one file per submission
    std::map<std::string, std::vector<std::string>> submitted;
    for (const auto& e : fs::directory_iterator(jobs_dir, ec))
        if (e.path().extension() == ".runs")
            submitted[e.path().stem().string()] = read_lines(e.path().string());
    if (submitted.empty()) return tasks;
    const CommandResult q = run_command({"squeue", "--me", "-h", "-r", "-o", "%F %K %T"});
    if (q.status != 0) {
        const std::string why =
            "cannot ask Slurm which of the sweep's tasks are queued (`squeue` " +
            (q.status < 0 ? "could not start: " + q.out : "failed: " + trim(q.out)) + ")";
        if (!problem) throw Error(why);
        *problem = why;
        return tasks;
    }
    std::istringstream lines(q.out);
    for (std::string job, index, state; lines >> job >> index >> state;) {
        auto it = submitted.find(job);
        if (it == submitted.end() || index == "N/A") continue;
        const size_t i = std::strtoul(index.c_str(), nullptr, 10);
        if (i >= it->second.size()) continue;
        const bool running = state == "RUNNING" || state == "COMPLETING";
        tasks[it->second[i]] = {running, job + "_" + index};
    }
    return tasks;
}

SlurmSubmission submit_slurm_sweep(const SweepPlan& plan, const SlurmOptions& opt) {
    if (opt.threads < 1) throw Error(fmt::format("--threads {} must be >= 1", opt.threads));
    if (opt.max_parallel < 0)
        throw Error(fmt::format("--max-parallel {} must be >= 0 (0: no limit)", opt.max_parallel));
    SlurmSubmission sub;
    std::error_code ec;
    fs::create_directories(opt.out_dir + "/slurm/logs", ec);
    fs::create_directories(opt.out_dir + "/slurm/jobs", ec);
    if (!fs::is_directory(opt.out_dir + "/slurm/jobs"))
        throw Error("cannot create '" + opt.out_dir + "/slurm' (is the sweep folder writable?)");

    const auto queued =
        opt.dry_run ? std::map<std::string, SlurmTask>{} : slurm_tasks_in_queue(opt.out_dir);
    std::vector<std::string> stale;
    for (const auto& run : plan.runs) {
        const std::string dir = opt.out_dir + "/" + run.name;
        if (fs::exists(dir + "/config.toml"))
            if (auto diff = config_difference(dir, run.cfg)) {
                stale.push_back("'" + dir + "': " + *diff);
                continue;
            }
        if (read_run_result(dir))
            sub.finished++;
        else if (queued.count(run.name))
            sub.in_queue++;
        else
            sub.runs.push_back(run.name);
    }
    if (!stale.empty())
        throw Error(
            fmt::format("{} run folder(s) hold a different configuration than the grid "
                        "now asks for (remove them, or choose another --out); the first: {}",
                        stale.size(), stale.front()));
    write_text_atomic(opt.out_dir + "/grid.toml", plan.text);
    write_text_atomic(opt.out_dir + "/sweep.json", sweep_json(plan));
    if (sub.runs.empty()) return sub;
    sub.script = slurm_script(sub.runs, opt);
    sub.script_path = opt.out_dir + "/slurm/sweep.sbatch";
    write_text_atomic(sub.script_path, sub.script);
    if (opt.dry_run) return sub;

    const CommandResult r = run_command({"sbatch", "--parsable", sub.script_path});
    if (r.status < 0)
        throw Error("cannot run `sbatch` (" + r.out +
                    "): is this a Slurm login node? `--dry-run` writes and prints the script "
                    "without submitting it");
    if (r.status != 0) throw Error("sbatch refused " + sub.script_path + ": " + trim(r.out));
    // --parsable prints "jobid" or "jobid;cluster".
    std::string id = trim(r.out);
    if (const size_t nl = id.rfind('\n'); nl != std::string::npos) id = id.substr(nl + 1);
    id = id.substr(0, id.find(';'));
    if (id.empty() || !std::all_of(id.begin(), id.end(), ::isdigit))
        throw Error("sbatch printed no job id: '" + trim(r.out) + "'");
    sub.job_id = id;
    std::string names;
    for (const auto& n : sub.runs) names += n + "\n";
    write_text_atomic(opt.out_dir + "/slurm/jobs/" + id + ".runs", names);
    return sub;
}

const char* run_state_name(RunState s) {
    switch (s) {
        case RunState::finished:
            return "finished";
        case RunState::running:
            return "running";
        case RunState::queued:
            return "queued";
        case RunState::failed:
            return "failed";
        case RunState::not_started:
            return "not started";
    }
    return "?";
}

std::vector<RunStatus> sweep_status(const std::string& dir, std::string* note) {
    std::ifstream in(dir + "/sweep.json");
    if (!in)
        throw Error("'" + dir +
                    "' is not a sweep folder (no sweep.json); give the --out of a sweep");
    std::vector<std::string> names;
    try {
        const auto j = nlohmann::json::parse(in);
        for (const auto& r : j.at("runs")) names.push_back(r.at("name").get<std::string>());
    } catch (const std::exception& e) {
        throw Error("cannot read '" + dir + "/sweep.json': " + e.what());
    }
    const auto queue = slurm_tasks_in_queue(dir, note);
    std::vector<RunStatus> out;
    for (const auto& name : names) {
        RunStatus s;
        s.name = name;
        const std::string run_dir = dir + "/" + name;
        const auto task = queue.find(name);
        if (auto res = read_run_result(run_dir)) {
            s.state = RunState::finished;
            s.detail = fmt::format("accuracy {:.2f}%, {} steps", 100 * res->accuracy, res->steps);
        } else if (run_folder_in_use(run_dir) || (task != queue.end() && task->second.running)) {
            s.state = RunState::running;
            s.detail = fmt::format("step {}", last_logged_step(run_dir));
            if (task != queue.end()) s.detail += ", Slurm task " + task->second.id;
        } else if (task != queue.end()) {
            s.state = RunState::queued;
            s.detail = "Slurm task " + task->second.id + " pending";
        } else if (fs::exists(run_dir + "/config.toml")) {
            s.state = RunState::failed;
            const std::string err = last_error(run_dir);
            s.detail = fmt::format("stopped at step {}", last_logged_step(run_dir));
            if (!err.empty()) s.detail += "; " + err;
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace attnlab
