// The DDIM loop over batches of images.
#include "diffusion/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

std::vector<float> sample_images(UViT& model, const NoiseSchedule& schedule,
                                 const std::vector<int32_t>& classes, const SampleOptions& opt) {
    const int n = int(classes.size()), npx = model.pixels(), K = model.config().vocab;
    const bool guided = opt.guidance != 1.0f;
    const int per_batch = guided ? model.max_batch() / 2 : model.max_batch();
    if (per_batch < 1) throw Error("guided sampling needs a model built for a batch of >= 2");
    for (int32_t c : classes)
        if (c < 0 || c > K)
            throw Error("class " + std::to_string(c) + " is not 0.." + std::to_string(K - 1) +
                        " (or " + std::to_string(K) + " for no class)");
    const std::vector<int> levels = schedule.ddim_levels(opt.steps);
    std::vector<float> out(size_t(n) * npx);
    std::vector<float> x(size_t(2) * per_batch * npx), eps(size_t(per_batch) * npx);
    std::vector<int32_t> t(size_t(2) * per_batch), y(size_t(2) * per_batch);
    const Rng base(opt.seed);
    for (int i0 = 0; i0 < n; i0 += per_batch) {
        const int b = std::min(per_batch, n - i0);
        for (int i = 0; i < b; i++) {
            Rng rng = base.split(uint64_t(i0 + i));
            for (int p = 0; p < npx; p++) x[size_t(i) * npx + p] = float(rng.normal());
            y[size_t(i)] = classes[size_t(i0 + i)];
            y[size_t(b + i)] = K;  // the unconditional copy
        }
        for (size_t s = 0; s < levels.size(); s++) {
            const int level = levels[s], prev = s + 1 < levels.size() ? levels[s + 1] : -1;
            std::fill(t.begin(), t.end(), level);
            if (guided) std::copy_n(x.begin(), size_t(b) * npx, x.begin() + ptrdiff_t(b) * npx);
            model.forward(ImageBatch{x.data(), t.data(), y.data(), nullptr, guided ? 2 * b : b});
            const float* pred = model.prediction();
            const float g = opt.guidance;
            for (size_t k = 0; k < size_t(b) * npx; k++)
                eps[k] = guided
                             ? pred[size_t(b) * npx + k] + g * (pred[k] - pred[size_t(b) * npx + k])
                             : pred[k];
            schedule.ddim_step(x.data(), eps.data(), level, prev, long(b) * npx);
        }
        std::copy_n(x.begin(), size_t(b) * npx, out.begin() + ptrdiff_t(i0) * npx);
    }
    return out;
}

std::vector<uint8_t> to_bytes(const std::vector<float>& images) {
    std::vector<uint8_t> out(images.size());
    for (size_t i = 0; i < images.size(); i++)
        out[i] = uint8_t(std::lround(std::clamp((images[i] + 1.0f) * 127.5f, 0.0f, 255.0f)));
    return out;
}

}  // namespace attnlab
