// The text task (memory-mapped loader, train/validation split, file errors, bits
// per byte).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/generate.h"
#include "model/model.h"
#include "tasks/text.h"
#include "train/config.h"
#include "train/data.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
    return ::testing::TempDir() + "attnlab-text-" + name;
}

// Writes `bytes` to a fresh file and returns its path.
std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = temp_path(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
}

// Uniform random bytes: any window of 16 or more bytes occurs once in the file
// (checked where it matters), so a window reveals the offset it was cut from.
std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<uint8_t> b(n);
    for (auto& x : b) x = uint8_t(rng.below(256));
    return b;
}

std::unique_ptr<Task> text_task(const std::string& path) {
    TaskConfig cfg;
    cfg.name = "text";
    cfg.path = path;
    return make_task(cfg);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Offset of `window` in `file`; fails the test unless it occurs exactly once.
size_t locate(const std::vector<uint8_t>& file, const std::vector<int32_t>& window) {
    const std::vector<uint8_t> w(window.begin(), window.end());
    const auto at = std::search(file.begin(), file.end(), w.begin(), w.end());
    EXPECT_NE(at, file.end()) << "window is not a slice of the file";
    if (at == file.end()) return 0;
    EXPECT_EQ(std::search(at + 1, file.end(), w.begin(), w.end()), file.end())
        << "window not unique";
    return size_t(at - file.begin());
}

TEST(TextTask, WindowsAreExactSlicesOfTheirPart) {
    const size_t size = 400;  // split at 360: train [0, 360), validation [360, 400)
    const std::vector<uint8_t> file = random_bytes(size, 5);
    const auto task = text_task(write_file("slices.bin", file));
    ASSERT_EQ(task->name(), "text");
    EXPECT_EQ(task->vocab(), 256);
    EXPECT_EQ(task->label_names(), std::vector<std::string>{"text"});
    EXPECT_TRUE(task->byte_level());
    const size_t cut = text_split_point(size);
    ASSERT_EQ(cut, 360u);
    const int T = 19;  // windows of 20 bytes
    const auto& train = dynamic_cast<const TextTask&>(*task);
    const auto& valid = dynamic_cast<const TextTask&>(task->eval_task());
    EXPECT_EQ(train.split(), TextSplit::train);
    EXPECT_EQ(valid.split(), TextSplit::validation);
    EXPECT_EQ(train.begin(), 0u);
    EXPECT_EQ(train.end(), cut);
    EXPECT_EQ(valid.begin(), cut);
    EXPECT_EQ(valid.end(), size);
    EXPECT_EQ(&valid.eval_task(), &valid);

    size_t lo[2] = {size, size}, hi[2] = {0, 0};
    for (int part = 0; part < 2; part++) {
        const Task& t = part == 0 ? *task : task->eval_task();
        for (uint64_t i = 0; i < 3000; i++) {
            const Window w = sample_window(t, 11, i, T);
            ASSERT_EQ(w.tokens.size(), size_t(T) + 1);
            for (int j = 0; j < T; j++) {
                ASSERT_EQ(w.counted[j], 1) << "every target is counted";
                ASSERT_EQ(w.label[j], 0);
            }
            const size_t off = locate(file, w.tokens);
            if (part == 0)
                ASSERT_LE(off + T + 1, cut) << "a training window reads validation bytes";
            else
                ASSERT_GE(off, cut) << "a validation window reads training bytes";
            lo[part] = std::min(lo[part], off), hi[part] = std::max(hi[part], off);
        }
    }
    // Every offset is reachable: the first and last possible windows of both parts occur.
    EXPECT_EQ(lo[0], 0u);
    EXPECT_EQ(hi[0], cut - T - 1);
    EXPECT_EQ(lo[1], cut);
    EXPECT_EQ(hi[1], size - T - 1);
}

TEST(TextTask, BatchesAndTheEvaluationSetUseTheirParts) {
    // Training part all 'a', validation part all 'b': the part a window came from
    // shows in every byte.
    std::vector<uint8_t> file(1000, 'a');
    std::fill(file.begin() + std::ptrdiff_t(text_split_point(file.size())), file.end(), 'b');
    const auto task = text_task(write_file("parts.txt", file));
    BatchData data(8, 32);
    data.fill(*task, 3, 0);
    for (const int32_t t : data.inputs) ASSERT_EQ(t, 'a');
    for (const int32_t t : data.targets) ASSERT_EQ(t, 'a');

    // A model that records what it is shown and reports a loss of 3 ln 2 nats.
    class Recorder final : public Model {
      public:
        explicit Recorder(const ModelConfig& cfg) : Model(cfg, 4) { allocate_params(); }
        LossResult forward(const Batch& b) override {
            seen.insert(seen.end(), b.inputs, b.inputs + size_t(b.B) * b.T);
            seen.insert(seen.end(), b.targets, b.targets + size_t(b.B) * b.T);
            return {3.0 * std::log(2.0), long(b.B) * b.T, 0};
        }
        void backward(const Batch&) override {}
        size_t activation_bytes() const override { return 0; }
        std::vector<int32_t> seen;
    };
    ModelConfig mc;
    mc.vocab = 256, mc.context = 32;
    Recorder model(mc);
    const EvalSet eval(*task, 7, 10, 32);
    const EvalResult r = eval.evaluate(model);
    ASSERT_EQ(model.seen.size(), 2u * 10 * 32);
    for (const int32_t t : model.seen)
        ASSERT_EQ(t, 'b') << "evaluation must read the validation part";
    ASSERT_TRUE(r.bits_per_byte.has_value());
    EXPECT_NEAR(*r.bits_per_byte, 3.0, 1e-12);
    EXPECT_EQ(r.counted, 10 * 32);
}

TEST(TextTask, FileErrorsNameTheFileAndTheProblem) {
    const std::string missing = temp_path("does-not-exist.txt");
    fs::remove(missing);
    std::string e = error_of([&] { text_task(missing); });
    EXPECT_NE(e.find("task.path"), std::string::npos) << e;
    EXPECT_NE(e.find(missing), std::string::npos) << e;
    EXPECT_NE(e.find("No such file"), std::string::npos) << e;

    const std::string empty = write_file("empty.txt", {});
    e = error_of([&] { text_task(empty); });
    EXPECT_NE(e.find(empty), std::string::npos) << e;
    EXPECT_NE(e.find("empty"), std::string::npos) << e;

    const std::string folder = temp_path("folder");
    fs::create_directories(folder);
    e = error_of([&] { text_task(folder); });
    EXPECT_NE(e.find("folder"), std::string::npos) << e;

    e = error_of([&] { text_task(""); });
    EXPECT_NE(e.find("task.path"), std::string::npos) << e;

    // 100 bytes: the validation part holds 10, one window of T = 9; T = 10 is too long
    // for every path that draws windows.
    const std::string short_file = write_file("short.txt", std::vector<uint8_t>(100, 'x'));
    const auto task = text_task(short_file);
    EXPECT_NO_THROW(sample_window(*task, 1, 0, 9));
    EXPECT_NO_THROW(sample_window(task->eval_task(), 1, 0, 9));
    e = error_of([&] { sample_window(*task, 1, 0, 10); });
    EXPECT_NE(e.find(short_file), std::string::npos) << e;
    EXPECT_NE(e.find("too short"), std::string::npos) << e;
    EXPECT_NE(e.find("110 bytes"), std::string::npos) << e;  // the size that would do
    BatchData data(2, 10);
    EXPECT_THROW(data.fill(*task, 1, 0), Error);
    EXPECT_THROW(EvalSet(*task, 1, 4, 10), Error);

    if (!fs::exists(TaskConfig{}.path)) {  // the default corpus: the error says how to make it
        e = error_of([&] { text_task(TaskConfig{}.path); });
        EXPECT_NE(e.find("make corpus"), std::string::npos) << e;
    }
}

TEST(TextTask, PathKeyRoundTripsThroughToml) {
    RunConfig c;
    apply_setting(c, "task.name=text");
    c.task.path = "/tmp/a \"quoted\" name\\with backslash.txt";
    RunConfig d;
    apply_toml(d, to_toml(c), "round trip");
    EXPECT_EQ(d.task.path, c.task.path);
    EXPECT_EQ(d.task.name, "text");
}

}  // namespace
}  // namespace attnlab
