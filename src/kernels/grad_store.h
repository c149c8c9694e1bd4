// How a backward kernel stores the gradient of an input (an activation).
// Parameter gradients are always added into (one zero_grad clears them).
#pragma once

namespace attnlab {

enum class GradStore {
    add,        // dinp += ...: the input feeds several consumers, or the caller zeroed it
    overwrite,  // dinp = ...: the kernel is the input's first writer, so no zeroing pass is needed
};

}  // namespace attnlab
