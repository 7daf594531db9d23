// notifyListen: see notify-listen.h.

#include "notify-listen.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "../args.h"
#include "../errors.h"
#include "../fd-guard.h"

namespace lnlb {

namespace {

Napi::Value NotifyListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) ThrowErrno(env, ENAMETOOLONG, "check(path)", path);
  memcpy(addr.sun_path, path.data(), path.size());
  socklen_t length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace, as $NOTIFY_SOCKET writes it
  FdGuard sock(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) ThrowErrno(env, errno, "socket(AF_UNIX)", path);
  if (bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), length) < 0) ThrowErrno(env, errno, "bind(AF_UNIX)", path);
  return Napi::Number::New(env, sock.release());
}

}  // namespace

void RegisterNotifyListen(Napi::Env env, Napi::Object exports) {
  exports.Set("notifyListen", Napi::Function::New(env, NotifyListen, "notifyListen"));
}

}  // namespace lnlb
