// Every kernel and every model variant passes its finite-difference check, and
// backward accumulates: running it twice doubles every gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "core/rng.h"
#include "kernels/attention.h"
#include "model/gradcheck.h"
#include "model/model.h"

using namespace attnlab;

TEST(GradCheck, EveryKernel) {
    for (const auto& r : run_kernel_gradchecks("all"))
        EXPECT_TRUE(r.ok()) << r.kernel << " " << r.map << " " << r.tensor << " err " << r.max_err
                            << " > tol " << r.tol;
}

TEST(GradCheck, EveryModelVariant) {
    for (const auto& r : run_model_gradchecks("all"))
        EXPECT_TRUE(r.ok()) << r.kernel << " " << r.map << " " << r.tensor << " err " << r.max_err
                            << " > tol " << r.tol;
}

// The kernel table holds every kernel once (and the attention kernel once per map,
// mask and bias), each with a tolerance; a kernel without an entry is a defect.
TEST(GradCheck, TableRegistersEveryKernelOnce) {
    std::set<std::pair<std::string, std::string>> seen;
    std::set<std::string> kernels;
    for (const auto& c : kernel_gradchecks("all")) {
        EXPECT_TRUE(seen.insert({c.kernel, c.map}).second) << c.kernel << " " << c.map << " twice";
        EXPECT_GT(c.tol, 0) << c.kernel;
        EXPECT_TRUE(c.measure != nullptr) << c.kernel;
        kernels.insert(c.kernel);
    }
    for (const char* k :
         {"linear", "linear_pos", "linear_lowrank_pos", "layernorm", "rmsnorm", "gelu", "relu",
          "swiglu", "embedding", "rope", "cross_entropy", "lstm", "window_concat", "attention",
          "attention+alibi", "attention/bidir", "attention/bidir+alibi"})
        EXPECT_TRUE(kernels.count(k)) << k << " has no gradient check";
    EXPECT_EQ(seen.size(), 13 + 4 * all_attention_maps().size());
    std::set<std::string> models;
    for (const auto& c : model_gradchecks("all"))
        EXPECT_TRUE(models.insert(c.kernel + " " + c.map).second) << c.kernel << " " << c.map;
    for (const char* m :
         {"model:lstm/layers=1 -", "model:lstm/layers=2 -",
          "model:mlp/window=1,layers=2,hidden=5 -", "model:mlp/window=0,layers=1 -"})
        EXPECT_TRUE(models.count(m)) << m;
}

TEST(Backward, TwiceDoublesEveryGradient) {
    for (const char* spec : {"softmax", "cogformer", "expressive"}) {
        ModelConfig cfg;
        cfg.vocab = 9, cfg.context = 8, cfg.dim = 16, cfg.heads = 4, cfg.layers = 3;
        cfg.pos = PosEncoding::rope;
        cfg.attention = resolve_attention("model.attention", spec, cfg.layers);
        auto model = make_model(cfg, 3);
        model->init_params(5);
        Rng rng(9);
        std::vector<int32_t> inp(24), tgt(24);
        std::vector<uint8_t> counted(24, 1);
        for (size_t i = 0; i < 24; i++)
            inp[i] = int32_t(rng.below(9)), tgt[i] = int32_t(rng.below(9));
        const Batch b{inp.data(), tgt.data(), counted.data(), 3, 8};
        model->zero_grad();
        model->forward(b);
        model->backward(b);
        std::vector<float> once(model->grads().data(),
                                model->grads().data() + model->grads().size());
        model->backward(b);
        double nonzero = 0;
        for (size_t i = 0; i < once.size(); i++) {
            // Not bit-exact: the second pass adds into non-zero sums (gemm with beta = 1).
            EXPECT_NEAR(model->grads()[i], 2.0f * once[i], 1e-5 * std::fabs(once[i]) + 1e-9)
                << spec << " index " << i;
            nonzero += once[i] != 0.0f;
        }
        EXPECT_GT(nonzero, 0.9 * double(model->table().count())) << spec;
    }
}
