#include "mmkd/data/mosei_io.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"
#include "mmkd/data/pickle_writer.h"

namespace mmkd::data {

namespace {

using Kind = PyValue::Kind;

constexpr double kLabelTolerance = 1e-4;
constexpr int64_t kCleanChunk = int64_t{1} << 22;  // elements per NaN scan: bounds its temporaries

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "'" : ", '") + part + "'";
  return out.empty() ? "none" : out;
}

/// Features already converted, by the array node they came from. Python's pickle memoises an
/// object used twice (one array under two splits) into one node, which is converted once and
/// shared: the second use neither fails nor costs a second copy.
struct ConvertedFeatures {
  torch::Tensor tensor;
  int64_t replaced = 0;
};
using FeatureCache = std::unordered_map<const NdArray*, ConvertedFeatures>;

/// What load_mosei reads from one split dict; names every problem with file/split/key.
class SplitReader {
 public:
  SplitReader(const std::string& path, const std::string& split, PyValue& dict, MoseiData& data,
              FeatureCache& converted)
      : path_(path), split_(split), dict_(dict), data_(data), converted_(converted) {}

  Split read();

 private:
  std::string where(const std::string& key) const {
    return path_ + ": '" + split_ + "/" + key + "'";
  }
  NdArray& array(const std::string& key);
  NdArray* optional_array(const std::string& key);
  torch::Tensor features(Modality m);
  torch::Tensor labels(int64_t n);
  std::vector<std::string> ids(int64_t n);
  void events(Split& split);

  const std::string& path_;
  const std::string& split_;
  PyValue& dict_;
  MoseiData& data_;
  FeatureCache& converted_;
};

NdArray* SplitReader::optional_array(const std::string& key) {
  PyValue* value = dict_.find(key);
  if (value == nullptr) return nullptr;
  MMKD_CHECK(value->is(Kind::kNdArray), where(key), " is a ", value->describe(),
             "; expected a numpy array");
  return &value->array;
}

NdArray& SplitReader::array(const std::string& key) {
  NdArray* found = optional_array(key);
  MMKD_CHECK(found != nullptr, path_, ": split '", split_, "' has no key '", key,
             "' (found keys: ", join(dict_.text_keys()), ")");
  return *found;
}

/// Replaces NaN/±inf by 0 in place, chunk by chunk (isfinite builds float temporaries the size
/// of its input); returns how many were replaced. `t` must be contiguous.
int64_t replace_non_finite(torch::Tensor& t) {
  torch::Tensor flat = t.view({-1});
  int64_t replaced = 0;
  for (int64_t start = 0; start < flat.numel(); start += kCleanChunk) {
    torch::Tensor chunk = flat.narrow(0, start, std::min(kCleanChunk, flat.numel() - start));
    const torch::Tensor bad = torch::isfinite(chunk).logical_not_();
    const int64_t count = bad.sum().item<int64_t>();
    if (count == 0) continue;
    chunk.masked_fill_(bad, 0.0);
    replaced += count;
  }
  return replaced;
}

torch::Tensor SplitReader::features(Modality m) {
  const std::string key = modality_key(m);
  NdArray& source = array(key);
  data_.source_dtypes[split_ + "/" + key] = source.dtype;
  const auto shared = converted_.find(&source);
  if (shared != converted_.end()) {
    data_.cleaned.replaced[split_][modality_index(m)] = shared->second.replaced;
    return shared->second.tensor;
  }
  MMKD_CHECK(source.is_numeric(), where(key), " has dtype ", source.dtype, "; expected numbers");
  MMKD_CHECK(source.shape.size() == 3, where(key), " has shape ", source.shape_string(),
             "; expected rank 3 [N,T,F]");
  // Take the tensor out of the tree so that the original is freed as soon as it is converted.
  torch::Tensor original = std::move(source.tensor);
  source.tensor = torch::Tensor();
  torch::Tensor converted = original.to(torch::kFloat).contiguous();
  original = torch::Tensor();
  const int64_t replaced = replace_non_finite(converted);
  data_.cleaned.replaced[split_][modality_index(m)] = replaced;
  converted_[&source] = {converted, replaced};
  return converted;
}

torch::Tensor SplitReader::labels(int64_t n) {
  const bool mult = dict_.find("labels") != nullptr;
  MMKD_CHECK(mult || dict_.find("regression_labels") != nullptr, path_, ": split '", split_,
             "' has no key 'labels' (MulT) or 'regression_labels' (MMSA) (found keys: ",
             join(dict_.text_keys()), ")");
  const std::string key = mult ? "labels" : "regression_labels";
  if (data_.layout.empty()) data_.layout = mult ? "mult" : "mmsa";
  NdArray& source = array(key);
  MMKD_CHECK(source.is_numeric(), where(key), " has dtype ", source.dtype, "; expected numbers");
  const char* expected = mult ? "[N,1,1]" : "[N]";
  MMKD_CHECK(!source.shape.empty() && source.shape[0] == n && source.numel() == n, where(key),
             " has shape ", source.shape_string(), "; expected ", expected, " with N = ", n,
             " as the features");
  data_.source_dtypes[split_ + "/" + key] = source.dtype;
  torch::Tensor values = source.tensor.reshape({n}).to(torch::kDouble).contiguous();
  const double* v = values.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i)
    MMKD_CHECK(std::isfinite(v[i]) && std::abs(v[i]) <= 3.0 + kLabelTolerance, where(key), "[", i,
               "] is ", v[i], "; expected a sentiment in [-3, 3]");
  return values.clamp(-3.0, 3.0).to(torch::kFloat);
}

std::string format_number(const torch::Tensor& element) {
  if (element.is_floating_point()) {
    std::ostringstream out;
    out << element.item<double>();
    return out.str();
  }
  return std::to_string(element.item<int64_t>());
}

std::vector<std::string> SplitReader::ids(int64_t n) {
  NdArray* source = optional_array("id");
  if (source == nullptr) return {};
  MMKD_CHECK(!source->shape.empty() && source->shape[0] == n && source->shape.size() <= 2,
             where("id"), " has shape ", source->shape_string(),
             "; expected [N] or [N,k] with N = ", n);
  MMKD_CHECK(source->is_numeric() || source->is_strings(), where("id"), " has dtype ",
             source->dtype, "; expected strings or numbers");
  const int64_t per_row = n == 0 ? 0 : source->numel() / n;
  torch::Tensor flat = source->is_numeric() ? source->tensor.reshape({-1}) : torch::Tensor();
  std::vector<std::string> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < per_row; ++k) {
      const int64_t at = i * per_row + k;
      const std::string part =
          flat.defined() ? format_number(flat[at]) : source->strings[static_cast<size_t>(at)];
      out[static_cast<size_t>(i)] += (k == 0 ? "" : "|") + part;
    }
  return out;
}

void SplitReader::events(Split& split) {
  PyValue* events = dict_.find("events");
  if (events == nullptr) return;
  MMKD_CHECK(events->is(Kind::kDict), where("events"), " is a ", events->describe(),
             "; expected a dict {'vision','audio','text'} of [N,T] masks");
  for (Modality m : kModalities) {
    const std::string key = modality_key(m);
    PyValue* mask = events->find(key);
    const std::string name = "events/" + key;
    MMKD_CHECK(mask != nullptr && mask->is(Kind::kNdArray) && mask->array.is_numeric(), where(name),
               " is missing or not a numeric array (found keys in 'events': ",
               join(events->text_keys()), ")");
    const torch::Tensor& feature = split.features[modality_index(m)];
    MMKD_CHECK(mask->array.shape.size() == 2 && mask->array.shape[0] == feature.size(0) &&
                   mask->array.shape[1] == feature.size(1),
               where(name), " has shape ", mask->array.shape_string(), "; expected [",
               feature.size(0), ",", feature.size(1), "] like its features");
    split.events[modality_index(m)] = mask->array.tensor.ne(0).contiguous();
  }
}

Split SplitReader::read() {
  Split split;
  for (Modality m : kModalities) split.features[modality_index(m)] = features(m);
  const int64_t n = split.features[0].size(0);
  // An empty split would only fail later, inside batching, without naming the file.
  MMKD_CHECK(n > 0, path_, ": split '", split_,
             "' holds no samples; every split needs at least one");
  for (Modality m : kModalities)
    MMKD_CHECK(split.feature(m).size(0) == n, path_, ": split '", split_, "': '", modality_key(m),
               "' has ", split.feature(m).size(0), " samples but 'vision' has ", n);
  split.labels = labels(n);
  split.ids = ids(n);
  events(split);
  return split;
}

/// Feature widths are a property of the data set: every split must agree with 'train'.
void check_feature_dims(const std::string& path, const MoseiData& data) {
  const Split& reference = data.splits.at("train");
  for (const auto& [name, split] : data.splits)
    for (Modality m : kModalities) {
      const int64_t expected = reference.feature(m).size(2);
      MMKD_CHECK(split.feature(m).size(2) == expected, path, ": '", name, "/", modality_key(m),
                 "' has ", split.feature(m).size(2), " features per step but 'train/",
                 modality_key(m), "' has ", expected);
    }
}

PyRef mult_split(const Split& split) {
  PyRef dict = PyValue::make(Kind::kDict);
  for (Modality m : {Modality::kVideo, Modality::kAudio, Modality::kText})
    dict->set(modality_key(m),
              PyValue::make_array(split.feature(m).to(torch::kFloat).contiguous()));
  dict->set("labels",
            PyValue::make_array(split.labels.to(torch::kFloat).reshape({-1, 1, 1}).contiguous()));
  if (!split.ids.empty())
    dict->set("id",
              PyValue::make_string_array(split.ids, {static_cast<int64_t>(split.ids.size())}));
  if (split.has_events()) {
    PyRef events = PyValue::make(Kind::kDict);
    for (Modality m : kModalities)
      events->set(modality_key(m),
                  PyValue::make_array(split.event(m).to(torch::kUInt8).contiguous()));
    dict->set("events", events);
  }
  return dict;
}

}  // namespace

MoseiData load_mosei(const std::string& path) {
  PyRef root = read_pickle_file(path);
  MMKD_CHECK(root->is(Kind::kDict), path, ": top level is a ", root->describe(),
             "; expected a dict with splits 'train', 'valid', 'test'");
  MoseiData data;
  data.source = path;
  FeatureCache converted;
  for (const char* name : kSplitNames) {
    PyValue* split = root->find(name);
    MMKD_CHECK(split != nullptr, path, ": missing split '", name,
               "' (found keys: ", join(root->text_keys()), ")");
    MMKD_CHECK(split->is(Kind::kDict), path, ": split '", name, "' is a ", split->describe(),
               "; expected a dict");
    data.splits[name] = SplitReader(path, name, *split, data, converted).read();
  }
  check_feature_dims(path, data);
  return data;
}

void save_mosei(const MoseiData& data, const std::string& path) {
  PyRef root = PyValue::make(Kind::kDict);
  for (const char* name : kSplitNames) root->set(name, mult_split(data.split(name)));
  write_pickle_file(*root, path);
}

}  // namespace mmkd::data
