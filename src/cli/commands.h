// The subcommands of the `attnlab` binary; main.cpp wires them to CLI11.
#pragma once
#include <string>

namespace attnlab {

// Prints the gradient-check table; returns the number of failed checks.
int cmd_gradcheck(const std::string& map_filter, bool kernels_only);
// Writes the golden cases compared by the PyTorch reference test.
void cmd_golden(const std::string& out_dir);

}  // namespace attnlab
