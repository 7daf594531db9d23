// Errors thrown to JS: see errors.h.

#include "errors.h"

#include <string.h>

namespace lnlb {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& device) {
  std::string message = syscall;
  if (!device.empty()) message += " on " + device;
  const char* desc = strerrordesc_np(err);  // thread-safe, unlike strerror()
  message += std::string(": ") + (desc != nullptr ? desc : "unknown error") + " (" +
             ErrnoName(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("errno", ErrnoName(err));
  obj.Set("errnoNumber", Napi::Number::New(env, err));
  obj.Set("syscall", syscall);
  if (!device.empty()) obj.Set("device", device);
  throw error;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

}  // namespace lnlb
