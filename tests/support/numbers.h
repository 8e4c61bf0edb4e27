// Numbers several tests spell: one definition, so that unity batches do not define them twice.
#pragma once

#include <limits>

namespace mmkd::testing {

/// Masked attention logits are -kInf.
inline constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace mmkd::testing
