// What a sweep folder records: each run's final result (summary.json), the
// index of finished runs (runs.csv), the plan as JSON (sweep.json), and the
// check that a run folder still matches the grid.
#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "sweep/sweep.h"

namespace attnlab {

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
        if (j.contains("fid")) r.fid = j.at("fid").get<double>();
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
    bool bpb = false, fid = false;
    for (const auto& r : results) bpb = bpb || (r && r->bits_per_byte), fid = fid || (r && r->fid);
    std::string csv = "run";
    for (const auto& a : plan.axes) csv += ',' + csv_field(a.name);
    csv += bpb ? ",accuracy,loss,bits_per_byte" : ",accuracy,loss";
    if (fid) csv += ",fid";
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
        if (fid) csv += r.fid ? fmt::format(",{:.4f}", *r.fid) : std::string(",");
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

}  // namespace attnlab
