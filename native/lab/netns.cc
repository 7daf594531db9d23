// netnsEnter: see netns.h.

#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>

#include <string>

#include "../args.h"
#include "../errors.h"
#include "../fd-guard.h"

namespace lnlb {

namespace {

void NetnsEnter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  FdGuard fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno(env, errno, "open(netns)", path);
  if (setns(fd.get(), CLONE_NEWNET) < 0) ThrowErrno(env, errno, "setns(CLONE_NEWNET)", path);
}

}  // namespace

void RegisterNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsEnter", Napi::Function::New(env, NetnsEnter, "netnsEnter"));
}

}  // namespace lnlb
