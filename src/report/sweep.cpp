// Grid expansion and validation, and the sweep runner: a small process pool
// of `attnlab train` children, one per run, each writing its own run folder.
#include "report/sweep.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/file_lock.h"
#include "core/parent_death.h"
#include "core/read_file.h"
#include "core/safetensors.h"
#include "kernels/attention.h"
#include "tasks/task.h"
#include "diffusion/run.h"
#include "train/checkpoint.h"
#include "train/config_toml.h"
#include "train/progress.h"
#include "train/recipes.h"

extern char** environ;

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// A TOML value as the text apply_setting parses; numbers in their shortest exact form.
std::string value_text(const toml::node& n, const std::string& where) {
    if (auto s = n.as_string()) return s->get();
    if (auto i = n.as_integer()) return std::to_string(i->get());
    if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
    if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
    if (auto a = n.as_array()) {
        std::string s = "[";
        for (size_t i = 0; i < a->size(); i++) s += (i ? ", " : "") + value_text(*a->get(i), where);
        return s + "]";
    }
    throw Error(where + " must be a string, number, boolean or list");
}

bool is_config_key(const std::string& key) {
    for (const auto& k : config_keys())
        if (k.name == key) return true;
    return false;
}

// A table's entries in the order they appear in the file (toml++ keeps tables sorted by key).
std::vector<std::pair<std::string, const toml::node*>> in_file_order(const toml::table& t) {
    std::vector<std::pair<std::string, const toml::node*>> entries;
    for (auto& [k, v] : t) entries.emplace_back(std::string(k.str()), &v);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const auto& pa = a.second->source().begin;
        const auto& pb = b.second->source().begin;
        return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
    });
    return entries;
}

// Flattens a point of a tied axis ({name = "...", "model.arch" = "lstm", model = {dim = 96}})
// into (key, value) settings; `name` becomes the label.
void flatten_point(const toml::table& t, const std::string& prefix, const std::string& where,
                   std::vector<std::pair<std::string, std::string>>& out, std::string& label) {
    for (const auto& [k, node] : in_file_order(t)) {
        const toml::node& v = *node;
        const std::string key = prefix + k;
        if (prefix.empty() && key == "name") {
            if (!v.as_string()) throw Error(where + ": name must be a string");
            label = v.as_string()->get();
        } else if (auto sub = v.as_table()) {
            flatten_point(*sub, key + ".", where, out, label);
        } else {
            try {
                check_toml_type(key, v);
            } catch (const Error& e) {
                throw Error(where + ": " + e.what());
            }
            out.emplace_back(key, value_text(v, where + " key '" + key + "'"));
        }
    }
}

// Folder names: letters, digits and . _ - kept, everything else one '-'.
std::string sanitize(const std::string& s) {
    std::string out;
    for (char c : s) {
        const bool ok = std::isalnum(uint8_t(c)) || c == '.' || c == '_' || c == '-';
        if (ok)
            out += c;
        else if (!out.empty() && out.back() != '-')
            out += '-';
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out.empty() ? "x" : out;
}

std::string short_key(const std::string& key) {
    const size_t dot = key.rfind('.');
    return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Names for the runs from the values of the axes that vary: "attention=cog_k=3_seed=2".
void name_runs(SweepPlan& plan) {
    std::vector<size_t> varying;
    for (size_t a = 0; a < plan.axes.size(); a++)
        if (plan.axes[a].labels.size() > 1) varying.push_back(a);
    for (bool full_keys : {false, true}) {
        std::set<std::string> seen;
        bool unique = true;
        for (auto& run : plan.runs) {
            std::string name;
            for (size_t a : varying) {
                const GridAxis& axis = plan.axes[a];
                const std::string key = axis.tied || !full_keys ? short_key(axis.name) : axis.name;
                if (!name.empty()) name += '_';
                name += sanitize(key);
                name += '=';
                name += sanitize(run.values[a]);
            }
            run.name = name.empty() ? "run" : name;
            unique = unique && seen.insert(run.name).second;
        }
        if (unique) return;
    }
    // Values that differ only in characters a folder name cannot hold: number the runs.
    for (size_t i = 0; i < plan.runs.size(); i++)
        plan.runs[i].name = fmt::format("{:04}_{}", i, plan.runs[i].name);
}

std::string describe_values(const SweepPlan& plan, const SweepRun& run) {
    std::string s;
    for (size_t a = 0; a < plan.axes.size(); a++)
        s += (s.empty() ? "" : ", ") + plan.axes[a].name + " = " + run.values[a];
    return s;
}

}  // namespace

SweepPlan plan_sweep(const std::string& grid_text, const std::string& origin, int threads) {
    SweepPlan plan;
    plan.origin = origin;
    plan.text = grid_text;
    toml::table doc;
    try {
        doc = toml::parse(grid_text, origin);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << e;
        throw Error("cannot parse grid " + origin + ": " + os.str());
    }
    for (auto& [k, v] : doc) {
        const std::string key(k.str());
        if (key == "title" || key == "description") {
            if (!v.as_string()) throw Error(origin + ": '" + key + "' must be a string");
            if (key == "title") plan.title = v.as_string()->get();
        } else if (key != "base" && key != "grid") {
            throw Error(origin + ": unknown top-level entry '" + key +
                        "'; a grid file has [base] (with [base.model], [base.task], [base.train] "
                        "or recipe = \"name\"), [grid] and optionally title");
        }
    }

    // The base configuration: defaults, then the recipe, then [base.*].
    RunConfig base;
    if (auto* b = doc["base"].as_table()) {
        if (auto r = (*b)["recipe"].value<std::string>())
            apply_toml(base, find_recipe(*r).toml, "recipe '" + *r + "'");
        else if ((*b)["recipe"])
            throw Error(origin +
                        ": [base] recipe must be a string naming a recipe (see `attnlab recipes`)");
        for (auto& [k, v] : *b) {
            const std::string sec(k.str());
            if (sec == "recipe") continue;
            auto* table = v.as_table();
            if (!table || (sec != "model" && sec != "task" && sec != "train" && sec != "diffusion"))
                throw Error(origin + ": unknown entry '" + sec +
                            "' in [base]; valid: recipe = \"name\", [base.model], [base.task], "
                            "[base.train], [base.diffusion]");
            for (auto& [key, value] : *table) {
                const std::string name = sec + "." + std::string(key.str());
                try {
                    check_toml_type(name, value);
                    apply_setting(base, name, value_text(value, name));
                } catch (const Error& e) {
                    throw Error(origin + ": [base." + sec + "] " + e.what());
                }
            }
        }
    } else if (doc["base"]) {
        throw Error(origin + ": 'base' must be a table [base]");
    }

    // The axes.
    std::map<std::string, std::string> key_owner;  // configuration key -> axis setting it
    if (auto* g = doc["grid"].as_table()) {
        for (const auto& [k, node] : in_file_order(*g)) {
            const toml::node& v = *node;
            GridAxis axis;
            axis.name = k;
            const std::string where = origin + ": [grid] '" + axis.name + "'";
            // "model.attention" = "all": every map of the registry, so a new map joins such sweeps.
            toml::array every_map;
            if (axis.name == "model.attention" && v.value<std::string>() == "all")
                for (const auto& m : all_attention_maps()) every_map.push_back(std::string(m.name));
            const toml::array* list = every_map.empty() ? v.as_array() : &every_map;
            if (!list)
                throw Error(
                    where + " must be a list of values, e.g. \"" + axis.name + "\" = [1, 2, 3]" +
                    (v.as_table()
                         ? " (for keys that vary together use a list of tables: "
                           "name = [{ \"model.arch\" = \"lstm\", \"model.dim\" = 96 }, ...])"
                         : ""));
            if (list->empty()) throw Error(where + " is an empty list; give at least one value");
            const bool tables = list->get(0)->is_table();
            for (const auto& item : *list)
                if (item.is_table() != tables)
                    throw Error(where + " mixes tables and plain values; use one or the other");
            axis.tied = tables;
            for (size_t i = 0; i < list->size(); i++) {
                std::vector<std::pair<std::string, std::string>> settings;
                std::string label;
                if (tables) {
                    flatten_point(*list->get(i)->as_table(), "",
                                  where + " point " + std::to_string(i + 1), settings, label);
                    if (settings.empty())
                        throw Error(where + " point " + std::to_string(i + 1) +
                                    " sets no configuration key");
                    if (label.empty())
                        for (const auto& [key, value] : settings)
                            label += (label.empty() ? "" : " ") + value;
                } else {
                    try {
                        check_toml_type(axis.name, *list->get(i));
                    } catch (const Error& e) {
                        throw Error(where + ": " + e.what());
                    }
                    label = value_text(*list->get(i), where);
                    settings.emplace_back(axis.name, label);
                }
                for (const auto& [key, value] : settings) {
                    if (!is_config_key(key)) {  // apply_setting's error lists the valid keys
                        RunConfig probe;
                        try {
                            apply_setting(probe, key, value);
                        } catch (const Error& e) {
                            throw Error(where + ": " + e.what());
                        }
                    }
                    if (std::find(axis.keys.begin(), axis.keys.end(), key) == axis.keys.end())
                        axis.keys.push_back(key);
                }
                if (std::find(axis.labels.begin(), axis.labels.end(), label) != axis.labels.end())
                    throw Error(where + " lists '" + label + "' twice");
                axis.labels.push_back(label);
                axis.settings.push_back(std::move(settings));
            }
            for (const auto& key : axis.keys) {
                if (key == "train.threads")
                    throw Error(where +
                                ": train.threads cannot be swept; every run gets the sweep's "
                                "--threads (default 1)");
                auto [it, fresh] = key_owner.emplace(key, axis.name);
                if (!fresh)
                    throw Error(origin + ": [grid] key " + key + " is set by both '" + it->second +
                                "' and '" + axis.name + "'");
            }
            plan.axes.push_back(std::move(axis));
        }
    } else if (doc["grid"]) {
        throw Error(origin + ": 'grid' must be a table [grid]");
    }

    // The cartesian product, first axis slowest; every run resolved now.
    size_t total = 1;
    for (const auto& a : plan.axes) total *= a.labels.size();
    if (total > 100000)
        throw Error(origin + ": the grid has " + std::to_string(total) + " runs; that is too many");
    for (size_t r = 0; r < total; r++) {
        SweepRun run;
        run.cfg = base;
        size_t rest = r;
        std::vector<size_t> point(plan.axes.size());
        for (size_t a = plan.axes.size(); a-- > 0;) {
            point[a] = rest % plan.axes[a].labels.size();
            rest /= plan.axes[a].labels.size();
        }
        for (size_t a = 0; a < plan.axes.size(); a++) {
            run.values.push_back(plan.axes[a].labels[point[a]]);
            for (const auto& s : plan.axes[a].settings[point[a]]) run.settings.push_back(s);
        }
        plan.runs.push_back(std::move(run));
    }
    name_runs(plan);
    for (auto& run : plan.runs) {
        try {
            for (const auto& [key, value] : run.settings) apply_setting(run.cfg, key, value);
            run.cfg.train.threads = threads;
            if (is_diffusion(run.cfg)) {
                resolve_diffusion(run.cfg);
                continue;
            }
            const auto task = make_task(run.cfg.task);
            resolve(run.cfg, task->vocab());
        } catch (const Error& e) {
            throw Error(origin + ": run '" + run.name + "' (" + describe_values(plan, run) +
                        "): " + e.what());
        }
    }
    return plan;
}

SweepPlan load_grid(const std::string& path, int threads) {
    const std::string text = read_regular_file(path, "grid file '" + path + "'", kMaxConfigBytes);
    return plan_sweep(text, "'" + path + "'", threads);
}

std::optional<RunResult> read_run_result(const std::string& run_dir) {
    const std::string path = run_dir + "/summary.json";
    std::ifstream in(path);
    if (!in) return std::nullopt;
    try {
        const auto j = nlohmann::ordered_json::parse(in);  // keeps the task order (I, A, R, C)
        RunResult r;
        r.accuracy = j.at("eval_accuracy").get<double>();
        r.loss = j.at("eval_loss").get<double>();
        if (j.contains("eval_bits_per_byte"))
            r.bits_per_byte = j.at("eval_bits_per_byte").get<double>();
        for (auto& [label, v] : j.at("eval_per_task").items())
            r.per_task.emplace_back(label, v.at("accuracy").get<double>());
        r.steps = j.at("steps").get<long>();
        r.params = j.at("params").get<size_t>();
        r.wall_s = j.at("wall_s").get<double>();
        return r;
    } catch (const std::exception& e) {
        throw Error("cannot read '" + path + "': " + e.what());
    }
}

static std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

std::string runs_csv(const SweepPlan& plan, const std::vector<std::optional<RunResult>>& results) {
    std::vector<std::string> labels;  // every task label, in order of first appearance
    for (const auto& r : results)
        if (r)
            for (const auto& [label, acc] : r->per_task)
                if (std::find(labels.begin(), labels.end(), label) == labels.end())
                    labels.push_back(label);
    bool bpb = false;
    for (const auto& r : results) bpb = bpb || (r && r->bits_per_byte);
    std::string csv = "run";
    for (const auto& a : plan.axes) csv += ',' + csv_field(a.name);
    csv += bpb ? ",accuracy,loss,bits_per_byte" : ",accuracy,loss";
    for (const auto& l : labels) csv += ',' + csv_field("accuracy_" + l);
    csv += ",params,steps,wall_s\n";
    for (size_t i = 0; i < plan.runs.size(); i++) {
        if (!results[i]) continue;
        const RunResult& r = *results[i];
        csv += csv_field(plan.runs[i].name);
        for (const auto& v : plan.runs[i].values) csv += ',' + csv_field(v);
        csv += fmt::format(",{:.6f},{:.6f}", r.accuracy, r.loss);
        if (bpb)
            csv += r.bits_per_byte ? fmt::format(",{:.6f}", *r.bits_per_byte) : std::string(",");
        for (const auto& l : labels) {
            auto it = std::find_if(r.per_task.begin(), r.per_task.end(),
                                   [&](auto& p) { return p.first == l; });
            csv += it == r.per_task.end() ? "," : fmt::format(",{:.6f}", it->second);
        }
        csv += fmt::format(",{},{},{:.2f}\n", r.params, r.steps, r.wall_s);
    }
    return csv;
}

std::string sweep_json(const SweepPlan& plan) {
    nlohmann::ordered_json j;
    j["format"] = "attnlab-sweep-1";
    j["title"] = plan.title;
    j["grid"] = plan.origin;
    j["axes"] = nlohmann::json::array();
    for (const auto& a : plan.axes)
        j["axes"].push_back(
            {{"name", a.name}, {"tied", a.tied}, {"keys", a.keys}, {"values", a.labels}});
    j["runs"] = nlohmann::json::array();
    for (const auto& r : plan.runs) j["runs"].push_back({{"name", r.name}, {"values", r.values}});
    return j.dump(2) + "\n";
}

std::optional<std::string> config_difference(const std::string& dir, const RunConfig& planned) {
    RunConfig stored;
    apply_toml_file(stored, dir + "/config.toml");
    for (const auto& k : config_keys()) {
        if (k.name == "train.threads") continue;
        if (k.get(stored) != k.get(planned))
            return k.name + " is " + k.get(stored) + " in the folder but " + k.get(planned) +
                   " in the grid";
    }
    return std::nullopt;
}

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

    // Classify every run before starting anything, so a stale folder stops the sweep at once.
    SweepOutcome out;
    out.total = int(plan.runs.size());
    std::vector<std::optional<RunResult>> results(plan.runs.size());
    std::deque<std::pair<size_t, Mode>> pending;
    std::vector<std::string> stale;
    for (size_t i = 0; i < plan.runs.size(); i++) {
        const std::string dir = opt.out_dir + "/" + plan.runs[i].name;
        if (!opt.only.empty() &&
            std::find(opt.only.begin(), opt.only.end(), plan.runs[i].name) == opt.only.end()) {
            out.total--;  // not this sweep process's run: only its result is read
            results[i] = read_run_result(dir);
            continue;
        }
        if (!fs::exists(dir + "/config.toml")) {
            pending.emplace_back(i, Mode::fresh);
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
        if ((results[i] = read_run_result(dir)))
            out.skipped++;
        else if (fs::exists(dir + "/model.safetensors") &&
                 fs::exists(dir + "/optimizer.safetensors"))
            pending.emplace_back(i, Mode::resume);
        else
            pending.emplace_back(i, Mode::fresh);
    }
    if (!stale.empty()) {
        std::string msg =
            std::to_string(stale.size()) +
            " run folder(s) hold a different configuration than the grid now asks for "
            "(remove them, or choose another --out):";
        for (size_t i = 0; i < std::min<size_t>(stale.size(), 5); i++) msg += "\n  " + stale[i];
        if (stale.size() > 5) msg += "\n  ...";
        throw Error(msg);
    }

    if (opt.only.empty()) {  // a process that runs some of the runs leaves the plan as it is
        write_text_atomic(opt.out_dir + "/grid.toml", plan.text);
        write_text_atomic(opt.out_dir + "/sweep.json", sweep_json(plan));
        write_text_atomic(opt.out_dir + "/runs.csv", runs_csv(plan, results));
    }
    if (!opt.quiet)
        fmt::print("sweep {}: {} runs, {} finished already, {} to run, {} at a time\n", plan.origin,
                   out.total, out.skipped, pending.size(), jobs);
    std::fflush(stdout);

    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    struct Running {
        size_t run;
        Mode mode;
        clock::time_point start;
    };
    std::map<pid_t, Running> running;
    int finished = out.skipped;
    const StopSignals signals;
    while (!pending.empty() || !running.empty()) {
        if (stop_requested) {
            for (const auto& [pid, r] : running) ::kill(pid, SIGTERM);
            for (const auto& [pid, r] : running) {
                int status = 0;
                while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                }
            }
            throw Error(fmt::format(
                "sweep interrupted with {} of {} runs finished; run the same command again to "
                "resume (interrupted runs continue from their last checkpoint)",
                finished, out.total));
        }
        while (!pending.empty() && int(running.size()) < jobs) {
            const auto [i, mode] = pending.front();
            pending.pop_front();
            const SweepRun& run = plan.runs[i];
            const std::string dir = opt.out_dir + "/" + run.name;
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
                << "# attnlab " << (mode == Mode::resume ? "resuming" : "starting") << " run "
                << run.name << "\n";
            running[spawn_train(opt.binary, args, log)] = {i, mode, clock::now()};
        }
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            throw Error(std::string("waiting for the sweep's runs failed: ") +
                        std::strerror(errno));
        }
        auto it = running.find(pid);
        if (it == running.end()) continue;
        const Running r = it->second;
        running.erase(it);
        const SweepRun& run = plan.runs[r.run];
        const std::string dir = opt.out_dir + "/" + run.name;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        std::optional<RunResult> res;
        if (ok) res = read_run_result(dir);
        if (!res) {
            if (r.mode == Mode::resume) {  // the checkpoint could not be continued: start over
                if (!opt.quiet)
                    fmt::print("run {} could not be resumed; starting it again\n", run.name);
                pending.emplace_front(r.run, Mode::fresh);
                continue;
            }
            out.failed.push_back(run.name);
            finished++;
            if (!opt.quiet)
                fmt::print("[{}/{}] {} FAILED ({}); the end of {}/train.log:\n{}", finished,
                           out.total, run.name,
                           WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                             : fmt::format("signal {}", WTERMSIG(status)),
                           dir, last_lines(dir + "/train.log", 4));
            std::fflush(stdout);
            continue;
        }
        results[r.run] = res;
        out.ran++;
        finished++;
        // Other processes (Slurm array tasks, MPI ranks) finish runs of the same sweep.
        for (size_t i = 0; i < plan.runs.size(); i++)
            if (!results[i]) results[i] = read_run_result(opt.out_dir + "/" + plan.runs[i].name);
        write_text_atomic(opt.out_dir + "/runs.csv", runs_csv(plan, results));
        if (!opt.quiet) {
            const double wall = std::chrono::duration<double>(clock::now() - r.start).count();
            const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
            const int done_here = out.ran + int(out.failed.size());
            const double eta = elapsed / done_here * double(out.total - finished);
            std::string per;
            if (res->per_task.size() > 1)
                for (const auto& [label, acc] : res->per_task)
                    per += fmt::format(" {} {:.1f}%", label, 100 * acc);
            if (res->bits_per_byte) per += fmt::format(" {:.3f} bits/byte", *res->bits_per_byte);
            fmt::print("[{}/{}] {}  acc {:.2f}%{}  {:.1f} s  elapsed {}  ETA {}\n", finished,
                       out.total, run.name, 100 * res->accuracy,
                       per.empty() ? "" : " (" + per.substr(1) + ")", wall,
                       format_duration(elapsed), format_duration(eta));
            std::fflush(stdout);
        }
    }
    return out;
}

}  // namespace attnlab
