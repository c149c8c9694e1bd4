// Class-conditional DDIM sampling from a trained U-ViT, with classifier-free
// guidance (Ho & Salimans 2022): eps = eps_u + g (eps_c - eps_u), eps_u the
// prediction without a class. Deterministic given the seed: image i starts from
// the noise of Rng(seed).split(i), whatever the batch size.
#pragma once
#include <cstdint>
#include <vector>

#include "diffusion/schedule.h"
#include "model/uvit.h"

namespace attnlab {

struct SampleOptions {
    int steps = 50;         // DDIM steps (1..levels)
    float guidance = 2.0f;  // g; 1 = the conditional prediction alone (no unconditional pass)
    uint64_t seed = 1;
};

// One image per entry of `classes` (each 0..K-1, or K: unconditional), as
// (n, S*S) floats in [-1, 1]. Batches of up to model.max_batch() / 2 images
// (cond and uncond share a forward pass); allocates only its own buffers.
std::vector<float> sample_images(UViT& model, const NoiseSchedule& schedule,
                                 const std::vector<int32_t>& classes, const SampleOptions& opt);

// [-1, 1] floats -> 0..255 bytes (rounded, clamped).
std::vector<uint8_t> to_bytes(const std::vector<float>& images);

}  // namespace attnlab
