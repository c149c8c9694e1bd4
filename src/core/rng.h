// The project's random number generator: xoshiro256** seeded through
// splitmix64 (Blackman & Vigna). Fully specified here so that every stream of
// random numbers (init, data, sampling) is reproducible across machines.
#pragma once
#include <cmath>
#include <cstdint>

namespace attnlab {

class Rng {
  public:
    explicit Rng(uint64_t seed = 0) { reseed(seed); }

    void reseed(uint64_t seed) {
        uint64_t x = seed;
        for (auto& w : s_) w = splitmix64(x);
    }

    // splitmix64 step: advances x and returns the next output.
    static uint64_t splitmix64(uint64_t& x) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    uint64_t next_u64() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }

    // Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method).
    uint32_t below(uint32_t n) {
        uint64_t m = uint64_t(uint32_t(next_u64() >> 32)) * n;
        uint32_t low = uint32_t(m);
        if (low < n) {
            const uint32_t threshold = uint32_t(-n) % n;
            while (low < threshold) {
                m = uint64_t(uint32_t(next_u64() >> 32)) * n;
                low = uint32_t(m);
            }
        }
        return uint32_t(m >> 32);
    }

    // Standard normal by Box-Muller (one value per call; the pair's second is dropped
    // so the stream position depends only on the number of calls).
    double normal() {
        const double u1 = 1.0 - uniform();  // (0, 1]
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

    // Derive an independent generator for a named sub-stream (e.g. per window).
    Rng split(uint64_t stream) const {
        uint64_t x = s_[0] ^ (stream * 0xD1B54A32D192ED03ull) ^ s_[3];
        return Rng(splitmix64(x));
    }

    // Whole state, for checkpoints.
    const uint64_t* state() const { return s_; }
    void set_state(const uint64_t* s) {
        for (int i = 0; i < 4; i++) s_[i] = s[i];
    }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

}  // namespace attnlab
