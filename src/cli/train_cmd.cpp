// `attnlab train | eval | recipes | config`.
#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/comm.h"
#include "core/error.h"
#include "diffusion/run.h"
#include "train/config.h"
#include "train/recipes.h"
#include "train/trainer.h"

namespace attnlab {

namespace {

RunConfig config_from(const std::string& recipe, const std::string& config_file,
                      const std::vector<std::string>& settings) {
    RunConfig cfg;
    if (!recipe.empty() && !config_file.empty())
        throw Error("give either --recipe or --config, not both");
    if (!recipe.empty()) apply_toml(cfg, find_recipe(recipe).toml, "recipe '" + recipe + "'");
    if (!config_file.empty()) apply_toml_file(cfg, config_file);
    for (const auto& s : settings) apply_setting(cfg, s);
    return cfg;
}

nlohmann::ordered_json eval_json(const EvalResult& r) {
    nlohmann::ordered_json j{{"accuracy", r.accuracy}, {"loss", r.loss}, {"counted", r.counted}};
    if (r.bits_per_byte) j["bits_per_byte"] = *r.bits_per_byte;
    for (size_t i = 0; i < r.labels.size(); i++)
        j["per_task"][r.labels[i]] = {{"accuracy", r.label_accuracy[i]},
                                      {"counted", r.label_counted[i]}};
    return j;
}

struct TrainArgs {
    std::string recipe, config_file, out_dir, resume_dir;
    std::vector<std::string> settings;
    bool force = false, quiet = false;
    long stop_after = 0;
};

// A diffusion run (model.arch = "uvit"): its own loop and evaluation (diffusion/run.h).
bool run_diffusion_train(const TrainArgs& a, const TrainOptions& opt) {
    DiffusionSummary s;
    std::string dir = opt.out_dir;
    if (!a.resume_dir.empty()) {
        RunConfig cfg;
        if (!std::filesystem::exists(a.resume_dir + "/config.toml")) return false;
        apply_toml_file(cfg, a.resume_dir + "/config.toml");
        if (!is_diffusion(cfg)) return false;
        dir = a.resume_dir;
        TrainOptions o = opt;
        o.out_dir = dir;
        s = diffusion_train_resume(dir, a.settings, o);
    } else {
        RunConfig cfg = config_from(a.recipe, a.config_file, a.settings);
        if (!is_diffusion(cfg)) return false;
        TrainOptions o = opt;
        o.out_dir = dir = !a.out_dir.empty()  ? a.out_dir
                          : !a.recipe.empty() ? "runs/" + a.recipe
                                              : "runs/run";
        s = diffusion_train_new(cfg, o);
    }
    if (s.eval.samples > 0) fmt::print("{}", format_sample_eval(s.eval));
    fmt::print("run folder: {}  ({} steps, {:.1f} s, {:.1f} images/s, eval loss {:.4f})\n", dir,
               s.steps, s.wall_s, s.images_per_s, s.eval_loss);
    return true;
}

void run_train(const TrainArgs& a) {
    TrainOptions opt;
    opt.force = a.force, opt.quiet = a.quiet;
    if (a.stop_after > 0) opt.stop_after = a.stop_after;
    if (!a.resume_dir.empty() && (!a.recipe.empty() || !a.config_file.empty()))
        throw Error("--resume takes its configuration from the run folder; drop --recipe/--config");
    if (run_diffusion_train(a, opt)) return;
    TrainSummary s;
    if (!a.resume_dir.empty()) {
        if (!a.recipe.empty() || !a.config_file.empty())
            throw Error(
                "--resume takes its configuration from the run folder; drop --recipe/--config");
        opt.out_dir = a.resume_dir;
        s = train_resume(a.resume_dir, a.settings, opt);
    } else {
        opt.out_dir = !a.out_dir.empty()  ? a.out_dir
                      : !a.recipe.empty() ? "runs/" + a.recipe
                                          : "runs/run";
        s = train_new(config_from(a.recipe, a.config_file, a.settings), opt);
    }
    if (Comm::world().rank() != 0) return;  // under mpirun, rank 0 reports for all
    if (!s.eval.labels.empty()) fmt::print("{}", format_eval(s.eval));
    fmt::print("run folder: {}  ({} steps, {:.1f} s, {:.0f} tokens/s)\n", opt.out_dir, s.steps,
               s.wall_s, s.tokens_per_s);
}

}  // namespace

void add_train_commands(CLI::App& app) {
    auto a = std::make_shared<TrainArgs>();
    auto* train = app.add_subcommand("train", "train a model (a new run, or --resume)");
    train->add_option("--recipe", a->recipe, "named recipe (see `attnlab recipes`)");
    train->add_option("--config", a->config_file, "TOML file with [model], [task], [train]");
    train->add_option("--set", a->settings, "override one key, e.g. --set model.layers=4")
        ->allow_extra_args(false);
    train->add_option("--out", a->out_dir, "run folder (default runs/<recipe>)");
    train->add_option("--resume", a->resume_dir, "continue the run in this folder");
    train->add_flag("--force", a->force, "overwrite the run files of a non-empty --out");
    train->add_flag("--quiet", a->quiet, "no progress output");
    train->add_option("--stop-after", a->stop_after,
                      "stop with a checkpoint after this many steps");
    train->callback([a] { run_train(*a); });

    struct EvalArgs {
        std::string run;
        int windows = 0;
        bool json = false;
    };
    auto e = std::make_shared<EvalArgs>();
    auto* eval = app.add_subcommand("eval", "re-evaluate a run's checkpoint on its evaluation set");
    eval->add_option("--run", e->run, "run folder")->required();
    auto* windows = eval->add_option("--windows", e->windows,
                                     "evaluation windows (default: the run's train.eval_windows)");
    eval->add_flag("--json", e->json, "print JSON");
    eval->callback([e, windows] {
        RunConfig probe;
        if (std::filesystem::exists(e->run + "/config.toml"))
            apply_toml_file(probe, e->run + "/config.toml");
        if (is_diffusion(probe)) {  // a U-ViT run: FID and sample accuracy of fresh samples
            LoadedDiffusionRun run = load_diffusion_run(e->run, 0);
            fmt::print("{}", format_sample_eval(evaluate_samples(*run.model, run.cfg, "", false)));
            return;
        }
        LoadedRun run = load_run(e->run);
        // Checked like the key it overrides (train.eval_windows).
        if (windows->count() > 0 && (e->windows < 1 || e->windows > 10000000))
            throw Error("--windows = " + std::to_string(e->windows) +
                        " is out of range: must be 1..10000000");
        if (windows->count() > 0) run.cfg.train.eval_windows = e->windows;
        EvalSet set(*run.task, run.cfg.train.eval_seed, run.cfg.train.eval_windows,
                    run.cfg.train.context);
        const EvalResult r = set.evaluate(*run.model);
        fmt::print("{}", e->json ? eval_json(r).dump(2) + "\n" : format_eval(r));
    });

    app.add_subcommand("recipes", "list the named recipes")->callback([] {
        for (const auto& r : all_recipes()) fmt::print("{:<16} {}\n", r.name, r.description);
    });

    auto recipe = std::make_shared<std::string>();
    auto* config = app.add_subcommand(
        "config", "show configuration keys (--list) or a recipe's resolved TOML");
    static bool list_flag = false;  // --list is the default view; accepted for clarity
    config->add_flag("--list", list_flag, "every key with its default and meaning (the default)");
    config->add_option("--recipe", *recipe, "print the resolved TOML of a recipe");
    static bool markdown = false;
    config->add_flag("--markdown", markdown,
                     "the [model] keys as the markdown table of docs/models.md");
    config->callback([recipe] {
        if (markdown)
            fmt::print("{}", describe_model_keys_markdown());
        else
            fmt::print("{}",
                       recipe->empty() ? describe_keys() : to_toml(config_from(*recipe, "", {})));
    });
}

}  // namespace attnlab
