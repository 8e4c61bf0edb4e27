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

}  // namespace mmkd::data
