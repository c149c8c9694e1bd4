// The denoising training loop of a diffusion run, its checkpoints and resume.
// Step s draws its batch from Rng(data seed).split(s) alone (images, levels,
// noise, dropped classes), so a resumed run continues exactly.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/safetensors.h"
#include "data/fmnist.h"
#include "diffusion/run.h"
#include "diffusion/schedule.h"
#include "model/model.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/run_folder.h"

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

std::string summary_json(const DRun& r, const DiffusionSummary& s) {
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
    return j.dump(2) + "\n";
}

// One atomic checkpoint: weights, optimizer state, metrics and, with `final` (the run's
// last step), the samples (samples.png) and the summary with their evaluation.
void save_checkpoint(DRun& r, DiffusionSummary* final, bool quiet) {
    const long step = r.opt->steps_done();
    CheckpointWriter ck(r.dir);
    save_optimizer_state(r.model->table(), *r.opt, ck.path("optimizer.safetensors"));
    save_table_params(r.cfg.model, r.model->table(), r.model->params(),
                      ck.path("model.safetensors"),
                      {{"config", to_toml(r.cfg)}, {"step", std::to_string(step)}});
    write_text_atomic(ck.path("metrics.csv"), metrics_text(kHeader, r.rows));
    if (final) {
        final->eval = evaluate_samples(*r.model, r.cfg, ck.path("samples.png"), quiet);
        write_text_atomic(ck.path("summary.json"), summary_json(r, *final));
    }
    ck.commit();
}

using Clock = std::chrono::steady_clock;

// The loop's running sums: of the metrics row being gathered and of this session.
struct LoopState {
    Clock::time_point t_start = Clock::now(), t_row = t_start;
    double loss_sum = 0, last_loss = 0, last_eval = 0;
    long row_steps = 0;
    Optimizer::StepInfo info;

    double session_s() const {
        return std::chrono::duration<double>(Clock::now() - t_start).count();
    }
};

DiffusionSummary summary_now(const DRun& r, const LoopState& st, long start) {
    DiffusionSummary s;
    s.steps = r.opt->steps_done();
    s.final_loss = st.last_loss;
    s.eval_loss = st.last_eval;
    s.params = r.model->table().count();
    const double session = st.session_s();
    s.wall_s = r.elapsed_before + session;
    s.images_per_s = session > 0 ? double(s.steps - start) * r.cfg.train.batch / session : 0;
    return s;
}

// Step `step` + 1: the batch drawn from the step's own generator, forward, backward, update.
void train_step(DRun& r, NoisyBatch& nb, long step, LoopState& st) {
    const TrainConfig& tc = r.cfg.train;
    UViT& model = *r.model;
    const int B = tc.batch, K = model.config().vocab;
    Rng rng = Rng(training_data_seed(tc.seed)).split(uint64_t(step));
    for (int i = 0; i < B; i++)
        nb.draw(i, r.train, int(rng.below(uint32_t(r.train.n))), rng, r.schedule,
                r.cfg.diffusion.label_dropout, K);
    model.zero_grad();
    const double loss = model.forward(nb.batch(B));
    if (!std::isfinite(loss))
        throw Error(fmt::format(
            "training diverged: the loss is {} at step {}; lower train.lr (now {}); the last "
            "checkpoint in '{}' is intact",
            loss, step + 1, tc.lr, r.dir));
    model.backward(nb.batch(B));
    st.info = r.opt->step(model.table(), model.params(), model.grads());
    st.loss_sum += loss, st.row_steps++;
}

// Appends the metrics row of `step` (evaluating when due) and starts the next row's sums.
void add_row(DRun& r, LoopState& st, long step, bool eval_due, bool quiet) {
    std::string eval_col;
    if (eval_due) st.last_eval = eval_loss(r), eval_col = fmt::format("{:.6f}", st.last_eval);
    st.last_loss = st.loss_sum / double(st.row_steps);
    const double secs = std::chrono::duration<double>(Clock::now() - st.t_row).count();
    const double ips = secs > 0 ? double(st.row_steps) * r.cfg.train.batch / secs : 0;
    const double elapsed = r.elapsed_before + st.session_s();
    r.rows.push_back(fmt::format("{},{:.6f},{:.6g},{:.6g},{},{:.1f},{:.2f}", step, st.last_loss,
                                 st.info.lr, st.info.grad_norm, eval_col, ips, elapsed));
    if (!quiet)
        fmt::print(stderr, "step {}/{}  loss {:.4f}{}  {:.0f} images/s\n", step, r.cfg.train.steps,
                   st.last_loss, eval_due ? fmt::format("  eval loss {:.4f}", st.last_eval) : "",
                   ips);
    st.loss_sum = 0, st.row_steps = 0, st.t_row = Clock::now();
}

DiffusionSummary train_loop(DRun& r, const TrainOptions& opt) {
    const TrainConfig& tc = r.cfg.train;
    const long start = r.opt->steps_done();
    const long end = opt.stop_after ? std::min<long>(tc.steps, *opt.stop_after) : tc.steps;
    NoisyBatch nb(tc.batch, r.model->pixels());
    LoopState st;
    DiffusionSummary final;
    for (long step = start; step < end;) {
        train_step(r, nb, step, st);
        step++;
        const bool eval_due = (tc.eval_every > 0 && step % tc.eval_every == 0) || step == tc.steps;
        const bool ckpt_due =
            (tc.checkpoint_every > 0 ? step % tc.checkpoint_every == 0 : eval_due) || step == end;
        if (step % tc.log_every != 0 && !eval_due && !ckpt_due) continue;
        add_row(r, st, step, eval_due, opt.quiet);
        if (!ckpt_due) continue;
        if (step == tc.steps) final = summary_now(r, st, start);
        save_checkpoint(r, step == tc.steps ? &final : nullptr, opt.quiet);
    }
    return r.opt->steps_done() == tc.steps ? final : summary_now(r, st, start);
}

}  // namespace

DiffusionSummary diffusion_train_new(RunConfig cfg, const TrainOptions& opt) {
    DRun r;
    r.dir = opt.out_dir;
    r.cfg = std::move(cfg);
    build(r, opt.quiet);  // validates everything before touching the folder
    const RunLock lock = open_new_run(r.dir, opt.force, to_toml(r.cfg));
    r.model->init_params(r.cfg.train.seed);
    return train_loop(r, opt);
}

namespace {

// Loads the run folder's checkpoint into `r` (built), or starts at step 0 when the run
// was stopped before its first checkpoint.
void load_checkpoint(DRun& r, bool quiet) {
    const std::optional<long> step = checkpoint_in(r.dir);
    if (!step) {
        if (!quiet) fmt::print(stderr, "'{}' has no checkpoint yet; starting at step 0\n", r.dir);
        r.model->init_params(r.cfg.train.seed);
        return;
    }
    load_uvit(*r.model, r.dir + "/model.safetensors");
    load_optimizer_state(r.model->table(), *r.opt, r.dir + "/optimizer.safetensors", *step);
    MetricsRows m = read_run_metrics(r.dir, *step);
    r.rows = std::move(m.rows);
    r.elapsed_before = m.elapsed_s;
}

// A run killed after its final checkpoint but before its samples and summary were in
// place (or one whose samples.png or summary.json was removed): writes what is missing,
// the summary rebuilt from the checkpoint and its metrics.
DiffusionSummary complete_run(DRun& r, bool quiet) {
    DiffusionSummary s;
    s.steps = r.opt->steps_done();
    s.params = r.model->table().count();
    if (!r.rows.empty()) {
        s.final_loss = metrics_field(r.rows.back(), 1);
        s.eval_loss = metrics_field(r.rows.back(), 4);
        s.images_per_s = metrics_field(r.rows.back(), -2);
    }
    s.wall_s = r.elapsed_before;
    const bool has_summary = fs::exists(r.dir + "/summary.json");
    if (has_summary && fs::exists(r.dir + "/samples.png")) return s;
    CheckpointWriter ck(r.dir);  // both files, or the one missing, as one unit
    s.eval = evaluate_samples(*r.model, r.cfg, ck.path("samples.png"), quiet);
    if (!has_summary) write_text_atomic(ck.path("summary.json"), summary_json(r, s));
    ck.commit();
    return s;
}

}  // namespace

DiffusionSummary diffusion_train_resume(const std::string& dir,
                                        const std::vector<std::string>& settings,
                                        const TrainOptions& opt) {
    DRun r;
    r.dir = dir;
    const RunLock lock = lock_run_to_resume(dir);  // finishes an interrupted checkpoint
    r.cfg = resume_config(dir, settings);
    build(r, opt.quiet);
    load_checkpoint(r, opt.quiet);
    const long done = r.opt->steps_done();
    if (done >= r.cfg.train.steps) {  // nothing to train; a resume after a late kill ends here
        DiffusionSummary s = complete_run(r, opt.quiet);
        fmt::print(stderr,
                   "run '{}' is already complete ({} steps); to continue it, raise train.steps "
                   "with --set\n",
                   dir, done);
        return s;
    }
    continue_run(dir, to_toml(r.cfg));
    if (!opt.quiet)
        fmt::print(stderr, "resuming '{}' at step {} of {}\n", dir, done, r.cfg.train.steps);
    return train_loop(r, opt);
}

}  // namespace attnlab
