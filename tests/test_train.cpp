// Configuration parsing, run folders, bit-exact resume, divergence detection,
// and an end-to-end check that a small transformer learns the ladder task.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "train/config.h"
#include "train/recipes.h"
#include "train/trainer.h"

using namespace attnlab;
namespace fs = std::filesystem;

// Per process: test suites of several checkouts may run at once on one machine.
static std::string fresh_dir(const std::string& name) {
    const std::string d =
        ::testing::TempDir() + "attnlab-" + std::to_string(::getpid()) + "-" + name;
    fs::remove_all(d);
    return d;
}

static std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(Config, UnknownKeysAndBadValuesAreNamed) {
    RunConfig c;
    std::string e = error_of([&] { apply_setting(c, "model.layer=3"); });
    EXPECT_NE(e.find("model.layer"), std::string::npos) << e;
    EXPECT_NE(e.find("model.layers"), std::string::npos) << e;  // lists the valid keys
    e = error_of([&] { apply_setting(c, "train.lr=fast"); });
    EXPECT_NE(e.find("train.lr"), std::string::npos) << e;
    e = error_of([&] { apply_setting(c, "model.layers=0"); });
    EXPECT_NE(e.find("1..256"), std::string::npos) << e;
    e = error_of([&] { apply_setting(c, "model.pos=absolute"); });
    EXPECT_NE(e.find("rope"), std::string::npos) << e;
    e = error_of([&] { apply_toml(c, "[modle]\nlayers = 2\n", "x.toml"); });
    EXPECT_NE(e.find("[modle]"), std::string::npos) << e;
    e = error_of([&] { apply_toml(c, "[model]\nlayers = \n", "x.toml"); });
    EXPECT_NE(e.find("x.toml"), std::string::npos) << e;
    c.attention = "softmax,cog,softmax";  // three maps for two layers
    e = error_of([&] { resolve(c, 20); });
    EXPECT_NE(e.find("model.attention"), std::string::npos) << e;
    RunConfig lstm;
    apply_setting(lstm, "model.arch=lstm");
    apply_setting(lstm, "model.attention=cog");
    e = error_of([&] { resolve(lstm, 20); });
    EXPECT_NE(e.find("no attention"), std::string::npos) << e;
    RunConfig mlp;
    apply_setting(mlp, "model.arch=mlp");
    apply_setting(mlp, "model.heads=8");
    e = error_of([&] { resolve(mlp, 20); });
    EXPECT_NE(e.find("model.heads"), std::string::npos) << e;
}

// model.cis_maps was renamed model.cis_linears ("map" means an attention map): the
// old key still reads, in --set and in TOML, with a warning that names the new one.
TEST(Config, RenamedKeyReadsWithAWarning) {
    RunConfig c;
    testing::internal::CaptureStderr();
    apply_setting(c, "model.cis_maps=[qkv, fc]");
    apply_toml(c, "[model]\ncis_maps = [\"qkv\", \"fc\"]\n", "old.toml");
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(c.model.cis_linears, (std::vector<std::string>{"qkv", "fc"}));
    EXPECT_NE(err.find("model.cis_maps is now model.cis_linears"), std::string::npos) << err;
    EXPECT_NE(error_of([&] {
                  apply_toml(c, "[model]\ncis_maps = 3\n", "old.toml");
              }).find("must be a list"),
              std::string::npos);
    EXPECT_EQ(to_toml(c).find("cis_maps"), std::string::npos);
}

// The option table's ranges are the model's: validate() and the TOML reader agree.
TEST(Config, ModelOptionRangesAgreeEverywhere) {
    for (const auto& o : model_options()) {
        if (!o.field || o.key.empty()) continue;
        RunConfig c;
        const std::string key = "model." + o.key;
        EXPECT_EQ(error_of([&] { apply_setting(c, key, std::to_string(o.hi)); }), "") << key;
        EXPECT_NE(error_of([&] { apply_setting(c, key, std::to_string(o.hi + 1)); }), "") << key;
        ModelConfig m;
        m.*o.field = int(o.hi + 1);
        EXPECT_NE(error_of([&] { validate(m); }).find(key), std::string::npos) << key;
    }
    // The checkpoint JSON's defaults are the struct's (heads was read as 1 once).
    ModelConfig d;
    d.attention.assign(size_t(d.layers), AttnMap::softmax);
    std::string json = to_json(d);
    json.replace(json.find("\"heads\":4,"), 10, "");
    EXPECT_EQ(model_config_from_json(json).heads, d.heads);
}

TEST(Config, TomlRoundTripKeepsEveryKey) {
    RunConfig c;
    apply_toml(c, find_recipe("iarc-quick").toml, "recipe");
    apply_setting(c, "task.levels=[2,5]");
    apply_setting(c, "model.cis_linears=all");
    apply_setting(c, "train.lr=0.00123");
    apply_setting(c, "task.path=data/\"quoted\" \\ caf\xc3\xa9\t.txt");
    RunConfig d;
    apply_toml(d, to_toml(c), "round trip");
    for (const auto& k : config_keys()) EXPECT_EQ(k.get(c), k.get(d)) << k.name;
    EXPECT_EQ(d.task.path, "data/\"quoted\" \\ caf\xc3\xa9\t.txt");
}

// A path that is not UTF-8 could not be read back from the run's config.toml (TOML
// strings are UTF-8; found by fuzz_config): refused when set, with the key named.
TEST(Config, PathsMustBeUtf8) {
    for (const char* bad : {"\xff\xfe", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
        RunConfig c;
        const std::string e = error_of([&] { apply_setting(c, std::string("task.path=") + bad); });
        EXPECT_NE(e.find("task.path must be UTF-8"), std::string::npos) << e;
    }
    for (const char* twice : {"task.path=\"\"x\"\"", "task.path=\" x\"", "task.images='a '"}) {
        RunConfig c;  // config.toml would read back as another path
        const std::string e = error_of([&] { apply_setting(c, twice); });
        EXPECT_NE(e.find("may be quoted only once"), std::string::npos) << twice << ": " << e;
    }
    RunConfig m;  // task.tasks is quoted as it is in config.toml: checked for every task
    apply_setting(m, "task.name=multitask");
    const std::string t = error_of([&] { apply_setting(m, "task.tasks=((\"ars"); });
    EXPECT_NE(t.find("task.tasks"), std::string::npos) << t;
    RunConfig c;
    const std::string e = error_of([&] { apply_setting(c, "diffusion.classifier=x\x80"); });
    EXPECT_NE(e.find("diffusion.classifier"), std::string::npos) << e;
    apply_setting(c, "task.images=\xe2\x82\xac/\xf0\x9f\x98\x80");  // a euro sign and an emoji
    EXPECT_EQ(c.task.images, "\xe2\x82\xac/\xf0\x9f\x98\x80");
}

static RunConfig small_run(int steps) {
    RunConfig c;
    apply_toml(c, find_recipe("ladder-quick").toml, "recipe");
    apply_setting(c, "train.steps=" + std::to_string(steps));
    apply_setting(c, "train.warmup=5");
    apply_setting(c, "train.batch=8");
    apply_setting(c, "train.eval_every=10");
    apply_setting(c, "train.eval_windows=16");
    apply_setting(c, "train.log_every=5");
    apply_setting(c, "model.dim=32");
    return c;
}

static std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Train, ResumeIsBitIdentical) {
    TrainOptions opt;
    opt.quiet = true;
    opt.out_dir = fresh_dir("straight");
    train_new(small_run(40), opt);
    TrainOptions first = opt;
    first.out_dir = fresh_dir("split");
    first.stop_after = 20;
    train_new(small_run(40), first);
    EXPECT_FALSE(fs::exists(first.out_dir + "/summary.json"));  // not finished yet
    TrainOptions rest = opt;
    train_resume(first.out_dir, {}, rest);
    SafeTensorsFile a(opt.out_dir + "/model.safetensors"), b(first.out_dir + "/model.safetensors");
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (const auto& t : a.tensors()) {
        const auto* tb = b.find(t.name);
        ASSERT_TRUE(tb);
        ASSERT_EQ(t.end - t.begin, tb->end - tb->begin);
        EXPECT_EQ(0, std::memcmp(a.raw(t), b.raw(*tb), t.end - t.begin)) << t.name;
    }
    // The metrics rows agree in every column but the timings.
    auto strip = [](const std::string& path) {
        std::ifstream in(path);
        std::vector<std::string> rows;
        std::string line;
        while (std::getline(in, line)) {
            for (int i = 0; i < 2; i++) line = line.substr(0, line.rfind(','));
            rows.push_back(line);
        }
        return rows;
    };
    EXPECT_EQ(strip(opt.out_dir + "/metrics.csv"), strip(first.out_dir + "/metrics.csv"));
    EXPECT_TRUE(fs::exists(first.out_dir + "/summary.json"));
}

TEST(Train, RefusesNonEmptyOutputWithoutForce) {
    TrainOptions opt;
    opt.quiet = true;
    opt.out_dir = fresh_dir("nonempty");
    fs::create_directories(opt.out_dir);
    std::ofstream(opt.out_dir + "/precious.txt") << "keep me";
    const std::string e = error_of([&] { train_new(small_run(5), opt); });
    EXPECT_NE(e.find("--force"), std::string::npos) << e;
    EXPECT_TRUE(fs::exists(opt.out_dir + "/precious.txt"));
    opt.out_dir = "/proc/attnlab-cannot-write-here";
    EXPECT_FALSE(error_of([&] { train_new(small_run(5), opt); }).empty());
}

TEST(Train, DivergenceIsReportedAndCheckpointKept) {
    TrainOptions opt;
    opt.quiet = true;
    opt.out_dir = fresh_dir("nan");
    opt.stop_after = 10;
    train_new(small_run(20), opt);
    // Poison the checkpoint: a huge (finite) weight makes the next loss non-finite.
    const std::string path = opt.out_dir + "/model.safetensors";
    std::vector<uint8_t> bytes = read_bytes(path);
    SafeTensorsFile f(path);
    const TensorEntry* e = f.find("head.weight");
    ASSERT_TRUE(e);
    const size_t data_start = bytes.size() - [&] {
        size_t n = 0;
        for (const auto& t : f.tensors()) n = std::max(n, t.end);
        return n;
    }();
    const float huge = 3e38f;
    std::memcpy(bytes.data() + data_start + e->begin, &huge, 4);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    opt.stop_after.reset();
    const std::string msg = error_of([&] { train_resume(opt.out_dir, {}, opt); });
    EXPECT_NE(msg.find("diverged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;
    EXPECT_EQ(read_bytes(path), bytes);  // the checkpoint was not overwritten

    // A NaN or infinity in a checkpoint is refused when it is read, naming file and tensor.
    for (const float bad : {NAN, INFINITY}) {
        std::memcpy(bytes.data() + data_start + e->begin + 4, &bad, 4);
        std::ofstream(path, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        const std::string err = error_of([&] { train_resume(opt.out_dir, {}, opt); });
        EXPECT_NE(err.find("'head.weight' holds a non-finite value"), std::string::npos) << err;
        EXPECT_NE(err.find(path), std::string::npos) << err;
        EXPECT_NE(error_of([&] { load_run(opt.out_dir); }).find("non-finite"), std::string::npos);
    }
}

TEST(Train, CorruptOrMismatchedCheckpointIsRejected) {
    TrainOptions opt;
    opt.quiet = true;
    opt.out_dir = fresh_dir("corrupt");
    train_new(small_run(5), opt);
    const std::string path = opt.out_dir + "/model.safetensors";
    std::vector<uint8_t> bytes = read_bytes(path);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size() / 2));
    std::string e = error_of([&] { load_run(opt.out_dir); });
    EXPECT_NE(e.find("truncated"), std::string::npos) << e;
    // A checkpoint of a different model: change the config so the shapes disagree.
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    std::ofstream(opt.out_dir + "/config.toml", std::ios::app) << "";
    RunConfig c;
    apply_toml_file(c, opt.out_dir + "/config.toml");
    apply_setting(c, "model.dim=48");
    std::ofstream(opt.out_dir + "/config.toml", std::ios::trunc) << to_toml(c);
    e = error_of([&] { load_run(opt.out_dir); });
    EXPECT_NE(e.find("shape"), std::string::npos) << e;
}

// The end-to-end bar: a 2-layer transformer reaches >= 99% counted
// accuracy on ladder K = 2, N = 16 (the ladder-quick recipe).
TEST(Train, LadderQuickLearnsTheRecurrence) {
    RunConfig c;
    apply_toml(c, find_recipe("ladder-quick").toml, "recipe");
    // One thread: the result must not depend on how busy the machine is
    // (OpenMP threads that spin on an oversubscribed machine crawl).
    apply_setting(c, "train.threads=1");
    TrainOptions opt;
    opt.quiet = true;
    opt.out_dir = fresh_dir("ladder");
    const TrainSummary s = train_new(c, opt);
    EXPECT_GE(s.eval.accuracy, 0.99) << "eval accuracy " << s.eval.accuracy;
    EXPECT_TRUE(fs::exists(opt.out_dir + "/summary.json"));
    EXPECT_TRUE(fs::exists(opt.out_dir + "/metrics.csv"));
}
