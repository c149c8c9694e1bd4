// Every kernel and every model variant passes its finite-difference check, and
// backward accumulates: running it twice doubles every gradient.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
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
        for (size_t i = 0; i < 24; i++) inp[i] = int32_t(rng.below(9)), tgt[i] = int32_t(rng.below(9));
        const Batch b{inp.data(), tgt.data(), counted.data(), 3, 8};
        model->zero_grad();
        model->forward(b);
        model->backward(b);
        std::vector<float> once(model->grads().data(), model->grads().data() + model->grads().size());
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
