// `attnlab generate`: continue a prompt with a trained run's model (key/value-cache
// decoder, sliding window past the context, temperature and top-k sampling).
#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/safetensors.h"
#include "model/generate.h"
#include "train/config.h"

namespace attnlab {

namespace {

struct GenerateArgs {
    std::string run, prompt;
    int tokens = 200;
    float temperature = 1.0f;
    int top_k = 0;
    uint64_t seed = 1;
    int threads = 1;
};

// Text runs: the prompt's bytes. Other tasks: space-separated token ids.
std::vector<int32_t> encode_prompt(const std::string& prompt, bool text, int vocab) {
    std::vector<int32_t> tokens;
    if (text) {
        for (const char ch : prompt) tokens.push_back(int32_t(uint8_t(ch)));
        return tokens;
    }
    std::istringstream in(prompt);
    std::string word;
    while (in >> word) {
        size_t used = 0;
        long id = -1;
        try {
            id = std::stol(word, &used);
        } catch (...) {
            used = 0;
        }
        if (used != word.size() || id < 0 || id >= vocab)
            throw Error(
                fmt::format("--prompt: '{}' is not a token id: this run's task takes "
                            "space-separated ids 0..{}",
                            word, vocab - 1));
        tokens.push_back(int32_t(id));
    }
    return tokens;
}

void run_generate(const GenerateArgs& a) {
    const std::string config_path = a.run + "/config.toml";
    if (!std::filesystem::exists(config_path))
        throw Error("--run '" + a.run + "' is not a run folder (no config.toml)");
    RunConfig cfg;
    apply_toml_file(cfg, config_path);
    // The checkpoint carries the resolved model configuration, so the corpus of a
    // text run need not be present to generate from it.
    const std::string model_path = a.run + "/model.safetensors";
    const SafeTensorsFile checkpoint(model_path);
    const std::string model_json = checkpoint.metadata_or("model", "");
    if (model_json.empty())
        throw Error("'" + model_path + "' has no model configuration in its metadata");
    if (a.threads < 1) throw Error(fmt::format("--threads = {} must be >= 1", a.threads));
    set_threads(a.threads);
    auto model = make_model(model_config_from_json(model_json), 1);
    load_params(*model, model_path);

    const bool text = cfg.task.name == "text";
    const std::vector<int32_t> prompt = encode_prompt(a.prompt, text, model->config().vocab);
    if (prompt.empty())
        throw Error(text ? "--prompt is empty: give at least one character"
                         : "--prompt is empty: give at least one token id");
    SampleOptions opt;
    opt.temperature = a.temperature;
    opt.top_k = a.top_k;
    // Text: the prompt, then each byte as it is drawn; tokens: ids separated by spaces.
    if (text) {
        std::fwrite(a.prompt.data(), 1, a.prompt.size(), stdout);
    } else {
        for (const int32_t t : prompt) fmt::print("{} ", t);
    }
    std::fflush(stdout);
    generate(*model, prompt, a.tokens, opt, a.seed, [&](int32_t t) {
        if (text)
            std::fputc(t, stdout);
        else
            fmt::print("{} ", t);
        std::fflush(stdout);
    });
    std::fputc('\n', stdout);
}

}  // namespace

void add_generate_commands(CLI::App& app) {
    auto a = std::make_shared<GenerateArgs>();
    auto* gen = app.add_subcommand("generate", "continue a prompt with a trained run's model");
    gen->add_option("--run", a->run, "run folder")->required();
    gen->add_option("--prompt", a->prompt,
                    "text (text runs) or space-separated token ids (other tasks)")
        ->required();
    gen->add_option("--tokens", a->tokens, "tokens to generate (default 200)");
    gen->add_option("--temperature", a->temperature,
                    "sampling temperature, 0 = greedy (default 1)");
    gen->add_option("--top-k", a->top_k,
                    "sample among the k most likely tokens, 0 = all (default 0)");
    gen->add_option("--seed", a->seed, "seed of the sampling (default 1)");
    gen->add_option("--threads", a->threads,
                    "threads (default 1: one row per step gains little from more)");
    gen->callback([a] { run_generate(*a); });
}

}  // namespace attnlab
