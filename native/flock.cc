// flock(2): advisory locks tied to an open file description, released by the kernel when the
// last fd of it closes, so also when the process is killed. lnlbd holds one per device it
// uses (another daemon on the host is refused that device) and takes one around every change
// of the host's shared sysctl bookkeeping.

#include "flock.h"

#include <errno.h>
#include <sys/file.h>

#include "errors.h"

namespace lnlb {

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
    ThrowErrno(env, errno, "flock");
  }
}

}  // namespace lnlb
