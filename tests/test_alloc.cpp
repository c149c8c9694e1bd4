// A training step allocates nothing: every buffer is sized when the model, the
// optimizer and the batch are built. This file replaces the global operator
// new/delete of the test binary with versions that only count the calls (the
// other tests are unaffected), then counts across training steps after a warm-up
// step, for every architecture and for one and two threads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/gemm.h"
#include "diffusion/run.h"
#include "model/model.h"
#include "model/uvit.h"
#include "tasks/task.h"
#include "train/config.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/recipes.h"

namespace {

std::atomic<long> g_news{0};

void* counted_alloc(std::size_t n, std::size_t align = 0) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) n = 1;
    void* p = align > alignof(std::max_align_t)
                  ? std::aligned_alloc(align, (n + align - 1) / align * align)
                  : std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_alloc(n, std::size_t(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_alloc(n, std::size_t(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}

using namespace attnlab;

namespace {

// Allocations of `steps` training steps (sample the batch, zero_grad, forward,
// backward, AdamW), after one warm-up step.
long allocations_per_steps(const std::string& settings_arch, int threads, int steps = 3) {
    ThreadScope scope(threads);
    RunConfig cfg;
    apply_setting(cfg, "model.arch=" + settings_arch);
    apply_setting(cfg, "model.dim=32");
    apply_setting(cfg, "model.layers=2");
    apply_setting(cfg, "train.batch=8");
    apply_setting(cfg, "train.context=16");
    auto task = make_task(cfg.task);
    resolve(cfg, task->vocab());
    auto model = make_model(cfg.model, cfg.train.batch);
    model->init_params(1);
    Optimizer opt(adamw_config(cfg.train), model->params().size());
    BatchData data(cfg.train.batch, cfg.train.context);
    const Batch batch = data.batch(cfg.train.batch);
    auto step = [&](long s) {
        data.fill(*task, 7, uint64_t(s) * uint64_t(cfg.train.batch));
        model->zero_grad();
        model->forward(batch);
        model->backward(batch);
        opt.step(*model);
    };
    step(0);
    const long before = g_news.load();
    for (int s = 1; s <= steps; s++) step(s);
    return g_news.load() - before;
}

// The same for the U-ViT's denoising step (zero_grad, forward, backward, AdamW) on a
// fixed batch, as `attnlab bench` times it.
long uvit_allocations_per_steps(int threads, int steps = 3) {
    ThreadScope scope(threads);
    RunConfig cfg;
    apply_toml(cfg, find_recipe("uvit-fmnist-quick").toml, "uvit-fmnist-quick");
    apply_setting(cfg, "model.dim=32");
    apply_setting(cfg, "model.layers=3");
    apply_setting(cfg, "train.batch=4");
    resolve_diffusion(cfg);
    UViT model(cfg.model, cfg.train.batch);
    model.init_params(1);
    Optimizer opt(adamw_config(cfg.train), model.params().size());
    const int B = cfg.train.batch, npx = model.pixels();
    std::vector<float> x(size_t(B) * npx, 0.25f), eps(x.size(), -0.5f);
    std::vector<int32_t> t = {0, 10, 500, 999}, y = {0, 3, 9, 10};
    const ImageBatch batch{x.data(), t.data(), y.data(), eps.data(), B};
    auto step = [&] {
        model.zero_grad();
        model.forward(batch);
        model.backward(batch);
        opt.step(model.table(), model.params(), model.grads());
    };
    step();
    const long before = g_news.load();
    for (int s = 1; s <= steps; s++) step();
    return g_news.load() - before;
}

}  // namespace

TEST(Alloc, CounterSeesAllocations) {
    const long before = g_news.load();
    auto* p = new std::vector<int>(10);
    delete p;
    EXPECT_GE(g_news.load() - before, 2);  // the vector and its storage
}

TEST(Alloc, TrainingStepAllocatesNothing) {
    for (const char* arch : {"transformer", "cisformer", "lstm", "mlp"})
        for (int threads : {1, 2})
            EXPECT_EQ(allocations_per_steps(arch, threads), 0)
                << arch << ", " << threads << " threads";
}

TEST(Alloc, UViTTrainingStepAllocatesNothing) {
    for (int threads : {1, 2})
        EXPECT_EQ(uvit_allocations_per_steps(threads), 0) << threads << " threads";
}
