// Checked reads and crash-safe writes: hostile checkpoints, configs, run files and
// paths are refused with errors naming the file and the defect; folder locks;
// the atomic checkpoint unit; fast_exp on NaN and infinities.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_lock.h"
#include "core/read_file.h"
#include "core/safetensors.h"
#include "kernels/fastmath.h"
#include "kernels/vec.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/recipes.h"
#include "train/trainer.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) {
    const std::string d = ::testing::TempDir() + "attnlab-ck-" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A safetensors file from a JSON header and raw data.
std::vector<uint8_t> safetensors_bytes(const std::string& header, size_t data_bytes) {
    std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
    for (int i = 0; i < 8; i++) b[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
    std::copy(header.begin(), header.end(), b.begin() + 8);
    return b;
}

std::string parse_error(const std::string& header, size_t data_bytes) {
    return error_of(
        [&] { SafeTensorsFile("x.safetensors", safetensors_bytes(header, data_bytes)); });
}

RunConfig tiny_run(int steps) {
    RunConfig c;
    apply_toml(c, find_recipe("ladder-quick").toml, "recipe");
    for (const char* s :
         {"train.warmup=2", "train.batch=4", "train.eval_every=0", "train.eval_windows=8",
          "train.log_every=2", "model.dim=16", "train.threads=1"})
        apply_setting(c, s);
    apply_setting(c, "train.steps=" + std::to_string(steps));
    return c;
}

}  // namespace

TEST(Checkpoint, SafeTensorsHeaderDefectsAreNamed) {
    const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    EXPECT_EQ(parse_error(ok, 8), "");
    EXPECT_NE(parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", 8)
                  .find("data_offsets[1] is 8.0, not a non-negative integer"),
              std::string::npos);
    EXPECT_NE(parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}})", 8)
                  .find("tensor 'a'"),
              std::string::npos);
    EXPECT_NE(parse_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)
                  .find("dimension"),
              std::string::npos);
    // A shape whose element count wraps around 2^64 must not pass for an empty tensor.
    EXPECT_NE(
        parse_error(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})",
                    0)
            .find("absurd shape"),
        std::string::npos);
    EXPECT_NE(parse_error(
                  R"({"__metadata__":[1],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)
                  .find("__metadata__"),
              std::string::npos);
    EXPECT_NE(parse_error(R"({"a":1})", 0).find("not a JSON object"), std::string::npos);
}

TEST(Checkpoint, InputFilesMustBeRegularAndSmall) {
    const std::string dir = fresh_dir("files");
    RunConfig c;
    EXPECT_NE(error_of([&] { apply_toml_file(c, "/dev/zero"); }).find("not a regular file"),
              std::string::npos);
    EXPECT_NE(error_of([&] { apply_toml_file(c, dir); }).find("is a folder"), std::string::npos);
    const std::string fifo = dir + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    EXPECT_NE(error_of([&] { apply_toml_file(c, fifo); }).find("not a regular file"),
              std::string::npos);
    EXPECT_NE(error_of([&] { SafeTensorsFile f(fifo); }).find("not a regular file"),
              std::string::npos);
    const std::string big = dir + "/big.toml";
    std::ofstream(big) << std::string(kMaxConfigBytes + 1, '#');
    EXPECT_NE(error_of([&] { apply_toml_file(c, big); }).find("the limit is 1 MiB"),
              std::string::npos);
    EXPECT_NE(
        error_of([&] { read_regular_file(dir + "/missing", "corpus", 10); }).find("No such file"),
        std::string::npos);
}

TEST(Checkpoint, TomlValuesMustHaveTheKeysType) {
    RunConfig c;
    EXPECT_NE(error_of([&] {
                  apply_toml(c, "[model]\nlayers = \"2\"\n", "x.toml");
              }).find("model.layers must be an integer"),
              std::string::npos);
    EXPECT_NE(
        error_of([&] { apply_toml(c, "[model]\nlayers = 2.0\n", "x.toml"); }).find("not a number"),
        std::string::npos);
    EXPECT_NE(error_of([&] {
                  apply_toml(c, "[train]\nlr = \"0.1\"\n", "x.toml");
              }).find("must be a number"),
              std::string::npos);
    EXPECT_NE(
        error_of([&] { apply_toml(c, "[model]\narch = 2\n", "x.toml"); }).find("must be a string"),
        std::string::npos);
    EXPECT_EQ(error_of([&] {
                  apply_toml(c, "[train]\nlr = 1\n[model]\ncis_linears = \"all\"\n", "x.toml");
              }),
              "");
    EXPECT_EQ(c.train.lr, 1.0f);
    // Every recipe is well typed.
    for (const auto& r : all_recipes())
        EXPECT_EQ(error_of([&] { apply_toml(c, r.toml, r.name); }), "") << r.name;
}

TEST(Checkpoint, SecondWriterIsToldTheHoldersPid) {
    const std::string dir = fresh_dir("lock");
    {
        const FolderLock lock(dir, "run folder");
        EXPECT_EQ(folder_lock_holder(dir), ::getpid());
        const std::string msg = error_of([&] { FolderLock second(dir, "run folder", 0.1); });
        EXPECT_NE(
            msg.find("run folder '" + dir + "' is in use by process " + std::to_string(::getpid())),
            std::string::npos)
            << msg;
        TrainOptions opt;
        opt.quiet = true, opt.out_dir = dir, opt.force = true;
        EXPECT_NE(error_of([&] { train_new(tiny_run(4), opt); }).find("is in use by process"),
                  std::string::npos);
    }
    EXPECT_EQ(folder_lock_holder(dir), std::nullopt);
    const FolderLock again(dir, "run folder");
}

TEST(Checkpoint, KilledCommitIsFinishedAndStagingDiscarded) {
    const std::string dir = fresh_dir("unit");
    std::ofstream(dir + "/model.safetensors") << "old model";
    std::ofstream(dir + "/metrics.csv") << "old metrics";
    // A committed checkpoint whose first file was moved before the writer died.
    fs::create_directory(dir + "/.checkpoint.new");
    std::ofstream(dir + "/optimizer.safetensors") << "new optimizer";
    std::ofstream(dir + "/.checkpoint.new/model.safetensors") << "new model";
    std::ofstream(dir + "/.checkpoint.new/metrics.csv") << "new metrics";
    // An uncommitted one and a temporary of a dead writer.
    fs::create_directory(dir + "/.checkpoint.tmp");
    std::ofstream(dir + "/.checkpoint.tmp/model.safetensors") << "half";
    std::ofstream(dir + "/config.toml.tmp.12345") << "half";
    recover_run_folder(dir);
    auto text = [&](const std::string& f) {
        std::ifstream in(dir + "/" + f);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_EQ(text("model.safetensors"), "new model");
    EXPECT_EQ(text("metrics.csv"), "new metrics");
    EXPECT_EQ(text("optimizer.safetensors"), "new optimizer");
    EXPECT_FALSE(fs::exists(dir + "/.checkpoint.new"));
    EXPECT_FALSE(fs::exists(dir + "/.checkpoint.tmp"));
    EXPECT_FALSE(fs::exists(dir + "/config.toml.tmp.12345"));
}

TEST(Checkpoint, CorruptRunFilesAreRefusedByName) {
    TrainOptions opt;
    opt.quiet = true, opt.out_dir = fresh_dir("runfiles"), opt.stop_after = 4;
    train_new(tiny_run(8), opt);
    opt.stop_after.reset();
    const std::string metrics = opt.out_dir + "/metrics.csv";
    std::string good;
    {
        std::ifstream in(metrics);
        good.assign(std::istreambuf_iterator<char>(in), {});
    }
    const size_t row = good.find('\n') + 1;
    std::ofstream(metrics) << good.substr(0, row) << "x" << good.substr(row + 1);
    std::string msg = error_of([&] { train_resume(opt.out_dir, {}, opt); });
    EXPECT_NE(msg.find("metrics.csv' line 2: the step is 'x"), std::string::npos) << msg;
    std::ofstream(metrics) << good;

    // An optimizer state with a tensor the model does not have.
    const std::string state = opt.out_dir + "/optimizer.safetensors";
    SafeTensorsFile f(state);
    SafeTensorsWriter w;
    for (const auto& e : f.tensors()) w.add(e.name, e.dtype, e.shape, f.raw(e), e.end - e.begin);
    const float extra[2] = {0, 0};
    w.add_f32("m.extra", {2}, extra);
    for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
    w.write(state);
    msg = error_of([&] { train_resume(opt.out_dir, {}, opt); });
    EXPECT_NE(msg.find("holds tensor 'm.extra'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(state), std::string::npos) << msg;
}

TEST(Checkpoint, CompleteRunWithoutSummaryGetsOneOnResume) {
    TrainOptions opt;
    opt.quiet = true, opt.out_dir = fresh_dir("summary");
    train_new(tiny_run(6), opt);
    const std::string path = opt.out_dir + "/summary.json";
    std::ifstream in(path);
    const auto want = nlohmann::json::parse(in);
    fs::remove(path);
    train_resume(opt.out_dir, {}, opt);  // complete: writes the summary, trains nothing
    std::ifstream again(path);
    const auto got = nlohmann::json::parse(again);
    for (const char* k : {"eval_accuracy", "eval_loss", "eval_per_task", "steps", "params"})
        EXPECT_EQ(got.at(k), want.at(k)) << k;
    // The training loss comes back from metrics.csv, which keeps 6 decimals.
    EXPECT_NEAR(got.at("train_loss").get<double>(), want.at("train_loss").get<double>(), 1e-6);
    train_resume(opt.out_dir, {}, opt);  // and again: nothing to do, no error
}

TEST(Checkpoint, FastExpPassesNanAndClampsInfinities) {
    EXPECT_TRUE(std::isnan(fast_exp(NAN)));
    EXPECT_EQ(fast_exp(INFINITY), fast_exp(kExpMax));
    EXPECT_EQ(fast_exp(-INFINITY), fast_exp(kExpMin));
    EXPECT_NEAR(fast_exp(1.0f), std::exp(1.0f), 1e-6);
    Vec16 x = splat(0.5f);
    x[3] = NAN, x[7] = INFINITY, x[9] = -INFINITY;
    const Vec16 y = fast_exp(x);
    for (int l = 0; l < kLanes; l++) {
        if (l == 3)
            EXPECT_TRUE(std::isnan(y[l]));
        else
            EXPECT_EQ(y[l], fast_exp(x[l])) << l;
    }
}
