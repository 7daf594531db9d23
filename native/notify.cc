// sd_notify(3) without libsystemd: one datagram to the service manager's socket. See notify.h.

#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "fd-guard.h"

namespace lnlb {

namespace {

// notify(socketPath, message): false when the socket's queue is full (the message is dropped:
// the manager is not reading, and the daemon must not wait for it); throws on any other error.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "socketPath");
  std::string message = StrArg(info, 1, "message");
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  // A file system path, or '@' for a name in the abstract namespace (a NUL byte first), as
  // systemd writes $NOTIFY_SOCKET. Anything else (vsock:...) is not a unix socket.
  if (path.empty() || (path[0] != '/' && path[0] != '@')) ThrowErrno(env, EAFNOSUPPORT, "sd_notify", path);
  if (path.size() >= sizeof addr.sun_path) ThrowErrno(env, ENAMETOOLONG, "sd_notify", path);
  memcpy(addr.sun_path, path.data(), path.size());
  socklen_t length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  else length += 1;  // the path's NUL, as sd_notify sends it

  FdGuard sock(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) ThrowErrno(env, errno, "socket(AF_UNIX)", path);
  ssize_t n;
  do n = sendto(sock.get(), message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), length);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return Napi::Boolean::New(env, false);
  if (n < 0) ThrowErrno(env, errno, "sendto(NOTIFY_SOCKET)", path);
  return Napi::Boolean::New(env, true);
}

}  // namespace

void RegisterNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
}

}  // namespace lnlb
