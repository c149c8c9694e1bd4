// Opening a run folder for a new run or a resume, and reading its checkpoint back.
#include "train/run_folder.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/parse_number.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

void create_out_dir(const std::string& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec))
            throw Error("--out '" + dir + "' exists and is not a folder");
    } else if (!fs::create_directories(dir, ec) || ec) {
        throw Error("cannot create output folder '" + dir + "': " + ec.message());
    }
}

// With the folder's lock held: refuses a non-empty folder without --force.
void check_out_dir(const std::string& dir, bool force) {
    std::error_code ec;
    bool empty = true;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename() != FolderLock::kFileName) empty = false;
    if (!empty && !force)
        throw Error("output folder '" + dir +
                    "' exists and is not empty; pass --force to overwrite its run files, "
                    "--resume to continue it, or choose another --out");
    // Fail now, not after an hour of training, if the folder is not writable.
    const std::string probe = dir + "/.write-test";
    write_text_atomic(probe, "");
    fs::remove(probe, ec);
}

}  // namespace

RunLock open_new_run(const std::string& dir, bool force, const std::string& config_toml) {
    create_out_dir(dir);
    auto lock = std::make_unique<FolderLock>(dir, "run folder");
    check_out_dir(dir, force);
    std::error_code ec;
    fs::remove(dir + "/config.toml", ec);  // not a run folder until the new config is in
    clear_checkpoint(dir);
    write_text_atomic(dir + "/config.toml", config_toml);
    return lock;
}

void require_run_folder(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec) || !fs::exists(dir + "/config.toml", ec))
        throw Error("'" + dir + "' is not a run folder (no config.toml)");
}

RunLock lock_run_to_resume(const std::string& dir) {
    require_run_folder(dir);
    auto lock = std::make_unique<FolderLock>(dir, "run folder");
    recover_run_folder(dir);
    return lock;
}

const std::vector<std::string>& resumable_keys() {
    // Only keys that do not change the model, the data or the optimizer's past.
    static const std::vector<std::string> keys{"train.steps", "train.eval_every", "train.log_every",
                                               "train.checkpoint_every", "train.threads"};
    return keys;
}

RunConfig resume_config(const std::string& dir, const std::vector<std::string>& settings) {
    RunConfig cfg;
    apply_toml_file(cfg, dir + "/config.toml");
    const RunConfig before = cfg;
    for (const auto& s : settings) apply_setting(cfg, s);
    const auto& free = resumable_keys();
    for (const auto& k : config_keys()) {
        if (k.get(before) == k.get(cfg) ||
            std::find(free.begin(), free.end(), k.name) != free.end())
            continue;
        std::string list;
        for (const auto& f : free) list += (list.empty() ? "" : ", ") + f;
        throw Error("--set " + k.name +
                    " cannot change when resuming (it would change the model, data or optimizer "
                    "history); keys that may change: " +
                    list);
    }
    return cfg;
}

std::optional<long> checkpoint_in(const std::string& dir) {
    const std::string model = dir + "/model.safetensors", opt = dir + "/optimizer.safetensors";
    const bool has_model = fs::exists(model), has_opt = fs::exists(opt);
    if (!has_model && !has_opt) return std::nullopt;
    if (!has_model || !has_opt)
        throw Error("'" + dir + "' holds " + (has_model ? "model" : "optimizer") +
                    ".safetensors but not " + (has_model ? "optimizer" : "model") +
                    ".safetensors; the run folder is inconsistent");
    return checkpoint_step(model);
}

MetricsRows read_run_metrics(const std::string& dir, long last_step) {
    return read_metrics(dir + "/metrics.csv", last_step);
}

double metrics_field(const std::string& row, int i) {
    std::vector<std::string> f;
    std::stringstream ss(row);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    const size_t k = i >= 0 ? size_t(i) : f.size() - size_t(-i);
    if (k >= f.size() || f[k].empty()) return 0.0;
    return parse_number(f[k], "metrics.csv: a field in the row of the last checkpoint");
}

std::string metrics_text(const std::string& header, const std::vector<std::string>& rows) {
    std::string csv = header + "\n";
    for (const auto& r : rows) csv += r + "\n";
    return csv;
}

void continue_run(const std::string& dir, const std::string& config_toml) {
    std::error_code ec;
    fs::remove(dir + "/summary.json", ec);  // of an earlier, shorter run; stale now
    fs::remove(dir + "/samples.png", ec);
    write_text_atomic(dir + "/config.toml", config_toml);
}

}  // namespace attnlab
