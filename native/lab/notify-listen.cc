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
  // The kernel then attaches the sender's credentials to every datagram, as systemd asks for
  // them: with NotifyAccess=main it takes a message only from the service's main process.
  int on = 1;
  if (setsockopt(sock.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) ThrowErrno(env, errno, "setsockopt(SO_PASSCRED)", path);
  if (bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), length) < 0) ThrowErrno(env, errno, "bind(AF_UNIX)", path);
  return Napi::Number::New(env, sock.release());
}

// notifyRecv(fd): the next datagram with its sender's pid, { pid, message }, or null when
// none is waiting.
Napi::Value NotifyRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  char data[4096];
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {data, sizeof data};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return env.Null();
  if (n < 0) ThrowErrno(env, errno, "recvmsg(AF_UNIX)");
  int pid = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      pid = cred.pid;
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", pid);
  out.Set("message", Napi::String::New(env, data, static_cast<size_t>(n)));
  return out;
}

}  // namespace

void RegisterNotifyListen(Napi::Env env, Napi::Object exports) {
  exports.Set("notifyListen", Napi::Function::New(env, NotifyListen, "notifyListen"));
  exports.Set("notifyRecv", Napi::Function::New(env, NotifyRecv, "notifyRecv"));
}

}  // namespace lnlb
