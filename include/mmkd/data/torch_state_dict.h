// Reading a PyTorch state dict saved by `torch.save(model.state_dict(), f)` (the zip format) with
// mmkd's safe pickle reader: tensors and ordered dicts only, no Python objects, nothing run.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace mmkd::data {

/// A state dict's entries in the file's order: parameter or buffer name -> tensor (CPU,
/// contiguous, its stored dtype).
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

/// Reads the state dict in the torch.save zip archive at `path`: every record is first checked
/// against its CRC, data.pkl is parsed with only the globals a tensor state dict needs (any other,
/// such as a model class pickled by torch.save(model), is refused naming it), and each tensor must
/// lie inside its storage record. Errors are mmkd::Error naming the file.
StateDict read_torch_state_dict(const std::string& path);

/// The same for an archive held in memory (fuzzing, tests); `name` prefixes errors. Records are
/// not CRC-checked here (that check reads a file).
StateDict read_torch_state_dict_memory(const void* data, size_t size, const std::string& name);

}  // namespace mmkd::data
