// The denoising training loop of a diffusion run, its checkpoints and resume.
// Step s draws its batch from Rng(data seed).split(s) alone (images, levels,
// noise, dropped classes), so a resumed run continues exactly.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/gemm.h"
#include "core/safetensors.h"
#include "data/fmnist.h"
#include "diffusion/run.h"
#include "diffusion/schedule.h"
#include "model/model.h"
#include "train/data.h"
#include "train/optimizer.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

struct DRun {
    std::string dir;
    RunConfig cfg;
    std::unique_ptr<UViT> model;
    std::unique_ptr<Optimizer> opt;
    ImageSet train, test;
    NoiseSchedule schedule = NoiseSchedule::linear();
    std::vector<std::string> rows;  // metrics.csv rows
    double elapsed_before = 0;
};

const char* kHeader = "step,loss,lr,grad_norm,eval_loss,images_per_s,elapsed_s";

// The noisy batch of step `step` (or of the evaluation set, index = image).
struct NoisyBatch {
    std::vector<float> x0, xt, eps;
    std::vector<int32_t> t, y;
    explicit NoisyBatch(int B, int npx)
        : x0(size_t(B) * npx), xt(x0.size()), eps(x0.size()), t(size_t(B)), y(size_t(B)) {}

    // Image `index` of `set`, its class kept unless dropped, level and noise from rng.
    void draw(int i, const ImageSet& set, int index, Rng& rng, const NoiseSchedule& s, float drop,
              int K) {
        const int npx = set.pixels_per_image();
        const uint8_t* px = set.image(index);
        float* x0i = x0.data() + size_t(i) * npx;
        for (int p = 0; p < npx; p++) x0i[p] = float(px[p]) / 127.5f - 1.0f;
        t[size_t(i)] = int32_t(rng.below(uint32_t(s.levels)));
        y[size_t(i)] = drop > 0 && rng.uniform() < drop ? K : set.labels[size_t(index)];
        for (int p = 0; p < npx; p++) eps[size_t(i) * npx + p] = float(rng.normal());
        s.add_noise(xt.data() + size_t(i) * npx, x0i, eps.data() + size_t(i) * npx, t[size_t(i)],
                    npx);
    }
    ImageBatch batch(int B) const { return {xt.data(), t.data(), y.data(), eps.data(), B}; }
};

void build(DRun& r, bool quiet) {
    resolve_diffusion(r.cfg);
    const TrainConfig& tc = r.cfg.train;
    set_threads(tc.threads > 0 ? tc.threads
                               : std::max(1, int(std::thread::hardware_concurrency())));
    r.train = load_fashion_mnist(r.cfg.task.images, Split::train);
    r.test = load_fashion_mnist(r.cfg.task.images, Split::test);
    if (r.cfg.diffusion.train_images > 0 && r.cfg.diffusion.train_images < r.train.n)
        r.train.n = r.cfg.diffusion.train_images;
    r.model = std::make_unique<UViT>(r.cfg.model, tc.batch);
    r.opt = std::make_unique<Optimizer>(adamw_config(tc), r.model->params().size());
    if (!quiet)
        fmt::print(
            stderr,
            "model uvit: {} blocks, dim {}, {} heads, patch {}, attention {}, {} parameters\n"
            "data fmnist: {} training images of {}x{}, {} steps x {} images, {} threads\n",
            r.cfg.model.layers, r.cfg.model.dim, r.cfg.model.heads, r.cfg.model.patch,
            attention_spec(r.cfg.model.attention), r.model->table().count(), r.train.n,
            r.cfg.model.image, r.cfg.model.image, tc.steps, tc.batch, get_threads());
}

void save_checkpoint(DRun& r) {
    const long step = r.opt->steps_done();
    SafeTensorsWriter w;
    for (const auto& p : r.model->table().entries()) {
        w.add_f32("m." + p.name, p.shape, r.opt->m().data() + p.offset);
        w.add_f32("v." + p.name, p.shape, r.opt->v().data() + p.offset);
    }
    w.set_metadata("format", "attnlab-1");
    w.set_metadata("kind", "train-state");
    w.set_metadata("step", std::to_string(step));
    w.write(r.dir + "/optimizer.safetensors");
    save_table_params(r.cfg.model, r.model->table(), r.model->params(),
                      r.dir + "/model.safetensors",
                      {{"config", to_toml(r.cfg)}, {"step", std::to_string(step)}});
    std::string csv = std::string(kHeader) + "\n";
    for (const auto& row : r.rows) csv += row + "\n";
    write_text_atomic(r.dir + "/metrics.csv", csv);
}

// MSE of the predicted noise on the first train.eval_windows test images, with
// levels and noise from train.eval_seed and the true classes.
double eval_loss(DRun& r) {
    const int B = r.cfg.train.batch, n = std::min(r.cfg.train.eval_windows, r.test.n),
              npx = r.model->pixels();
    NoisyBatch nb(B, npx);
    double sum = 0;
    for (int i0 = 0; i0 < n; i0 += B) {
        const int b = std::min(B, n - i0);
        for (int i = 0; i < b; i++) {
            Rng rng = Rng(r.cfg.train.eval_seed).split(uint64_t(i0 + i));
            nb.draw(i, r.test, i0 + i, rng, r.schedule, 0.0f, r.model->config().vocab);
        }
        sum += r.model->forward(nb.batch(b)) * b;
    }
    return sum / n;
}

void write_summary(DRun& r, const DiffusionSummary& s) {
    nlohmann::ordered_json j;
    j["kind"] = "diffusion";
    j["fid"] = s.eval.fid;
    j["fid_name"] = "FID (attnlab Fashion-MNIST features)";
    // eval_accuracy / eval_per_task: the classifier's accuracy on the samples, per class.
    j["eval_accuracy"] = s.eval.sample_accuracy;
    j["eval_loss"] = s.eval_loss;
    nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
    for (size_t k = 0; k < s.eval.class_accuracy.size(); k++)
        per_class[fashion_mnist_classes()[k]] = {
            {"accuracy", s.eval.class_accuracy[k]},
            {"counted", s.eval.samples / int(s.eval.class_accuracy.size())}};
    j["eval_per_task"] = per_class;
    j["classifier_test_accuracy"] = s.eval.classifier_accuracy;
    j["eval_samples"] = s.eval.samples;
    j["sample_steps"] = r.cfg.diffusion.sample_steps;
    j["guidance"] = r.cfg.diffusion.guidance;
    j["sample_s"] = s.eval.sample_s;
    j["train_loss"] = s.final_loss;
    j["steps"] = s.steps;
    j["params"] = s.params;
    j["wall_s"] = s.wall_s;
    j["images_per_s"] = s.images_per_s;
    j["threads"] = get_threads();
    j["model"] = nlohmann::json::parse(to_json(r.cfg.model));
    j["config"] = to_toml(r.cfg);
    write_text_atomic(r.dir + "/summary.json", j.dump(2) + "\n");
}

DiffusionSummary train_loop(DRun& r, const TrainOptions& opt) {
    const TrainConfig& tc = r.cfg.train;
    UViT& model = *r.model;
    const int B = tc.batch, K = model.config().vocab;
    const long start = r.opt->steps_done();
    const long end = opt.stop_after ? std::min<long>(tc.steps, *opt.stop_after) : tc.steps;
    const uint64_t data_seed = training_data_seed(tc.seed);
    NoisyBatch nb(B, model.pixels());
    using clock = std::chrono::steady_clock;
    const auto t_start = clock::now();
    auto t_row = t_start;
    double loss_sum = 0, last_loss = 0, last_eval = 0;
    long row_steps = 0;
    Optimizer::StepInfo info;
    for (long step = start; step < end;) {
        Rng rng = Rng(data_seed).split(uint64_t(step));
        for (int i = 0; i < B; i++)
            nb.draw(i, r.train, int(rng.below(uint32_t(r.train.n))), rng, r.schedule,
                    r.cfg.diffusion.label_dropout, K);
        model.zero_grad();
        const double loss = model.forward(nb.batch(B));
        if (!std::isfinite(loss))
            throw Error(
                fmt::format("training diverged: the loss is {} at step {}; lower train.lr (now {})",
                            loss, step + 1, tc.lr));
        model.backward(nb.batch(B));
        info = r.opt->step(model.table(), model.params(), model.grads());
        step++;
        loss_sum += loss, row_steps++;
        const bool last = step == end;
        const bool eval_due = (tc.eval_every > 0 && step % tc.eval_every == 0) || step == tc.steps;
        const bool ckpt_due =
            (tc.checkpoint_every > 0 ? step % tc.checkpoint_every == 0 : eval_due) || last;
        if (step % tc.log_every != 0 && !eval_due && !ckpt_due) continue;
        std::string eval_col;
        if (eval_due) last_eval = eval_loss(r), eval_col = fmt::format("{:.6f}", last_eval);
        last_loss = loss_sum / double(row_steps);
        const double secs = std::chrono::duration<double>(clock::now() - t_row).count();
        const double ips = secs > 0 ? double(row_steps) * B / secs : 0;
        const double elapsed =
            r.elapsed_before + std::chrono::duration<double>(clock::now() - t_start).count();
        r.rows.push_back(fmt::format("{},{:.6f},{:.6g},{:.6g},{},{:.1f},{:.2f}", step, last_loss,
                                     info.lr, info.grad_norm, eval_col, ips, elapsed));
        if (!opt.quiet)
            fmt::print(stderr, "step {}/{}  loss {:.4f}{}  {:.0f} images/s\n", step, tc.steps,
                       last_loss, eval_due ? fmt::format("  eval loss {:.4f}", last_eval) : "",
                       ips);
        loss_sum = 0, row_steps = 0, t_row = clock::now();
        if (ckpt_due) save_checkpoint(r);
    }
    DiffusionSummary s;
    s.steps = r.opt->steps_done();
    s.final_loss = last_loss;
    s.eval_loss = last_eval;
    s.params = model.table().count();
    const double session = std::chrono::duration<double>(clock::now() - t_start).count();
    s.wall_s = r.elapsed_before + session;
    s.images_per_s = session > 0 ? double(s.steps - start) * B / session : 0;
    if (s.steps == tc.steps) {
        s.eval = evaluate_samples(model, r.cfg, r.dir + "/samples.png", opt.quiet);
        write_summary(r, s);
    }
    return s;
}

}  // namespace

DiffusionSummary diffusion_train_new(RunConfig cfg, const TrainOptions& opt) {
    DRun r;
    r.dir = opt.out_dir;
    r.cfg = std::move(cfg);
    build(r, opt.quiet);
    std::error_code ec;
    if (fs::exists(r.dir, ec) && !fs::is_empty(r.dir, ec) && !opt.force)
        throw Error("output folder '" + r.dir +
                    "' exists and is not empty; pass --force to overwrite "
                    "its run files, --resume to continue it, or choose another --out");
    fs::create_directories(r.dir, ec);
    for (const char* f : {"summary.json", "metrics.csv", "model.safetensors",
                          "optimizer.safetensors", "samples.png"})
        fs::remove(r.dir + "/" + f, ec);
    write_text_atomic(r.dir + "/config.toml", to_toml(r.cfg));
    r.model->init_params(r.cfg.train.seed);
    return train_loop(r, opt);
}

DiffusionSummary diffusion_train_resume(const std::string& dir,
                                        const std::vector<std::string>& settings,
                                        const TrainOptions& opt) {
    DRun r;
    r.dir = dir;
    apply_toml_file(r.cfg, dir + "/config.toml");
    const RunConfig before = r.cfg;
    for (const auto& s : settings) apply_setting(r.cfg, s);
    const std::vector<std::string> free_keys{"train.steps", "train.eval_every", "train.log_every",
                                             "train.checkpoint_every", "train.threads"};
    for (const auto& k : config_keys())
        if (k.get(before) != k.get(r.cfg) &&
            std::find(free_keys.begin(), free_keys.end(), k.name) == free_keys.end())
            throw Error("--set " + k.name +
                        " cannot change when resuming; keys that may change: train.steps, "
                        "train.eval_every, train.log_every, train.checkpoint_every, train.threads");
    build(r, opt.quiet);
    load_uvit(*r.model, dir + "/model.safetensors");
    SafeTensorsFile state(dir + "/optimizer.safetensors"), params(dir + "/model.safetensors");
    const std::string step = state.metadata_or("step", "");
    if (step.empty() || step != params.metadata_or("step", "?"))
        throw Error("'" + dir +
                    "' holds a model and an optimizer state of different steps; the run folder is "
                    "inconsistent");
    for (const auto& p : r.model->table().entries()) {
        const float* m = state.f32("m." + p.name, p.shape);
        const float* v = state.f32("v." + p.name, p.shape);
        std::copy(m, m + p.size, r.opt->m().data() + p.offset);
        std::copy(v, v + p.size, r.opt->v().data() + p.offset);
    }
    r.opt->set_steps_done(std::stol(step));
    std::ifstream in(dir + "/metrics.csv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (std::stol(line.substr(0, line.find(','))) > r.opt->steps_done()) break;
        r.rows.push_back(line);
        r.elapsed_before = std::stod(line.substr(line.rfind(',') + 1));
    }
    write_text_atomic(dir + "/config.toml", to_toml(r.cfg));
    if (r.opt->steps_done() >= r.cfg.train.steps)
        throw Error("run '" + dir + "' is already complete (" + step +
                    " steps); raise train.steps with --set to continue it");
    if (!opt.quiet)
        fmt::print(stderr, "resuming '{}' at step {} of {}\n", dir, step, r.cfg.train.steps);
    return train_loop(r, opt);
}

}  // namespace attnlab
