// AF_PACKET sockets bound to one device: classic BPF filter attached before any frame can
// arrive, optional virtio-net header, promiscuous and multicast memberships that the kernel
// drops with the socket.
#pragma once

#include <napi.h>
#include <sys/socket.h>

#include <string>

namespace lnlb {

// setsockopt, or throw with `syscall` and `dev` in the error.
void SetSockOpt(Napi::Env env, int fd, int level, int opt, const void* value, socklen_t len, const char* syscall,
                const std::string& dev);

// Discards whatever sits in the socket's receive queue (frames that came in before the
// filter or the ring were in place): they would be wrong, and a non-empty queue makes
// poll() report readable forever on a ring socket.
void Drain(int fd);

// packetOpen, attachFilter (replaces a socket's filter atomically).
void RegisterPacketSocket(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
