// Frame I/O on TAP fds and packet sockets: see io.h.

#include "io.h"

#include <poll.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"
#include "packet-ring.h"

namespace lnlb {

namespace {

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto buf = BytesArg(info, 1, "buf");
  uint32_t offset = UintArg(info, 2, "offset");
  uint32_t length = UintArg(info, 3, "length");
  CheckSlice(env, buf.length, offset, length, "send");
  for (;;) {
    ssize_t n = write(fd, buf.data + offset, length);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    if (IsTransientSendError(errno)) return Napi::Number::New(env, 0);
    ThrowErrno(env, errno, "write", "");
  }
}

Napi::Value WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto buf = BytesArg(info, 1, "buf");
  auto offsets = WordsArg(info, 2, "offsets");
  auto lengths = WordsArg(info, 3, "lengths");
  uint32_t count = UintArg(info, 4, "count");
  if (count > offsets.length || count > lengths.length) ThrowRange(env, "writeBatch: count exceeds offsets/lengths");
  uint32_t written = 0;
  for (uint32_t i = 0; i < count; i++) {
    CheckSlice(env, buf.length, offsets.data[i], lengths.data[i], "writeBatch");
    ssize_t n;
    do n = write(fd, buf.data + offsets.data[i], lengths.data[i]);
    while (n < 0 && errno == EINTR);
    if (n >= 0) {
      written++;
      continue;
    }
    // A TAP answers EIO while down and EINVAL to a bad vnet header: drop that frame, keep
    // the batch going; the caller counts count - written as dropped.
    if (IsTransientSendError(errno) || errno == EIO || errno == EINVAL) continue;
    ThrowErrno(env, errno, "write", "");
  }
  return Napi::Number::New(env, written);
}

Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto buf = BytesArg(info, 1, "buf");
  uint32_t offset = UintArg(info, 2, "offset");
  uint32_t maxLength = UintArg(info, 3, "maxLength");
  CheckSlice(env, buf.length, offset, maxLength, "recv");
  for (;;) {
    ssize_t n = read(fd, buf.data + offset, maxLength);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowErrno(env, errno, "read", "");
  }
}

Napi::Value PollIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int32_t timeoutMs = IntArg(info, 1, "timeoutMs");
  struct pollfd pfd = {fd, POLLIN, 0};
  int rc;
  do rc = poll(&pfd, 1, timeoutMs);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(env, errno, "poll", "");
  if (pfd.revents & POLLNVAL) ThrowErrno(env, EBADF, "poll", "");
  // POLLERR/POLLHUP count as readable: the next read reports the error.
  return Napi::Boolean::New(env, rc > 0);
}

// Unmaps the ring if the fd has one (packet-ring.cc), then closes it.
void Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  CloseDroppingRing(env, fd);
}

}  // namespace

void RegisterIo(Napi::Env env, Napi::Object exports) {
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("writeBatch", Napi::Function::New(env, WriteBatch, "writeBatch"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
  exports.Set("pollIn", Napi::Function::New(env, PollIn, "pollIn"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace lnlb
