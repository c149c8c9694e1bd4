// The diffusion part of a sweep report: per run the FID (attnlab Fashion-MNIST
// features; lower is better), the classifier's accuracy on the samples, the
// denoising loss and the run's sample grid (samples.png, embedded in the HTML).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace attnlab {

struct DiffusionSection {
    std::string html, markdown;  // both empty when no run is a finished diffusion run
};

// runs: (folder name inside dir, its grid values as text), in report order.
DiffusionSection diffusion_section(const std::string& dir,
                                   const std::vector<std::pair<std::string, std::string>>& runs);

}  // namespace attnlab
