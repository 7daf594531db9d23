// AF_PACKET sockets: see packet-socket.h.

#include "packet-socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>

#include <vector>

#include "args.h"
#include "errors.h"
#include "fd-guard.h"
#include "ifctl.h"

namespace lnlb {

void SetSockOpt(Napi::Env env, int fd, int level, int opt, const void* value, socklen_t len, const char* syscall,
                const std::string& dev) {
  if (setsockopt(fd, level, opt, value, len) < 0) ThrowErrno(env, errno, syscall, dev);
}

void Drain(int fd) {
  char byte;
  while (recv(fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
}

namespace {

// Checks a program given as words (code, jt, jf, k per instruction) and attaches it:
// SO_ATTACH_FILTER on a socket that has one replaces it atomically (the kernel swaps the
// pointer under RCU), so no frame passes unfiltered in between.
void AttachFilter(Napi::Env env, int fd, Napi::Value filterValue, const std::string& dev) {
  auto words = TypedArg<uint32_t, napi_uint32_array>(env, filterValue, "filter", "Uint32Array");
  if (words.length == 0 || words.length % 4 != 0 || words.length / 4 > BPF_MAXINSNS)
    ThrowRange(env, "filter must hold 1..4096 instructions of 4 words (code, jt, jf, k)");
  std::vector<struct sock_filter> insns(words.length / 4);
  for (size_t i = 0; i < insns.size(); i++) {
    const uint32_t* w = words.data + 4 * i;
    if (w[0] > 0xffff || w[1] > 0xff || w[2] > 0xff) ThrowRange(env, "filter: code must fit 16 bits, jt/jf 8 bits");
    insns[i] = {static_cast<uint16_t>(w[0]), static_cast<uint8_t>(w[1]), static_cast<uint8_t>(w[2]), w[3]};
  }
  struct sock_fprog prog = {static_cast<unsigned short>(insns.size()), insns.data()};
  SetSockOpt(env, fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog, "setsockopt(SO_ATTACH_FILTER)", dev);
}

// attachFilter(fd, program): the socket's filter becomes `program`, in one step.
Napi::Value AttachFilterCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  AttachFilter(env, fd, info.Length() > 1 ? info[1] : env.Undefined(), "");
  return env.Undefined();
}

Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dev = StrArg(info, 0, "dev");
  Napi::Object opts = ObjArg(info, 1, "opts");
  int protocol = static_cast<int>(IntOpt(env, opts, "protocol", ETH_P_ALL, 0, 0xffff));
  bool promisc = BoolOpt(opts, "promisc", false);
  bool vnetHdr = BoolOpt(opts, "vnetHdr", false);
  bool ignoreOutgoing = BoolOpt(opts, "ignoreOutgoing", false);
  int64_t rcvBuf = IntOpt(env, opts, "rcvBuf", 0, 0, INT32_MAX);
  Napi::Value multicastValue = opts.Get("multicast");
  Napi::Value filterValue = opts.Get("filter");
  CheckIfName(env, dev, false);

  // Protocol 0: the socket is not hooked into the receive path until bind(), so no frame
  // slips in before the filter is attached.
  FdGuard fd(socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) ThrowErrno(env, errno, "socket(AF_PACKET)", dev);

  if (!filterValue.IsUndefined()) AttachFilter(env, fd.get(), filterValue, dev);
  int one = 1;
  if (vnetHdr)
    SetSockOpt(env, fd.get(), SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one, "setsockopt(PACKET_VNET_HDR)", dev);
  if (ignoreOutgoing)
    SetSockOpt(env, fd.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one,
               "setsockopt(PACKET_IGNORE_OUTGOING)", dev);
  if (rcvBuf > 0) {
    int size = static_cast<int>(rcvBuf);
    // FORCE goes past net.core.rmem_max when we have CAP_NET_ADMIN; otherwise take what
    // the sysctl allows.
    if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
      SetSockOpt(env, fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size, "setsockopt(SO_RCVBUF)", dev);
  }

  struct ifreq ifr = IfReq(env, dev);
  if (ioctl(fd.get(), SIOCGIFINDEX, &ifr) < 0) ThrowErrno(env, errno, "ioctl(SIOCGIFINDEX)", dev);
  int ifindex = ifr.ifr_ifindex;

  Drain(fd.get());
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(static_cast<uint16_t>(protocol));
  sll.sll_ifindex = ifindex;
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0)
    ThrowErrno(env, errno, "bind(AF_PACKET)", dev);

  // Memberships belong to the socket: the kernel drops them when it closes, so a crash
  // never leaves the device promiscuous.
  if (promisc) {
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = PACKET_MR_PROMISC;
    SetSockOpt(env, fd.get(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq,
               "setsockopt(PACKET_MR_PROMISC)", dev);
  }
  if (!multicastValue.IsUndefined()) {
    auto mac = TypedArg<uint8_t, napi_uint8_array>(env, multicastValue, "multicast", "Uint8Array");
    if (mac.length != ETH_ALEN) ThrowRange(env, "multicast must be a 6-byte MAC address");
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = PACKET_MR_MULTICAST;
    mreq.mr_alen = ETH_ALEN;
    memcpy(mreq.mr_address, mac.data, ETH_ALEN);
    SetSockOpt(env, fd.get(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq,
               "setsockopt(PACKET_MR_MULTICAST)", dev);
  }
  return Napi::Number::New(env, fd.release());
}

}  // namespace

void RegisterPacketSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen, "packetOpen"));
  exports.Set("attachFilter", Napi::Function::New(env, AttachFilterCall, "attachFilter"));
}

}  // namespace lnlb
