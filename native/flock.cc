// flock(2): advisory locks tied to an open file description, released by the kernel when the
// last fd of it closes, so also when the process is killed. lnlbd holds one per device it
// uses (another daemon on the host is refused that device) and takes one around every change
// of the host's shared sysctl bookkeeping.

#include "flock.h"

#include <errno.h>
#include <string.h>
#include <sys/file.h>

#include <string>

namespace lnlb {

namespace {

// The same error shape as the port's calls (native/port.cc ThrowErrno): src/port/native.ts
// turns it into an LnlbError.
[[noreturn]] void ThrowFlockErrno(Napi::Env env, int err) {
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  std::string errnoName = name != nullptr ? name : "EUNKNOWN";
  Napi::Error error = Napi::Error::New(env, std::string("flock: ") + (desc != nullptr ? desc : "unknown error") + " (" + errnoName + ")");
  Napi::Object obj = error.Value();
  obj.Set("errno", errnoName);
  obj.Set("errnoNumber", Napi::Number::New(env, err));
  obj.Set("syscall", "flock");
  throw error;
}

}  // namespace

Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBoolean() || !info[2].IsBoolean()) {
    throw Napi::TypeError::New(env, "flock(fd: number, exclusive: boolean, nonBlocking: boolean)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = (info[1].As<Napi::Boolean>().Value() ? LOCK_EX : LOCK_SH) | (info[2].As<Napi::Boolean>().Value() ? LOCK_NB : 0);
  for (;;) {
    if (::flock(fd, op) == 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;  // a signal during a blocking wait: wait again
    if (errno == EWOULDBLOCK && (op & LOCK_NB) != 0) return Napi::Boolean::New(env, false);
    ThrowFlockErrno(env, errno);
  }
}

}  // namespace lnlb
