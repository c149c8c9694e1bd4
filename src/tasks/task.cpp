// The task registry (name -> validating factory) and the seeded window sampler.
#include "tasks/task.h"

#include <fmt/format.h>

#include "core/error.h"
#include "tasks/iarc.h"
#include "tasks/ladder.h"
#include "tasks/options.h"
#include "tasks/text.h"

namespace attnlab {
namespace {

struct TaskEntry {
    const char* name;
    std::unique_ptr<Task> (*make)(const TaskConfig&);
};

// Every task, in the order help texts list them; a new task is added here only.
constexpr TaskEntry task_registry[] = {
    {"iarc", make_iarc_task},
    {"ladder", make_ladder_task},
    {"multitask", make_multitask_task},
    {"text", make_text_task},
};

}  // namespace

std::vector<std::string> task_names() {
    std::vector<std::string> names;
    for (const TaskEntry& e : task_registry) names.emplace_back(e.name);
    return names;
}

std::unique_ptr<Task> make_task(const TaskConfig& cfg) {
    for (const TaskEntry& e : task_registry)
        if (cfg.name == e.name) return e.make(cfg);
    std::string valid;
    for (const std::string& name : task_names()) valid += (valid.empty() ? "" : ", ") + name;
    task_options::fail("name", "\"" + cfg.name + "\"", "is unknown: valid tasks are " + valid);
}

Window sample_window(const Task& task, uint64_t seed, uint64_t index, int T) {
    if (T < 1) throw Error(fmt::format("window length T = {} is out of range: must be >= 1", T));
    task.check_window(T);
    Window w;
    w.tokens.resize(size_t(T) + 1);
    w.counted.resize(size_t(T));
    w.label.resize(size_t(T));
    Rng rng = Rng(seed).split(index);
    task.sample(rng, T, w.tokens.data(), w.counted.data(), w.label.data());
    return w;
}

}  // namespace attnlab
