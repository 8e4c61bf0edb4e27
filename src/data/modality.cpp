#include "mmkd/data/modality.h"

#include <algorithm>
#include <cctype>

#include "mmkd/core/error.h"

namespace mmkd::data {

std::string modality_key(Modality m) {
  switch (m) {
    case Modality::kVideo:
      return "vision";
    case Modality::kAudio:
      return "audio";
    case Modality::kText:
      return "text";
  }
  return "?";
}

std::string modality_letter(Modality m) {
  switch (m) {
    case Modality::kVideo:
      return "V";
    case Modality::kAudio:
      return "A";
    case Modality::kText:
      return "L";
  }
  return "?";
}

Modality parse_modality(const std::string& name, const std::string& what) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "video" || lower == "vision" || lower == "v") return Modality::kVideo;
  if (lower == "audio" || lower == "a") return Modality::kAudio;
  if (lower == "text" || lower == "language" || lower == "l") return Modality::kText;
  MMKD_FAIL(what, ": unknown modality '", name, "'; expected one of video, audio, text");
}

std::vector<Modality> parse_modality_list(const std::string& text, const std::string& what) {
  std::vector<Modality> list;
  for (size_t start = 0; start < text.size();) {
    const size_t comma = std::min(text.find(',', start), text.size());
    list.push_back(parse_modality(text.substr(start, comma - start), what));
    start = comma + 1;
  }
  return list;
}

}  // namespace mmkd::data
