// Options of the synthetic generator: presets, validation, and the one table that drives
// --set overrides, YAML reading and --list-options.
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"
#include "mmkd/data/synthetic.h"

namespace mmkd::data {
namespace {

// ---- text <-> value, one overload per option type ----

std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(uint64_t v) { return std::to_string(v); }
std::string format_value(const std::string& v) { return v; }
std::string format_value(double v) {
  std::ostringstream out;
  out << std::setprecision(6) << v;
  return out.str();
}
std::string format_value(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ",") + format_value(x);
  return s;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

void parse_value(const std::string& key, const std::string& text, int64_t& out) {
  const std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  MMKD_CHECK(!t.empty() && *end == '\0' && errno == 0, "synthetic option '", key,
             "': expected an integer, got '", text, "'");
  out = v;
}

void parse_value(const std::string& key, const std::string& text, uint64_t& out) {
  const std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
  MMKD_CHECK(!t.empty() && t[0] != '-' && *end == '\0' && errno == 0, "synthetic option '", key,
             "': expected a non-negative integer, got '", text, "'");
  out = v;
}

void parse_value(const std::string& key, const std::string& text, double& out) {
  const std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(t.c_str(), &end);
  MMKD_CHECK(!t.empty() && *end == '\0' && errno == 0 && std::isfinite(v), "synthetic option '",
             key, "': expected a number, got '", text, "'");
  out = v;
}

void parse_value(const std::string& /*key*/, const std::string& text, std::string& out) {
  out = trim(text);
}

void parse_value(const std::string& key, const std::string& text, std::vector<double>& out) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    double v = 0;
    parse_value(key, item, v);
    values.push_back(v);
  }
  MMKD_CHECK(!values.empty(), "synthetic option '", key,
             "': expected comma-separated numbers, got '", text, "'");
  out = std::move(values);
}

// ---- YAML, one overload per option type (read_optional covers the common ones) ----

template <typename T>
void read_yaml(const YAML::Node& node, const std::string& key, const std::string& path, T& out) {
  read_optional(node, key, path, out);
}

void read_yaml(const YAML::Node& node, const std::string& key, const std::string& path,
               uint64_t& out) {
  const YAML::Node child = node[key];
  if (!child) return;
  MMKD_CHECK(child.IsScalar(), "config key '", join_key(path, key),
             "': expected a non-negative integer");
  parse_value(join_key(path, key), child.Scalar(), out);
}

void read_yaml(const YAML::Node& node, const std::string& key, const std::string& path,
               std::vector<double>& out) {
  const YAML::Node child = node[key];
  if (!child) return;
  MMKD_CHECK(child.IsSequence(), "config key '", join_key(path, key),
             "': expected a list of numbers");
  std::vector<double> values;
  for (const auto& item : child) {
    MMKD_CHECK(item.IsScalar(), "config key '", join_key(path, key),
               "': expected a list of numbers");
    double v = 0;
    parse_value(join_key(path, key), item.Scalar(), v);
    values.push_back(v);
  }
  out = std::move(values);
}

// ---- the table ----

struct Field {
  std::string name;
  std::string doc;
  std::function<std::string(const SynthOptions&)> get;
  std::function<void(SynthOptions&, const std::string&)> set;
  std::function<void(SynthOptions&, const YAML::Node&, const std::string&)> read;
};

template <typename T>
Field field(const char* name, T SynthOptions::*member, const char* doc) {
  const std::string key = name;
  return Field{key, doc, [member](const SynthOptions& o) { return format_value(o.*member); },
               [member, key](SynthOptions& o, const std::string& text) {
                 parse_value(key, text, o.*member);
               },
               [member, key](SynthOptions& o, const YAML::Node& node, const std::string& path) {
                 read_yaml(node, key, path, o.*member);
               }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      field("preset", &SynthOptions::preset,
            "preset the options came from (tiny | small | medium | mosei); setting it resets all "
            "but seed"),
      field("seed", &SynthOptions::seed, "random seed; same seed -> same bytes"),
      field("n_train", &SynthOptions::n_train, "training samples"),
      field("n_valid", &SynthOptions::n_valid, "validation samples"),
      field("n_test", &SynthOptions::n_test, "test samples"),
      field("len_video", &SynthOptions::len_video, "video steps T_V (MOSEI: 500)"),
      field("len_audio", &SynthOptions::len_audio, "audio steps T_A (MOSEI: 500)"),
      field("len_text", &SynthOptions::len_text, "text steps T_L (MOSEI: 50)"),
      field("dim_video", &SynthOptions::dim_video, "video features (MOSEI Facet: 35)"),
      field("dim_audio", &SynthOptions::dim_audio, "audio features (MOSEI COVAREP: 74)"),
      field("dim_text", &SynthOptions::dim_text, "text features (MOSEI GloVe: 300)"),
      field("label_probs", &SynthOptions::label_probs,
            "probability of each class -3..+3 (7 numbers, normalised)"),
      field("label_exact_prob", &SynthOptions::label_exact_prob,
            "share of labels exactly on the class value (the rest are +-1/3 off)"),
      field("events_min", &SynthOptions::events_min, "fewest real events per sample"),
      field("events_max", &SynthOptions::events_max, "most real events per sample"),
      field("distractors_min", &SynthOptions::distractors_min,
            "fewest video distractor events per sample"),
      field("distractors_max", &SynthOptions::distractors_max,
            "most video distractor events per sample"),
      field("event_width_min", &SynthOptions::event_width_min,
            "narrowest event, share of the true duration"),
      field("event_width_max", &SynthOptions::event_width_max,
            "widest event, share of the true duration"),
      field("intensity_min", &SynthOptions::intensity_min, "lowest per-event intensity"),
      field("intensity_max", &SynthOptions::intensity_max, "highest per-event intensity"),
      field("noise_std", &SynthOptions::noise_std, "std of the Gaussian background"),
      field("snr_text", &SynthOptions::snr_text, "text label amplitude per event step"),
      field("snr_audio", &SynthOptions::snr_audio, "audio label amplitude per event step"),
      field("snr_video", &SynthOptions::snr_video, "video label amplitude per event step"),
      field("video_only_share", &SynthOptions::video_only_share,
            "share of samples whose label differs from what text/audio say"),
      field("video_only_shift", &SynthOptions::video_only_shift,
            "size of that difference (label - said)"),
      field("snr_video_only", &SynthOptions::snr_video_only,
            "video amplitude of the video-only part per event step"),
      field("envelope_channels", &SynthOptions::envelope_channels,
            "leading channels of every modality carrying the activity envelope"),
      field("envelope_strength", &SynthOptions::envelope_strength,
            "envelope rise at real events (all modalities, same sign)"),
      field("envelope_jitter", &SynthOptions::envelope_jitter,
            "per-event activity varies in [1-jitter, 1+jitter]"),
      field("pad_share", &SynthOptions::pad_share, "share of samples shorter than full length"),
      field("min_true_fraction", &SynthOptions::min_true_fraction,
            "their true duration is U[min_true_fraction, 1] of the full length"),
  };
  return table;
}

std::vector<std::string> field_names() {
  std::vector<std::string> names;
  for (const auto& f : fields()) names.push_back(f.name);
  return names;
}

}  // namespace

std::vector<std::string> synth_preset_names() { return {"tiny", "small", "medium", "mosei"}; }

SynthOptions synth_preset(const std::string& name) {
  SynthOptions o;  // the defaults are the small preset
  o.preset = name;
  if (name == "small") return o;
  if (name == "tiny") {
    o.n_train = 128;
    o.n_valid = 48;
    o.n_test = 48;
    o.len_video = 16;
    o.len_audio = 16;
    o.len_text = 8;
    return o;
  }
  if (name == "medium") {
    // small's shapes with 4x the training rows: the smallest set at which the Complete teacher's
    // V<-A and V<-L maps are informative (docs/findings.md 2b); larger valid/test splits narrow
    // each run's accuracy (about +-1 point at 2000 test rows against +-2 at 600).
    o.n_train = 8000;
    o.n_valid = 1000;
    o.n_test = 2000;
    return o;
  }
  if (name == "mosei") {
    o.n_train = 16326;
    o.n_valid = 1871;
    o.n_test = 4659;
    o.len_video = 500;
    o.len_audio = 500;
    o.len_text = 50;
    return o;
  }
  std::string valid;
  for (const auto& n : synth_preset_names()) valid += (valid.empty() ? "" : ", ") + n;
  const auto suggestion = closest_match(name, synth_preset_names());
  MMKD_FAIL("unknown synthetic preset '", name, "'",
            suggestion.empty() ? "" : " (did you mean '" + suggestion + "'?)",
            "; valid presets: ", valid);
}

void apply_synth_override(SynthOptions& options, const std::string& key, const std::string& value) {
  if (key == "preset") {
    const uint64_t seed = options.seed;
    options = synth_preset(trim(value));
    options.seed = seed;
    return;
  }
  for (const auto& f : fields()) {
    if (f.name != key) continue;
    f.set(options, value);
    return;
  }
  const auto suggestion = closest_match(key, field_names());
  MMKD_FAIL("unknown synthetic option '", key, "'",
            suggestion.empty() ? "" : " (did you mean '" + suggestion + "'?)",
            "; list them with `mmkd data synth --list-options`");
}

void apply_synth_yaml(SynthOptions& options, const YAML::Node& node, const std::string& path) {
  if (!node || node.IsNull()) return;
  check_known_keys(node, field_names(), path);
  if (node["preset"]) {
    std::string preset;
    read_optional(node, "preset", path, preset);
    const uint64_t seed = options.seed;
    options = synth_preset(preset);
    options.seed = seed;
  }
  for (const auto& f : fields())
    if (f.name != "preset") f.read(options, node, path);
}

std::vector<std::pair<std::string, std::string>> describe_synth_options(
    const SynthOptions& options) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : fields()) out.emplace_back(f.name, f.get(options) + " \u2014 " + f.doc);
  return out;
}

void validate_synth_options(const SynthOptions& o) {
  const auto positive = [](const char* name, int64_t v) {
    MMKD_CHECK(v >= 1, "synthetic option '", name, "' must be >= 1, got ", v);
  };
  const auto non_negative = [](const char* name, double v) {
    MMKD_CHECK(v >= 0, "synthetic option '", name, "' must be >= 0, got ", v);
  };
  const auto unit = [](const char* name, double v) {
    MMKD_CHECK(v >= 0 && v <= 1, "synthetic option '", name, "' must be in [0, 1], got ", v);
  };
  const auto ordered = [](const char* lo_name, double lo, const char* hi_name, double hi) {
    MMKD_CHECK(lo <= hi, "synthetic options: '", lo_name, "' (", lo, ") must not exceed '", hi_name,
               "' (", hi, ")");
  };
  MMKD_CHECK(o.n_train >= 0 && o.n_valid >= 0 && o.n_test >= 0,
             "synthetic options: split sizes must be >= 0, got n_train=", o.n_train,
             " n_valid=", o.n_valid, " n_test=", o.n_test);
  positive("len_video", o.len_video);
  positive("len_audio", o.len_audio);
  positive("len_text", o.len_text);
  MMKD_CHECK(o.envelope_channels >= 0, "synthetic option 'envelope_channels' must be >= 0, got ",
             o.envelope_channels);
  // The label and video-only directions live outside the envelope channels.
  MMKD_CHECK(o.dim_video >= o.envelope_channels + 2, "synthetic option 'dim_video' (", o.dim_video,
             ") must be >= envelope_channels + 2 (", o.envelope_channels + 2, ")");
  MMKD_CHECK(o.dim_audio >= o.envelope_channels + 1, "synthetic option 'dim_audio' (", o.dim_audio,
             ") must be >= envelope_channels + 1 (", o.envelope_channels + 1, ")");
  MMKD_CHECK(o.dim_text >= o.envelope_channels + 1, "synthetic option 'dim_text' (", o.dim_text,
             ") must be >= envelope_channels + 1 (", o.envelope_channels + 1, ")");
  MMKD_CHECK(o.label_probs.size() == 7, "synthetic option 'label_probs' needs 7 values (classes ",
             "-3..+3), got ", o.label_probs.size());
  double total = 0;
  for (double p : o.label_probs) {
    non_negative("label_probs", p);
    total += p;
  }
  MMKD_CHECK(total > 0, "synthetic option 'label_probs' must not be all zero");
  unit("label_exact_prob", o.label_exact_prob);
  MMKD_CHECK(o.events_min >= 1, "synthetic option 'events_min' must be >= 1, got ", o.events_min);
  ordered("events_min", static_cast<double>(o.events_min), "events_max",
          static_cast<double>(o.events_max));
  MMKD_CHECK(o.distractors_min >= 0, "synthetic option 'distractors_min' must be >= 0, got ",
             o.distractors_min);
  ordered("distractors_min", static_cast<double>(o.distractors_min), "distractors_max",
          static_cast<double>(o.distractors_max));
  MMKD_CHECK(o.event_width_min > 0 && o.event_width_max <= 1,
             "synthetic options: event widths must be in (0, 1], got [", o.event_width_min, ", ",
             o.event_width_max, "]");
  ordered("event_width_min", o.event_width_min, "event_width_max", o.event_width_max);
  non_negative("intensity_min", o.intensity_min);
  ordered("intensity_min", o.intensity_min, "intensity_max", o.intensity_max);
  MMKD_CHECK(o.noise_std >= 0, "synthetic option 'noise_std' must be >= 0, got ", o.noise_std);
  non_negative("snr_text", o.snr_text);
  non_negative("snr_audio", o.snr_audio);
  non_negative("snr_video", o.snr_video);
  non_negative("snr_video_only", o.snr_video_only);
  unit("video_only_share", o.video_only_share);
  non_negative("video_only_shift", o.video_only_shift);
  non_negative("envelope_strength", o.envelope_strength);
  unit("envelope_jitter", o.envelope_jitter);
  unit("pad_share", o.pad_share);
  MMKD_CHECK(o.min_true_fraction > 0 && o.min_true_fraction <= 1,
             "synthetic option 'min_true_fraction' must be in (0, 1], got ", o.min_true_fraction);
}

}  // namespace mmkd::data
