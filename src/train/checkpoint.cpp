// Atomic checkpoints of a run folder (staging folder, one commit rename, moves
// that the next writer finishes), the optimizer state file, and checked reads.
#include "train/checkpoint.h"

#include <fmt/core.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/parse_number.h"
#include "core/read_file.h"
#include "core/safetensors.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

const char* kStaging = "/.checkpoint.tmp";  // being written; discarded after a kill
const char* kPending = "/.checkpoint.new";  // committed; its files still to move into place

void remove_path(const std::string& p) {
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec) throw Error("cannot remove '" + p + "': " + ec.message());
}

// Moves the files of a committed checkpoint into the run folder (idempotent).
void finish_pending(const std::string& dir) {
    const std::string pending = dir + kPending;
    std::error_code ec;
    if (!fs::is_directory(pending, ec)) return;
    for (const auto& name : checkpoint_files())
        if (fs::exists(pending + "/" + name, ec))
            rename_durable(pending + "/" + name, dir + "/" + name);
    crash_point("moved all files of", pending);
    remove_path(pending);
    sync_folder(dir);
}

}  // namespace

CheckpointWriter::CheckpointWriter(const std::string& dir) : dir_(dir), staging_(dir + kStaging) {
    remove_path(staging_);
    std::error_code ec;
    if (!fs::create_directory(staging_, ec) || ec)
        throw Error("cannot create '" + staging_ + "': " + (ec ? ec.message() : "it exists"));
}

CheckpointWriter::~CheckpointWriter() {
    std::error_code ec;
    if (!committed_) fs::remove_all(staging_, ec);  // frees the space a failed write took
}

std::string CheckpointWriter::path(const std::string& name) const {
    return staging_ + "/" + name;
}

void CheckpointWriter::commit() {
    finish_pending(dir_);  // an earlier commit is always finished first; this only guards
    sync_folder(staging_);
    rename_durable(staging_, dir_ + kPending);  // the commit point
    committed_ = true;                          // from here on, the next writer finishes it
    finish_pending(dir_);
}

void recover_run_folder(const std::string& dir) {
    finish_pending(dir);
    remove_path(dir + kStaging);
    remove_stale_temps(dir);
}

void clear_checkpoint(const std::string& dir) {
    remove_path(dir + kPending);
    remove_path(dir + kStaging);
    for (auto it = checkpoint_files().rbegin(); it != checkpoint_files().rend(); ++it)
        remove_path(dir + "/" + *it);  // summary.json first: the folder never looks finished
    remove_stale_temps(dir);
    sync_folder(dir);
}

void save_optimizer_state(const ParamTable& table, const Optimizer& opt, const std::string& path) {
    SafeTensorsWriter w;
    auto& o = const_cast<Optimizer&>(opt);  // m() and v() are not const; only read here
    for (const auto& p : table.entries()) {
        w.add_f32("m." + p.name, p.shape, o.m().data() + p.offset);
        w.add_f32("v." + p.name, p.shape, o.v().data() + p.offset);
    }
    w.set_metadata("format", "attnlab-1");
    w.set_metadata("kind", "train-state");
    w.set_metadata("step", std::to_string(opt.steps_done()));
    w.write(path);
}

long checkpoint_step(const std::string& path) {
    const SafeTensorsFile f(path);
    const auto it = f.metadata().find("step");
    if (it == f.metadata().end()) throw Error("'" + path + "' records no step in its metadata");
    return parse_count(it->second, "'" + path + "': the metadata step");
}

void load_optimizer_state(const ParamTable& table, Optimizer& opt, const std::string& path,
                          long step) {
    const SafeTensorsFile state(path);
    const auto it = state.metadata().find("step");
    if (it == state.metadata().end()) throw Error("'" + path + "' records no step in its metadata");
    const long own = parse_count(it->second, "'" + path + "': the metadata step");
    if (own != step)
        throw Error(
            fmt::format("'{}' is the optimizer state of step {} but the model is of step {}; "
                        "the run folder is inconsistent",
                        path, own, step));
    std::set<std::string> expected;
    for (const auto& p : table.entries()) {
        const float* m = state.f32("m." + p.name, p.shape);
        const float* v = state.f32("v." + p.name, p.shape);
        std::copy(m, m + p.size, opt.m().data() + p.offset);
        std::copy(v, v + p.size, opt.v().data() + p.offset);
        expected.insert("m." + p.name);
        expected.insert("v." + p.name);
    }
    for (const auto& e : state.tensors())
        if (!expected.count(e.name))
            throw Error("'" + path + "' holds tensor '" + e.name +
                        "', which is not an optimizer moment of this model (valid: m.<param>, "
                        "v.<param>)");
    opt.set_steps_done(step);
}

MetricsRows read_metrics(const std::string& path, long last_step) {
    const std::string text =
        read_regular_file(path, "metrics file '" + path + "'", size_t(1) << 30);
    std::istringstream in(text);
    std::string header, line;
    if (!std::getline(in, header) || header.rfind("step,", 0) != 0)
        throw Error("'" + path + "' does not start with the metrics header (step,loss,...)");
    const auto columns = std::count(header.begin(), header.end(), ',');
    MetricsRows out;
    for (int n = 2; std::getline(in, line); n++) {
        if (line.empty()) continue;
        const std::string where = fmt::format("'{}' line {}", path, n);
        if (std::count(line.begin(), line.end(), ',') != columns)
            throw Error(where + " has a different number of columns than the header");
        const long step = parse_count(line.substr(0, line.find(',')), where + ": the step");
        if (step > last_step) break;
        out.rows.push_back(line);
        out.elapsed_s = parse_number(line.substr(line.rfind(',') + 1), where + ": elapsed_s");
    }
    return out;
}

}  // namespace attnlab
