// Grid files: a base configuration and the values to vary, expanded into the
// cartesian product of runs, every run resolved up front (a bad key or value
// fails before anything runs, naming the grid file, the run and the key).
#include <fmt/core.h>
#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/read_file.h"
#include "diffusion/run.h"
#include "kernels/attention.h"
#include "sweep/sweep.h"
#include "tasks/task.h"
#include "train/config_toml.h"
#include "train/recipes.h"

namespace attnlab {

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

// The grid document, with its top-level entries checked: title, description, base, grid.
toml::table parse_grid(SweepPlan& plan, const std::string& grid_text, const std::string& origin) {
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
    return doc;
}

// The base configuration: defaults, then the recipe, then [base.*].
RunConfig read_base(const toml::table& doc, const std::string& origin) {
    RunConfig base;
    const toml::table* b = doc["base"].as_table();
    if (!b) {
        if (doc["base"]) throw Error(origin + ": 'base' must be a table [base]");
        return base;
    }
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
    return base;
}

// The list of an axis's points; "model.attention" = "all" is every map of the
// registry, so a new map joins such sweeps.
const toml::array& axis_points(const GridAxis& axis, const toml::node& v, const std::string& where,
                               toml::array& every_map) {
    if (axis.name == "model.attention" && v.value<std::string>() == "all")
        for (const auto& m : all_attention_maps()) every_map.push_back(std::string(m.name));
    const toml::array* list = every_map.empty() ? v.as_array() : &every_map;
    if (!list)
        throw Error(where + " must be a list of values, e.g. \"" + axis.name + "\" = [1, 2, 3]" +
                    (v.as_table()
                         ? " (for keys that vary together use a list of tables: "
                           "name = [{ \"model.arch\" = \"lstm\", \"model.dim\" = 96 }, ...])"
                         : ""));
    if (list->empty()) throw Error(where + " is an empty list; give at least one value");
    const bool tables = list->get(0)->is_table();
    for (const auto& item : *list)
        if (item.is_table() != tables)
            throw Error(where + " mixes tables and plain values; use one or the other");
    return *list;
}

// Adds point i of the axis (a plain value, or a table of a tied axis) with its
// settings and label; unknown keys and repeated labels are refused.
void add_axis_point(GridAxis& axis, const toml::node& item, size_t i, const std::string& where) {
    std::vector<std::pair<std::string, std::string>> settings;
    std::string label;
    if (axis.tied) {
        const std::string at = where + " point " + std::to_string(i + 1);
        flatten_point(*item.as_table(), "", at, settings, label);
        if (settings.empty()) throw Error(at + " sets no configuration key");
        if (label.empty())
            for (const auto& [key, value] : settings) label += (label.empty() ? "" : " ") + value;
    } else {
        try {
            check_toml_type(axis.name, item);
        } catch (const Error& e) {
            throw Error(where + ": " + e.what());
        }
        label = value_text(item, where);
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

// The axes of [grid], in file order; a key may be set by one axis only, and
// train.threads by none.
std::vector<GridAxis> read_axes(const toml::table& doc, const std::string& origin) {
    std::vector<GridAxis> axes;
    const toml::table* g = doc["grid"].as_table();
    if (!g) {
        if (doc["grid"]) throw Error(origin + ": 'grid' must be a table [grid]");
        return axes;
    }
    std::map<std::string, std::string> key_owner;  // configuration key -> axis setting it
    for (const auto& [k, node] : in_file_order(*g)) {
        GridAxis axis;
        axis.name = k;
        const std::string where = origin + ": [grid] '" + axis.name + "'";
        toml::array every_map;
        const toml::array& list = axis_points(axis, *node, where, every_map);
        axis.tied = list.get(0)->is_table();
        for (size_t i = 0; i < list.size(); i++) add_axis_point(axis, *list.get(i), i, where);
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
        axes.push_back(std::move(axis));
    }
    return axes;
}

// The cartesian product of the axes, first axis slowest, each run the base
// configuration with its points' settings (not yet applied).
std::vector<SweepRun> expand_runs(const SweepPlan& plan, const RunConfig& base) {
    size_t total = 1;
    for (const auto& a : plan.axes) total *= a.labels.size();
    if (total > 100000)
        throw Error(plan.origin + ": the grid has " + std::to_string(total) +
                    " runs; that is too many");
    std::vector<SweepRun> runs;
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
        runs.push_back(std::move(run));
    }
    return runs;
}

// Applies each run's settings and resolves its configuration as `attnlab train` would.
void resolve_runs(SweepPlan& plan, int threads) {
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
            throw Error(plan.origin + ": run '" + run.name + "' (" + describe_values(plan, run) +
                        "): " + e.what());
        }
    }
}

}  // namespace

SweepPlan plan_sweep(const std::string& grid_text, const std::string& origin, int threads) {
    SweepPlan plan;
    plan.origin = origin;
    plan.text = grid_text;
    const toml::table doc = parse_grid(plan, grid_text, origin);
    const RunConfig base = read_base(doc, origin);
    plan.axes = read_axes(doc, origin);
    plan.runs = expand_runs(plan, base);
    name_runs(plan);
    resolve_runs(plan, threads);
    return plan;
}

SweepPlan load_grid(const std::string& path, int threads) {
    const std::string text = read_regular_file(path, "grid file '" + path + "'", kMaxConfigBytes);
    return plan_sweep(text, "'" + path + "'", threads);
}

}  // namespace attnlab
