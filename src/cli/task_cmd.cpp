// `attnlab task sample`: print generated windows.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "tasks/sample.h"
#include "train/config.h"

namespace attnlab {

void add_task_commands(CLI::App& app) {
    struct Args {
        std::string task = "iarc", format = "text";
        std::vector<std::string> settings;
        int windows = 3, context = 64;
        uint64_t seed = 1;
    };
    auto a = std::make_shared<Args>();
    auto* task = app.add_subcommand("task", "inspect the task generators");
    task->require_subcommand(1);
    auto* sample = task->add_subcommand("sample", "print generated windows");
    sample->add_option("--task", a->task, "iarc | ladder | multitask | text");
    sample->add_option("--set", a->settings, "task option, e.g. --set task.n=8");
    sample->add_option("--windows", a->windows, "number of windows");
    sample->add_option("--context", a->context, "window length T");
    sample->add_option("--seed", a->seed, "seed");
    sample->add_option("--format", a->format, "jsonl | text");
    sample->callback([a] {
        RunConfig cfg;
        apply_setting(cfg, "task.name", a->task);
        for (const auto& s : a->settings) {
            if (s.rfind("task.", 0) != 0)
                throw Error("--set '" + s + "': task sample takes task.* keys only");
            apply_setting(cfg, s);
        }
        if (a->context < 1 || a->context > 8192)
            throw Error("--context = " + std::to_string(a->context) +
                        " is out of range: must be 1..8192");
        if (a->windows < 1 || long(a->windows) * a->context > 10000000)
            throw Error("--windows = " + std::to_string(a->windows) +
                        " is out of range: must be >= 1, and --windows x --context at most "
                        "10000000 tokens");
        const auto t = make_task(cfg.task);
        write_samples(std::cout, *t, a->context, a->windows, a->seed,
                      parse_sample_format(a->format));
    });
}

}  // namespace attnlab
