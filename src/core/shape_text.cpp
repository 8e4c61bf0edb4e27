#include "mmkd/core/shape_text.h"

#include <sstream>

namespace mmkd {

std::string shape_text(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace mmkd
