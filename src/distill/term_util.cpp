#include "terms/term_util.h"

#include "mmkd/distill/event_geometry.h"

namespace mmkd::distill::terms {

void check_same_layers(const KdTermContext& context, const std::string& method) {
  MMKD_CHECK(context.teacher->config().layers == context.student->config().layers, "method ",
             method,
             " pairs layer i of the student with layer i of the teacher: both need the same "
             "number of layers (student ",
             context.student->config().layers, ", teacher ", context.teacher->config().layers, ")");
}

void check_same_map_shapes(const KdTermContext& context, const std::string& method) {
  for (const auto& pair : context.pairs) {
    const auto s = context.student->geometry().transformer(pair.student).map_shape();
    const auto t = context.teacher->geometry().transformer(pair.teacher).map_shape();
    MMKD_CHECK(s == t, "method ", method, ": student map ", pair.student, " is ", s[0], "x", s[1],
               " but teacher map ", pair.teacher, " is ", t[0], "x", t[1],
               "; use model.proxy_mode: downsample (EDAM-S↓) so the proxies take ",
               "the teacher's lengths, or method edam with proxy_mode keep (EDAM-T↑)");
  }
}

EdamDirection edam_direction(const TermSpec& spec) {
  const std::string name =
      option<std::string>(spec, "direction", to_string(EdamDirection::kTeacherLogStudent));
  try {
    return parse_edam_direction(name);
  } catch (const Error& e) {
    MMKD_FAIL("config key '", join_key(spec.path, "direction"), "': ", e.what());
  }
}

bool last_layer_only(const TermSpec& spec, const std::string& fallback) {
  const std::string layers = option<std::string>(spec, "layers", fallback);
  MMKD_CHECK(layers == "last" || layers == "all", "config key '", join_key(spec.path, "layers"),
             "': expected last or all, got '", layers, "'");
  return layers == "last";
}

void check_headwise(const KdTermContext& context, const std::string& method) {
  check_same_layers(context, method);
  check_same_map_shapes(context, method);
  MMKD_CHECK(context.student->config().heads == context.teacher->config().heads, "method ", method,
             " compares head h of the student with head h of the teacher: both need the same "
             "model.heads (student ",
             context.student->config().heads, ", teacher ", context.teacher->config().heads, ")");
}

}  // namespace mmkd::distill::terms
