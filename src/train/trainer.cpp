// The training loop and the run folder around it.
#include "train/trainer.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/safetensors.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/run_folder.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

int resolve_threads(int threads) {
    if (threads > 0) return threads;
    return std::max(1u, std::thread::hardware_concurrency());
}

std::string describe_model(const RunConfig& c, size_t params) {
    const ModelConfig& m = c.model;
    std::string s = fmt::format("{}: {} layers, dim {}", arch_name(m.arch), m.layers, m.dim);
    if (m.arch == Arch::transformer || m.arch == Arch::cisformer)
        s += fmt::format(", {} heads, attention {}, pos {}", m.heads, attention_spec(m.attention),
                         pos_name(m.pos));
    return s + fmt::format(", {} parameters", params);
}

// Everything a run holds in memory.
struct Run {
    std::string dir;
    RunConfig cfg;
    std::unique_ptr<Task> task;
    std::unique_ptr<Model> model;
    std::unique_ptr<Optimizer> opt;
    std::unique_ptr<EvalSet> eval;
    std::string header;
    std::vector<std::string> rows;  // metrics.csv rows so far
    double elapsed_before = 0;      // wall time of earlier sessions of this run
    EvalResult last_eval;
    bool have_eval = false;
    DataParallel dp;  // the ranks of mpirun (one process: a no-op)
};

std::string metrics_header(const Task& task) {
    std::string h = "step,loss,lr,grad_norm,train_acc,eval_loss,eval_acc";
    for (const auto& l : task.label_names()) h += ",eval_acc_" + l;
    return h + ",tokens_per_s,elapsed_s";
}

void build(Run& run, bool quiet) {
    RunConfig& c = run.cfg;
    run.task = make_task(c.task);
    resolve(c, run.task->vocab());
    set_threads(run.dp.ranks() > 1 ? run.dp.threads(c.train.threads)
                                   : resolve_threads(c.train.threads));
    run.model = make_model(c.model, run.dp.local_batch(c.train.batch));
    run.opt = std::make_unique<Optimizer>(adamw_config(c.train), run.model->params().size());
    run.eval = std::make_unique<EvalSet>(*run.task, c.train.eval_seed, c.train.eval_windows,
                                         c.train.context);
    run.header = metrics_header(*run.task);
    if (!quiet && run.dp.is_root())
        fmt::print(stderr,
                   "model {}\ntask {} (vocab {}), {} steps x {} windows x {} tokens, {} threads\n",
                   describe_model(c, run.model->table().count()), c.task.name, run.task->vocab(),
                   c.train.steps, c.train.batch, c.train.context, get_threads());
    if (!quiet && run.dp.ranks() > 1 && run.dp.is_root())
        fmt::print(stderr, "data parallel: {} MPI ranks x {} windows, {} threads each\n",
                   run.dp.ranks(), c.train.batch / run.dp.ranks(), get_threads());
}

std::string summary_json(const Run& run, const TrainSummary& s) {
    nlohmann::ordered_json j;
    j["eval_accuracy"] = s.eval.accuracy;
    j["eval_loss"] = s.eval.loss;
    if (s.eval.bits_per_byte) j["eval_bits_per_byte"] = *s.eval.bits_per_byte;
    nlohmann::ordered_json per_task;
    for (size_t i = 0; i < s.eval.labels.size(); i++)
        per_task[s.eval.labels[i]] = {{"accuracy", s.eval.label_accuracy[i]},
                                      {"counted", s.eval.label_counted[i]}};
    j["eval_per_task"] = per_task;
    j["eval_counted"] = s.eval.counted;
    j["eval_windows"] = run.cfg.train.eval_windows;
    j["train_loss"] = s.final_loss;
    j["steps"] = s.steps;
    j["params"] = s.params;
    j["wall_s"] = s.wall_s;
    j["tokens_per_s"] = s.tokens_per_s;
    j["threads"] = get_threads();
    j["model"] = nlohmann::json::parse(to_json(run.cfg.model));
    j["config"] = to_toml(run.cfg);
    return j.dump(2) + "\n";
}

// One atomic checkpoint: weights, optimizer state, metrics and, for the final step, the summary.
void save_checkpoint(Run& run, const TrainSummary* final_summary) {
    const long step = run.opt->steps_done();
    CheckpointWriter ck(run.dir);
    save_optimizer_state(run.model->table(), *run.opt, ck.path("optimizer.safetensors"));
    save_params(*run.model, ck.path("model.safetensors"),
                {{"config", to_toml(run.cfg)}, {"step", std::to_string(step)}});
    write_text_atomic(ck.path("metrics.csv"), metrics_text(run.header, run.rows));
    if (final_summary)
        write_text_atomic(ck.path("summary.json"), summary_json(run, *final_summary));
    ck.commit();
}

using Clock = std::chrono::steady_clock;

// The loop's running sums: of the metrics row being gathered and of this session.
struct LoopState {
    Clock::time_point t_start = Clock::now(), t_row = t_start;
    double loss_sum = 0, last_loss = 0, tps = 0;
    long correct = 0, counted = 0, row_steps = 0, tokens = 0, all_tokens = 0;
    Optimizer::StepInfo info;

    double session_s() const {
        return std::chrono::duration<double>(Clock::now() - t_start).count();
    }
    double accuracy() const { return counted ? double(correct) / counted : 0.0; }
};

TrainSummary summary_now(const Run& run, const LoopState& st) {
    TrainSummary s;
    s.steps = run.opt->steps_done();
    s.final_loss = st.last_loss;
    s.params = run.model->table().count();
    const double session = st.session_s();
    s.wall_s = run.elapsed_before + session;
    s.tokens_per_s = session > 0 ? double(st.all_tokens) / session : 0;
    if (run.have_eval) s.eval = run.last_eval;
    return s;
}

// Step `step` + 1 of the run: forward, backward, gradient allreduce, optimizer update.
void train_step(Run& run, BatchData& data, const Batch& batch, long step, LoopState& st) {
    const TrainConfig& tc = run.cfg.train;
    Model& model = *run.model;
    DataParallel& dp = run.dp;
    data.fill(*run.task, training_data_seed(tc.seed), dp.first_window(step, tc.batch));
    model.zero_grad();
    const LossResult local = model.forward(batch);
    const LossResult res = dp.global_loss(local);
    if (!std::isfinite(res.loss))
        throw Error(fmt::format(
            "training diverged: the loss is {} at step {}. Lower train.lr (now {}), raise "
            "train.warmup or set train.clip; the last checkpoint in '{}' is intact",
            res.loss, step + 1, tc.lr, run.dir));
    model.backward(batch);
    dp.reduce_gradients(model, local.counted, res.counted);
    st.info = run.opt->step(model);
    st.loss_sum += res.loss, st.correct += res.correct, st.counted += res.counted, st.row_steps++;
    st.tokens += long(tc.batch) * tc.context;
    st.all_tokens += long(tc.batch) * tc.context;
    const double row_secs = std::chrono::duration<double>(Clock::now() - st.t_row).count();
    st.tps = row_secs > 0 ? double(st.tokens) / row_secs : 0;
}

// The evaluation columns of a metrics row: empty, or (when due) a fresh evaluation.
std::string eval_columns(Run& run, Progress& progress, long step, bool eval_due) {
    std::string cols = ",";
    for (size_t i = 0; i < run.task->label_names().size(); i++) cols += ",";
    if (!eval_due) return cols;
    run.last_eval = run.dp.evaluate(*run.eval, *run.model);
    run.have_eval = true;
    const EvalResult& ev = run.last_eval;
    cols = fmt::format("{:.6f},{:.6f}", ev.loss, ev.accuracy);
    std::string per;
    for (size_t i = 0; i < ev.labels.size(); i++) {
        cols += fmt::format(",{:.6f}", ev.label_accuracy[i]);
        per += fmt::format("  {} {:.1f}%", ev.labels[i], 100 * ev.label_accuracy[i]);
    }
    if (ev.bits_per_byte) per += fmt::format("  {:.3f} bits/byte", *ev.bits_per_byte);
    progress.note(fmt::format("step {:>6}  eval loss {:.4f}  acc {:.2f}%  |{}", step, ev.loss,
                              100 * ev.accuracy, per));
    return cols;
}

// Appends the metrics row of `step` and starts the next row's sums.
void add_row(Run& run, LoopState& st, long step, const std::string& eval_cols, bool quiet) {
    st.last_loss = st.loss_sum / double(st.row_steps);
    const double elapsed = run.elapsed_before + st.session_s();
    run.rows.push_back(fmt::format("{},{:.6f},{:.6g},{:.6g},{:.6f},{},{:.0f},{:.2f}", step,
                                   st.last_loss, st.info.lr, st.info.grad_norm, st.accuracy(),
                                   eval_cols, st.tps, elapsed));
    if (!quiet && !::isatty(2))
        fmt::print(stderr, "step {}/{}  loss {:.4f}  acc {:.1f}%  {:.1f}k tok/s\n", step,
                   run.cfg.train.steps, st.last_loss, 100 * st.accuracy(), st.tps / 1000);
    st.loss_sum = 0, st.correct = st.counted = st.row_steps = st.tokens = 0;
    st.t_row = Clock::now();
}

TrainSummary train_loop(Run& run, const TrainOptions& opt) {
    const TrainConfig& tc = run.cfg.train;
    const long start = run.opt->steps_done();
    const long end = opt.stop_after ? std::min<long>(tc.steps, *opt.stop_after) : tc.steps;
    DataParallel& dp = run.dp;
    const bool quiet = opt.quiet || !dp.is_root();  // only rank 0 prints and writes
    const int local_batch = dp.local_batch(tc.batch);
    BatchData data(local_batch, tc.context);
    const Batch batch = data.batch(local_batch);
    Progress progress(tc.steps, start, quiet);
    LoopState st;
    for (long step = start; step < end;) {
        train_step(run, data, batch, step, st);
        step++;
        progress.update(step, st.loss_sum / double(st.row_steps), st.accuracy(), st.tps);
        const bool eval_due = (tc.eval_every > 0 && step % tc.eval_every == 0) || step == tc.steps;
        const bool ckpt_due =
            (tc.checkpoint_every > 0 ? step % tc.checkpoint_every == 0 : eval_due) || step == end;
        if (step % tc.log_every != 0 && !eval_due && !ckpt_due) continue;
        add_row(run, st, step, eval_columns(run, progress, step, eval_due), quiet);
        if (!ckpt_due) continue;
        dp.check_same_params(*run.model);
        if (!dp.is_root()) continue;
        const TrainSummary s = summary_now(run, st);
        save_checkpoint(run, step == tc.steps ? &s : nullptr);
    }
    progress.finish();
    const TrainSummary s = summary_now(run, st);
    const double session = st.session_s();
    if (!quiet && dp.ranks() > 1 && session > 0)
        fmt::print(stderr,
                   "gradient allreduce: {:.2f} MB, {:.2f} ms per step, {:.1f}% of the time\n",
                   4e-6 * double(run.model->grads().size()),
                   1e3 * dp.allreduce_seconds() / double(std::max(1L, s.steps - start)),
                   100 * dp.allreduce_seconds() / session);
    return s;
}

}  // namespace

TrainSummary train_new(RunConfig cfg, const TrainOptions& opt) {
    Run run;
    run.dir = opt.out_dir;
    run.cfg = std::move(cfg);
    build(run, opt.quiet);  // validates everything before touching the folder
    RunLock lock;           // held until the run ends
    if (run.dp.is_root())   // the other MPI ranks never write the folder
        lock = open_new_run(run.dir, opt.force, to_toml(run.cfg));
    run.model->init_params(run.cfg.train.seed);
    return train_loop(run, opt);
}

namespace {

// A run whose final checkpoint is in place but whose summary.json is missing (written by
// an older version, or removed): the summary is rebuilt from the checkpoint and metrics.
void complete_summary(Run& run) {
    TrainSummary s;
    s.steps = run.opt->steps_done();
    s.params = run.model->table().count();
    s.eval = run.eval->evaluate(*run.model);
    if (!run.rows.empty()) {
        s.final_loss = metrics_field(run.rows.back(), 1);
        s.tokens_per_s = metrics_field(run.rows.back(), -2);
    }
    s.wall_s = run.elapsed_before;
    write_text_atomic(run.dir + "/summary.json", summary_json(run, s));
}

// Loads the run folder's checkpoint into `run` (built), or starts at step 0 when the
// run was stopped before its first checkpoint.
void load_checkpoint(Run& run, bool quiet) {
    const std::optional<long> step = checkpoint_in(run.dir);
    if (!step) {
        if (!quiet) fmt::print(stderr, "'{}' has no checkpoint yet; starting at step 0\n", run.dir);
        run.model->init_params(run.cfg.train.seed);
        return;
    }
    load_params(*run.model, run.dir + "/model.safetensors");
    load_optimizer_state(run.model->table(), *run.opt, run.dir + "/optimizer.safetensors", *step);
    MetricsRows m = read_run_metrics(run.dir, *step);
    run.rows = std::move(m.rows);
    run.elapsed_before = m.elapsed_s;
}

}  // namespace

TrainSummary train_resume(const std::string& dir, const std::vector<std::string>& settings,
                          const TrainOptions& opt) {
    Run run;
    run.dir = dir;
    require_run_folder(dir);
    RunLock lock;                                          // held until the run ends
    if (run.dp.is_root()) lock = lock_run_to_resume(dir);  // finishes an interrupted checkpoint
    if (run.dp.ranks() > 1) Comm::world().barrier();       // the other ranks read it after that
    run.cfg = resume_config(dir, settings);
    build(run, opt.quiet);
    load_checkpoint(run, opt.quiet);
    const long done = run.opt->steps_done();
    if (done >= run.cfg.train.steps) {  // nothing to train; a resume after a late kill ends here
        if (run.dp.is_root() && !fs::exists(dir + "/summary.json")) complete_summary(run);
        if (run.dp.is_root())
            fmt::print(stderr,
                       "run '{}' is already complete ({} steps); to continue it, raise "
                       "train.steps with --set\n",
                       dir, done);
        TrainSummary s;
        s.steps = done;
        return s;
    }
    if (run.dp.is_root()) continue_run(dir, to_toml(run.cfg));
    if (!opt.quiet && run.dp.is_root())
        fmt::print(stderr, "resuming '{}' at step {} of {}\n", dir, done, run.cfg.train.steps);
    return train_loop(run, opt);
}

LoadedRun load_run(const std::string& dir, int max_batch) {
    LoadedRun r;
    if (!fs::exists(dir + "/config.toml"))
        throw Error("'" + dir + "' is not a run folder (no config.toml)");
    apply_toml_file(r.cfg, dir + "/config.toml");
    r.task = make_task(r.cfg.task);
    resolve(r.cfg, r.task->vocab());
    set_threads(resolve_threads(r.cfg.train.threads));
    r.model = make_model(r.cfg.model, max_batch > 0 ? max_batch : r.cfg.train.batch);
    load_params(*r.model, dir + "/model.safetensors");
    return r;
}

std::string format_eval(const EvalResult& r) {
    std::string s = fmt::format("{:<10} {:>9} {:>9}\n", "task", "accuracy", "counted");
    for (size_t i = 0; i < r.labels.size(); i++)
        s += fmt::format("{:<10} {:>8.2f}% {:>9}\n", r.labels[i], 100 * r.label_accuracy[i],
                         r.label_counted[i]);
    s += fmt::format("{:<10} {:>8.2f}% {:>9}   (loss {:.4f})\n", "overall", 100 * r.accuracy,
                     r.counted, r.loss);
    if (r.bits_per_byte)
        s += fmt::format("validation loss {:.4f} bits per byte\n", *r.bits_per_byte);
    return s;
}

}  // namespace attnlab
