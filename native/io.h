// Frame I/O. write() works on both TAP fds and bound packet sockets, so one path serves both.
#pragma once

#include <napi.h>

#include <errno.h>

namespace lnlb {

// A full queue (EAGAIN/EWOULDBLOCK) or a device queue that dropped the frame (ENOBUFS): the
// frame did not go out, and the fd is fine.
inline bool IsTransientSendError(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

// send, writeBatch, recv, pollIn, close.
void RegisterIo(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
