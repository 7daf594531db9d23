// lnlb native port: TAP devices, AF_PACKET sockets with a TPACKET_V2 or TPACKET_V3 RX ring,
// link ioctls. Everything is synchronous and fd-based so that a socket opened on the main
// thread can be read by a worker thread (fds and the ring table are process-wide).
//
// TPACKET_V3 ring (one mmap of blockCount x blockSize, shared with the kernel): frames are
// packed into blocks, and a block is handed over whole, when full or when the block timer
// (retireTimeoutMs, at least 1 ms) retires it. Cheap at high rates; but a lone frame waits
// for the timer, which adds up to a millisecond to every request at low rates.
//
//   block 0 (status USER: ours)       block 1 (status KERNEL: filling)    ...
//   +-------------------------------+ +----------------------------+
//   | tpacket_block_desc            | |                            |
//   |   block_status, num_pkts,     | |                            |
//   |   offset_to_first_pkt --+     | |                            |
//   | +-----------------------v---+ | |                            |
//   | | tpacket3_hdr (tp_mac,     | | |                            |
//   | |  tp_snaplen, tp_len,      | | |                            |
//   | |  tp_next_offset --------+ | | |                            |
//   | | sockaddr_ll (pkttype)   | | | |                            |
//   | | [virtio_net_hdr, 10 B]  | <- tp_mac - 10, only with PACKET_VNET_HDR
//   | | frame bytes             | <- tp_mac, tp_snaplen bytes
//   | +-------------------------v-+ | |                            |
//   | | next frame ...            | | |                            |
//   +-------------------------------+ +----------------------------+
//
// TPACKET_V2 ring: frameCount slots of frameSize bytes (packed into page-multiple blocks that
// the kernel allocates separately), each handed over on its own (tp_status & TP_STATUS_USER)
// the moment the kernel has filled it: no timer, a lone frame is readable at once.
//
//   slot i (USER: ours)               slot i+1 (KERNEL: free)        slot i+2 ...
//   +------------------------------+  +------------------------------+
//   | tpacket2_hdr (tp_status,     |  |                              |
//   |   tp_len, tp_snaplen, tp_mac)|  |                              |
//   | sockaddr_ll (pkttype)        |  |                              |
//   | [virtio_net_hdr, 10 B]       | <- tp_mac - 10, only with PACKET_VNET_HDR
//   | frame bytes                  | <- tp_mac: 80 + 10 - 14 = 76 with the vnet header, so a
//   +------------------------------+    slot holds frameSize - 76 bytes of frame
//
// A frame larger than a slot (a 64 KiB GSO frame) gets a truncated copy in its slot, flagged
// TP_STATUS_COPY, and is also queued whole on the socket's receive queue (PACKET_COPY_THRESH;
// only while the queue is under SO_RCVBUF). The kernel claims the slot and queues the skb in
// one critical section (sk_receive_queue.lock), so the queued skbs are exactly the COPY slots,
// in ring order: reading slots in order, each COPY slot takes the next skb with recv(), which
// on a PACKET_VNET_HDR socket brings its virtio-net header too. A slot cut short without
// COPY (the queue was full) is delivered truncated.
//
// ringRead copies whole frames (either kind of ring) into the caller's buffer (often a view
// over a SharedArrayBuffer), each entry starting 8-aligned, and describes them in `meta`:
//
//   dst:  ...|vnet hdr|frame bytes ......|pad|vnet hdr|frame bytes ...|pad|...
//             ^ meta[4i]                      ^ meta[4(i+1)]
//   meta[4i..4i+3] = [offset in dst, copied length (incl. vnet hdr), tp_len,
//                     pkttype | 0x100 if truncated (copied less than tp_len)]
//
// A block (V3) or slot (V2) goes back to the kernel only when its frames were copied, so a
// small dst just means more calls; the read position lives in the ring table.

#include <napi.h>
#include <uv.h>

#include "flock.h"
#include "hmac.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// struct virtio_net_hdr (linux/virtio_net.h is not valid C++: a field is named `class`).
constexpr size_t kVnetHdrLen = 10;
constexpr uint32_t kMetaTruncated = 0x100;
// A V2 reader that read this many frames since it last waited, less than kBusyWindowNs ago,
// is on a busy wire: it holds off (sleeps) instead of poll()ing, see RingRead.
constexpr uint32_t kBusyFrames = 8;
constexpr uint64_t kBusyWindowNs = 1000000;

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// ---------------------------------------------------------------------------------------
// Errors: every failed system call becomes a JS Error carrying errno name and syscall, so
// the TypeScript side can turn it into an LnlbError that says what to do.

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall,
                             const std::string& device = std::string()) {
  std::string message = syscall;
  if (!device.empty()) message += " on " + device;
  const char* desc = strerrordesc_np(err);  // thread-safe, unlike strerror()
  message += std::string(": ") + (desc != nullptr ? desc : "unknown error") + " (" +
             ErrnoName(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("errno", ErrnoName(err));
  obj.Set("errnoNumber", Napi::Number::New(env, err));
  obj.Set("syscall", syscall);
  if (!device.empty()) obj.Set("device", device);
  throw error;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

// Closes an fd on scope exit unless released: a half-configured socket must not leak.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// ---------------------------------------------------------------------------------------
// Argument helpers. Wrong types are programming errors (TypeError/RangeError, no errno).

int32_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t UintArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  int64_t v = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Int64Value() : -1;
  if (v < 0 || v > UINT32_MAX) ThrowRange(info.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<uint32_t>(v);
}

std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Object ObjArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) ThrowType(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

template <typename T, napi_typedarray_type kType>
struct Span {
  T* data;
  size_t length;  // in elements
};

template <typename T, napi_typedarray_type kType>
Span<T, kType> TypedArg(Napi::Env env, Napi::Value value, const char* name, const char* typeName) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kType)
    ThrowType(env, std::string(name) + " must be a " + typeName);
  auto array = value.As<Napi::TypedArrayOf<T>>();
  return {array.Data(), array.ElementLength()};
}

Span<uint8_t, napi_uint8_array> BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return TypedArg<uint8_t, napi_uint8_array>(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name,
                                             "Uint8Array");
}

Span<uint32_t, napi_uint32_array> WordsArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return TypedArg<uint32_t, napi_uint32_array>(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name,
                                               "Uint32Array");
}

bool BoolOpt(Napi::Object opts, const char* key, bool fallback) {
  Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? fallback : v.ToBoolean().Value();
}

int64_t IntOpt(Napi::Env env, Napi::Object opts, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) ThrowType(env, std::string("option ") + key + " must be a number");
  int64_t n = v.As<Napi::Number>().Int64Value();
  if (n < min || n > max) ThrowRange(env, std::string("option ") + key + " out of range");
  return n;
}

// Range check for (offset, length) inside a buffer, done in 64 bits so it cannot wrap.
void CheckSlice(Napi::Env env, size_t bufLength, uint64_t offset, uint64_t length, const char* what) {
  if (offset + length > bufLength) ThrowRange(env, std::string(what) + ": offset + length exceed the buffer");
}

// ---------------------------------------------------------------------------------------
// Interface changes go through a throw-away AF_INET datagram socket (ioctl), reads through
// rtnetlink; both live in the calling thread's network namespace.

void CheckIfName(Napi::Env env, const std::string& name, bool allowEmpty) {
  if (name.size() >= IFNAMSIZ) ThrowErrno(env, ENAMETOOLONG, "check(ifname)", name);
  if (name.empty() && !allowEmpty) ThrowErrno(env, EINVAL, "check(ifname)", name);
}

struct ifreq IfReq(Napi::Env env, const std::string& name) {
  CheckIfName(env, name, false);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  return ifr;
}

int IoctlSocket(Napi::Env env, const std::string& name) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "socket(AF_INET)", name);
  return fd;
}

void Ioctl(Napi::Env env, int fd, unsigned long request, struct ifreq* ifr, const char* syscall) {
  if (ioctl(fd, request, ifr) < 0) ThrowErrno(env, errno, syscall, ifr->ifr_name);
}

// ifInfo asks rtnetlink (RTM_GETLINK) rather than SIOCGIFFLAGS: the ioctl hides both
// carrier (IFF_LOWER_UP does not fit its 16 bits) and promiscuity taken by packet-socket
// memberships (it reports only the flag set by `ip link set promisc on`).
constexpr unsigned kIffLowerUp = 1u << 16;

Napi::Value IfInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  CheckIfName(env, name, false);
  FdGuard sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (sock.get() < 0) ThrowErrno(env, errno, "socket(AF_NETLINK)", name);

  struct {
    struct nlmsghdr header;
    struct ifinfomsg link;
    char attrs[RTA_SPACE(IFNAMSIZ) + RTA_SPACE(sizeof(uint32_t))];
  } req;
  memset(&req, 0, sizeof req);
  req.header.nlmsg_type = RTM_GETLINK;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.header.nlmsg_seq = 1;
  req.link.ifi_family = AF_UNSPEC;
  auto* attr = reinterpret_cast<struct rtattr*>(req.attrs);
  attr->rta_type = IFLA_IFNAME;
  attr->rta_len = RTA_LENGTH(name.size() + 1);
  memcpy(RTA_DATA(attr), name.c_str(), name.size() + 1);
  auto* mask = reinterpret_cast<struct rtattr*>(req.attrs + RTA_ALIGN(attr->rta_len));
  mask->rta_type = IFLA_EXT_MASK;  // skip the statistics: smaller answer
  mask->rta_len = RTA_LENGTH(sizeof(uint32_t));
  uint32_t skipStats = RTEXT_FILTER_SKIP_STATS;
  memcpy(RTA_DATA(mask), &skipStats, sizeof skipStats);
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)) + RTA_ALIGN(attr->rta_len) + mask->rta_len;
  if (send(sock.get(), &req, req.header.nlmsg_len, 0) < 0) ThrowErrno(env, errno, "send(RTM_GETLINK)", name);

  thread_local std::vector<char> answer(1 << 16);
  ssize_t n;
  do n = recv(sock.get(), answer.data(), answer.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, "recv(RTM_GETLINK)", name);
  auto* header = reinterpret_cast<struct nlmsghdr*>(answer.data());
  if (!NLMSG_OK(header, static_cast<size_t>(n))) ThrowErrno(env, EPROTO, "recv(RTM_GETLINK)", name);
  if (header->nlmsg_type == NLMSG_ERROR) {
    int err = -reinterpret_cast<struct nlmsgerr*>(NLMSG_DATA(header))->error;
    ThrowErrno(env, err != 0 ? err : EPROTO, "netlink(RTM_GETLINK)", name);
  }
  if (header->nlmsg_type != RTM_NEWLINK) ThrowErrno(env, EPROTO, "recv(RTM_GETLINK)", name);

  auto* link = reinterpret_cast<struct ifinfomsg*>(NLMSG_DATA(header));
  Napi::Uint8Array mac = Napi::Uint8Array::New(env, ETH_ALEN);
  memset(mac.Data(), 0, ETH_ALEN);
  uint32_t mtu = 0, promiscuity = 0;
  int attrsLen = static_cast<int>(IFLA_PAYLOAD(header));
  for (struct rtattr* a = IFLA_RTA(link); RTA_OK(a, attrsLen); a = RTA_NEXT(a, attrsLen)) {
    size_t len = RTA_PAYLOAD(a);
    if (a->rta_type == IFLA_ADDRESS && len == ETH_ALEN) memcpy(mac.Data(), RTA_DATA(a), ETH_ALEN);
    else if (a->rta_type == IFLA_MTU && len == sizeof(uint32_t)) memcpy(&mtu, RTA_DATA(a), sizeof mtu);
    else if (a->rta_type == IFLA_PROMISCUITY && len == sizeof(uint32_t)) memcpy(&promiscuity, RTA_DATA(a), sizeof promiscuity);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("index", link->ifi_index);
  out.Set("mac", mac);
  out.Set("mtu", mtu);
  out.Set("up", (link->ifi_flags & IFF_UP) != 0);
  out.Set("running", (link->ifi_flags & kIffLowerUp) != 0);
  out.Set("promisc", promiscuity > 0 || (link->ifi_flags & IFF_PROMISC) != 0);
  return out;
}

void IfSetMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  auto mac = BytesArg(info, 1, "mac");
  if (mac.length != ETH_ALEN) ThrowRange(env, "mac must be 6 bytes");
  struct ifreq ifr = IfReq(env, name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac.data, ETH_ALEN);
  FdGuard sock(IoctlSocket(env, name));
  Ioctl(env, sock.get(), SIOCSIFHWADDR, &ifr, "ioctl(SIOCSIFHWADDR)");
}

void IfSetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  bool up = info.Length() > 1 && info[1].ToBoolean().Value();
  struct ifreq ifr = IfReq(env, name);
  FdGuard sock(IoctlSocket(env, name));
  Ioctl(env, sock.get(), SIOCGIFFLAGS, &ifr, "ioctl(SIOCGIFFLAGS)");
  if (up) ifr.ifr_flags |= IFF_UP;
  else ifr.ifr_flags &= ~IFF_UP;
  Ioctl(env, sock.get(), SIOCSIFFLAGS, &ifr, "ioctl(SIOCSIFFLAGS)");
}

void IfSetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  struct ifreq ifr = IfReq(env, name);
  ifr.ifr_mtu = IntArg(info, 1, "mtu");
  FdGuard sock(IoctlSocket(env, name));
  Ioctl(env, sock.get(), SIOCSIFMTU, &ifr, "ioctl(SIOCSIFMTU)");
}

void IfSetIPv4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  std::string addr = StrArg(info, 1, "addr");
  int32_t prefixLen = IntArg(info, 2, "prefixLen");
  struct ifreq ifr = IfReq(env, name);
  auto* sin = reinterpret_cast<struct sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr.c_str(), &sin->sin_addr) != 1) ThrowErrno(env, EINVAL, "inet_pton", name);
  if (prefixLen < 0 || prefixLen > 32) ThrowErrno(env, EINVAL, "check(prefixLen)", name);
  FdGuard sock(IoctlSocket(env, name));
  Ioctl(env, sock.get(), SIOCSIFADDR, &ifr, "ioctl(SIOCSIFADDR)");
  sin->sin_addr.s_addr = htonl(prefixLen == 0 ? 0 : ~uint32_t(0) << (32 - prefixLen));
  Ioctl(env, sock.get(), SIOCSIFNETMASK, &ifr, "ioctl(SIOCSIFNETMASK)");
}

// ---------------------------------------------------------------------------------------
// TAP

Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  bool vnetHdr = BoolOpt(ObjArg(info, 1, "opts"), "vnetHdr", false);
  CheckIfName(env, name, true);  // empty: the kernel picks tapN

  FdGuard fd(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno(env, errno, "open(/dev/net/tun)", name);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  // Not TUNSETPERSIST: the device dies with the fd, which is our cleanup after kill -9.
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0);
  if (ioctl(fd.get(), TUNSETIFF, &ifr) < 0) ThrowErrno(env, errno, "ioctl(TUNSETIFF)", name);
  std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  if (vnetHdr) {
    int size = kVnetHdrLen;
    if (ioctl(fd.get(), TUNSETVNETHDRSZ, &size) < 0) ThrowErrno(env, errno, "ioctl(TUNSETVNETHDRSZ)", actual);
    // Lets the host stack hand us partial-checksum and TSO frames (with their vnet header)
    // instead of finishing the work in software before the read.
    unsigned long offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd.get(), TUNSETOFFLOAD, offloads) < 0) ThrowErrno(env, errno, "ioctl(TUNSETOFFLOAD)", actual);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd.release());
  out.Set("name", actual);
  return out;
}

// ---------------------------------------------------------------------------------------
// AF_PACKET

void SetSockOpt(Napi::Env env, int fd, int level, int opt, const void* value, socklen_t len, const char* syscall,
                const std::string& dev) {
  if (setsockopt(fd, level, opt, value, len) < 0) ThrowErrno(env, errno, syscall, dev);
}

// Discards whatever sits in the socket's receive queue (frames that came in before the
// filter or the ring were in place): they would be wrong, and a non-empty queue makes
// poll() report readable forever on a ring socket.
void Drain(int fd) {
  char byte;
  while (recv(fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
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

  if (!filterValue.IsUndefined()) {
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
    SetSockOpt(env, fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog, "setsockopt(SO_ATTACH_FILTER)", dev);
  }
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

// ---------------------------------------------------------------------------------------
// RX ring table (TPACKET_V2 or V3). Process-wide because the socket is opened on one thread
// and read on another; the fd number is the key.

struct Ring {
  int fd = -1;
  int version = TPACKET_V3;
  uint8_t* map = nullptr;
  size_t mapSize = 0;
  uint32_t blockSize = 0;
  uint32_t blockCount = 0;
  size_t vnetLen = 0;  // bytes of virtio_net_hdr before each frame (0 or 10)
  // V2 geometry: frames never straddle blocks, so slot i sits in block i / framesPerBlock.
  uint32_t frameSize = 0;
  uint32_t framesPerBlock = 0;
  uint32_t frameCount = 0;

  std::mutex readMu;  // one reader at a time; guards the position below
  // V3: the block the reader is in (or waits for) and the position inside it.
  uint32_t block = 0;
  bool inBlock = false;      // block was seen retired and its frame count taken
  uint32_t framesLeft = 0;   // frames of `block` not yet copied
  uint32_t frameOffset = 0;  // offset of the next frame inside `block`
  // V2: the next slot to read.
  uint32_t slot = 0;
  // A socket error (ENETDOWN) that a recv() of a COPY frame took instead of poll(): the
  // next ringRead reports it, so it still reaches the reader once.
  int pendingError = 0;
  // V2 hold-off (see RingRead): frames read since the reader last waited, when that was, and
  // how long to sleep instead of poll()ing on a busy wire.
  uint32_t sinceWait = 0;
  uint64_t waitedAtNs = 0;
  uint32_t holdOffUs = 0;

  std::mutex statsMu;  // PACKET_STATISTICS resets on read, so the totals live here
  uint64_t packets = 0, drops = 0, freezes = 0;

  ~Ring() {
    if (map != nullptr) munmap(map, mapSize);
  }

  uint8_t* Slot(uint32_t i) const {
    return map + size_t(i / framesPerBlock) * blockSize + size_t(i % framesPerBlock) * frameSize;
  }
};

std::mutex g_ringsMu;
std::unordered_map<int, std::shared_ptr<Ring>> g_rings;

// The shared_ptr keeps the mapping alive for a reader on another thread even if close()
// runs concurrently; the read then fails on the closed fd instead of touching freed memory.
std::shared_ptr<Ring> FindRing(Napi::Env env, int fd, const char* syscall) {
  std::lock_guard<std::mutex> lock(g_ringsMu);
  auto it = g_rings.find(fd);
  if (it == g_rings.end()) ThrowErrno(env, EBADFD, syscall);  // no ring on this fd
  return it->second;
}

// Blocks of a V2 ring: the smallest page multiple that holds one frame, doubled up to 64 KiB
// (fewer, larger allocations for the kernel; still order-4 pages at most for 2 KiB frames).
uint32_t V2BlockSize(uint32_t frameSize, long page) {
  uint64_t block = (uint64_t(frameSize) + page - 1) / page * page;
  while (block < (64u << 10)) block *= 2;
  return static_cast<uint32_t>(block);
}

void RingOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  Napi::Object opts = ObjArg(info, 1, "opts");
  long page = sysconf(_SC_PAGESIZE);
  int version = static_cast<int>(IntOpt(env, opts, "version", 3, 2, 3)) == 2 ? TPACKET_V2 : TPACKET_V3;

  // tpacket_req3 starts with the four fields of tpacket_req, which is what V2 takes.
  struct tpacket_req3 req;
  memset(&req, 0, sizeof req);
  uint32_t framesPerBlock = 0;
  int64_t copyQueueBytes = 0;
  uint32_t holdOffUs = 0;
  if (version == TPACKET_V2) {
    int64_t frameSize = IntOpt(env, opts, "frameSize", 2048, 256, 1 << 17);
    int64_t frameCount = IntOpt(env, opts, "frameCount", 32768, 1, 1 << 22);
    copyQueueBytes = IntOpt(env, opts, "copyQueueBytes", 8 << 20, 0, INT32_MAX);
    holdOffUs = static_cast<uint32_t>(IntOpt(env, opts, "holdOffUs", 500, 0, 100000));
    if (frameSize % TPACKET_ALIGNMENT != 0) ThrowRange(env, "frameSize must be a multiple of 16 (TPACKET_ALIGNMENT)");
    req.tp_frame_size = static_cast<unsigned>(frameSize);
    req.tp_block_size = V2BlockSize(req.tp_frame_size, page);
    framesPerBlock = req.tp_block_size / req.tp_frame_size;
    // Whole blocks: the count is rounded up to a multiple of framesPerBlock.
    req.tp_block_nr = static_cast<unsigned>((frameCount + framesPerBlock - 1) / framesPerBlock);
    req.tp_frame_nr = req.tp_block_nr * framesPerBlock;
  } else {
    int64_t blockSize = IntOpt(env, opts, "blockSize", 1 << 20, page, 1 << 30);
    int64_t blockCount = IntOpt(env, opts, "blockCount", 32, 1, 1 << 16);
    int64_t retireMs = IntOpt(env, opts, "retireTimeoutMs", 1, 0, 60000);
    if (blockSize % page != 0) ThrowRange(env, "blockSize must be a multiple of the page size");
    // V3 frames have variable size and may span up to a whole block; tp_frame_size only has
    // to be a valid divisor for the kernel's bookkeeping.
    const uint32_t frameSize = 2048;
    req.tp_block_size = static_cast<unsigned>(blockSize);
    req.tp_block_nr = static_cast<unsigned>(blockCount);
    req.tp_frame_size = frameSize;
    req.tp_frame_nr = static_cast<unsigned>(blockSize / frameSize * blockCount);
    req.tp_retire_blk_tov = static_cast<unsigned>(retireMs);
  }

  std::lock_guard<std::mutex> lock(g_ringsMu);
  if (g_rings.count(fd) != 0) ThrowErrno(env, EBUSY, "ringOpen");  // one ring per socket

  SetSockOpt(env, fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version, "setsockopt(PACKET_VERSION)", "");
  if (version == TPACKET_V2 && copyQueueBytes > 0) {
    // Room on the receive queue for frames larger than a slot (GSO frames of up to 64 KiB);
    // FORCE goes past net.core.rmem_max when we have CAP_NET_ADMIN.
    int size = static_cast<int>(copyQueueBytes);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
      SetSockOpt(env, fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size, "setsockopt(SO_RCVBUF)", "");
  }
  socklen_t reqLen = version == TPACKET_V2 ? sizeof(struct tpacket_req) : sizeof req;
  SetSockOpt(env, fd, SOL_PACKET, PACKET_RX_RING, &req, reqLen, "setsockopt(PACKET_RX_RING)", "");

  auto ring = std::make_shared<Ring>();
  ring->fd = fd;
  ring->version = version;
  ring->blockSize = req.tp_block_size;
  ring->blockCount = req.tp_block_nr;
  ring->frameSize = req.tp_frame_size;
  ring->framesPerBlock = framesPerBlock;
  ring->frameCount = req.tp_frame_nr;
  ring->holdOffUs = holdOffUs;
  ring->mapSize = size_t(req.tp_block_size) * req.tp_block_nr;
  void* map = mmap(nullptr, ring->mapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) ThrowErrno(env, errno, "mmap(PACKET_RX_RING)", "");
  ring->map = static_cast<uint8_t*>(map);
  int vnet = 0;
  socklen_t len = sizeof vnet;
  if (getsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &vnet, &len) == 0 && vnet != 0) ring->vnetLen = kVnetHdrLen;
  // The ring is in place, so from here on only COPY frames reach the receive queue; what sits
  // there now came before the ring. The copy path starts only after the drain: every skb it
  // queues then belongs to a COPY slot, in order, and none is lost to the drain.
  Drain(fd);
  if (version == TPACKET_V2 && copyQueueBytes > 0) {
    int on = 1;
    SetSockOpt(env, fd, SOL_PACKET, PACKET_COPY_THRESH, &on, sizeof on, "setsockopt(PACKET_COPY_THRESH)", "");
  }
  g_rings.emplace(fd, std::move(ring));
}

// Writes one meta row.
inline void PutMeta(uint32_t* m, size_t at, size_t copied, uint32_t wireLength, uint32_t pkttype, bool truncated) {
  m[0] = static_cast<uint32_t>(at);
  m[1] = static_cast<uint32_t>(copied);
  m[2] = wireLength;
  m[3] = pkttype | (truncated ? kMetaTruncated : 0);
}

void ReleaseBlock(Ring& r, struct tpacket_block_desc* desc) {
  __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  r.inBlock = false;
  r.block = (r.block + 1) % r.blockCount;
}

// V3: copies frames of retired blocks in ring order. Sets *noRoom when a frame is ready but
// does not fit.
uint32_t CopyFramesV3(Ring& r, uint8_t* dst, size_t offset, size_t end, uint32_t* meta, uint32_t maxFrames,
                      bool* noRoom) {
  uint32_t count = 0;
  while (count < maxFrames) {
    uint8_t* base = r.map + size_t(r.block) * r.blockSize;
    auto* desc = reinterpret_cast<struct tpacket_block_desc*>(base);
    if (!r.inBlock) {
      uint32_t status = __atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
      if ((status & TP_STATUS_USER) == 0) break;
      r.inBlock = true;
      r.framesLeft = desc->hdr.bh1.num_pkts;
      r.frameOffset = desc->hdr.bh1.offset_to_first_pkt;
      if (r.framesLeft == 0) {
        ReleaseBlock(r, desc);
        continue;
      }
    }
    uint8_t* frame = base + r.frameOffset;
    auto* hdr = reinterpret_cast<struct tpacket3_hdr*>(frame);
    size_t at = (offset + 7) & ~size_t(7);
    size_t copyLen = r.vnetLen + hdr->tp_snaplen;
    if (at + copyLen > end) {
      *noRoom = true;
      break;
    }
    memcpy(dst + at, frame + hdr->tp_mac - r.vnetLen, copyLen);
    auto* sll = reinterpret_cast<struct sockaddr_ll*>(frame + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
    PutMeta(meta + 4 * count, at, copyLen, hdr->tp_len, sll->sll_pkttype, hdr->tp_snaplen < hdr->tp_len);
    offset = at + copyLen;
    count++;
    r.frameOffset += hdr->tp_next_offset;
    if (--r.framesLeft == 0) ReleaseBlock(r, desc);
  }
  return count;
}

// V2, a COPY slot: takes the whole frame (vnet header first) from the receive queue into
// `to`, which has room for exactly `want` bytes. Returns false when the queued frame is not
// there or not this slot's (then the slot's truncated copy stands in).
bool RecvCopied(Ring& r, uint8_t* to, size_t want) {
  for (int attempt = 0; attempt < 4; attempt++) {
    // MSG_TRUNC: the frame's real length even if it were longer than `want`.
    ssize_t n = recv(r.fd, to, want, MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0) {
      if (static_cast<size_t>(n) == want) return true;
      // Not this slot's frame: the queue and the slots no longer pair up (never seen; it
      // would take a kernel that changed the copy path). Start over from an empty queue:
      // the COPY slots whose frames are dropped here arrive truncated, and counted so.
      Drain(r.fd);
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    // recv() reports a pending socket error (ENETDOWN) before the queue, and clears it: keep
    // it for the caller and try again for the frame.
    if (r.pendingError == 0) r.pendingError = errno;
  }
  return false;
}

// V2: copies filled slots in ring order. Sets *noRoom when a frame is ready but does not fit.
uint32_t CopyFramesV2(Ring& r, uint8_t* dst, size_t offset, size_t end, uint32_t* meta, uint32_t maxFrames,
                      bool* noRoom) {
  uint32_t count = 0;
  while (count < maxFrames) {
    uint8_t* frame = r.Slot(r.slot);
    auto* hdr = reinterpret_cast<struct tpacket2_hdr*>(frame);
    uint32_t status = __atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) break;
    size_t at = (offset + 7) & ~size_t(7);
    bool copied = (status & TP_STATUS_COPY) != 0;
    // A COPY frame needs room for all of it (it comes from the queue), the others for what
    // the slot holds.
    size_t copyLen = r.vnetLen + (copied ? hdr->tp_len : hdr->tp_snaplen);
    if (at + copyLen > end) {
      *noRoom = true;
      break;
    }
    bool whole = copied && RecvCopied(r, dst + at, copyLen);
    if (!whole) {
      copyLen = r.vnetLen + hdr->tp_snaplen;
      memcpy(dst + at, frame + hdr->tp_mac - r.vnetLen, copyLen);
    }
    auto* sll = reinterpret_cast<struct sockaddr_ll*>(frame + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
    PutMeta(meta + 4 * count, at, copyLen, hdr->tp_len, sll->sll_pkttype, !whole && hdr->tp_snaplen < hdr->tp_len);
    offset = at + copyLen;
    count++;
    __atomic_store_n(&hdr->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r.slot = r.slot + 1 == r.frameCount ? 0 : r.slot + 1;
  }
  return count;
}

uint32_t CopyFrames(Ring& r, uint8_t* dst, size_t offset, size_t end, uint32_t* meta, uint32_t maxFrames,
                    bool* noRoom) {
  *noRoom = false;
  return r.version == TPACKET_V2 ? CopyFramesV2(r, dst, offset, end, meta, maxFrames, noRoom)
                                 : CopyFramesV3(r, dst, offset, end, meta, maxFrames, noRoom);
}

// Turns a POLLERR on a packet socket into the pending socket error (ENETDOWN when the
// device went down or away) so the reader learns about it instead of spinning.
void ThrowSocketError(Napi::Env env, int fd, const char* syscall) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) ThrowErrno(env, err, syscall, "");
}

// Reports (once, at the start of the next call) a socket error that a recv() in CopyFramesV2
// took, so it reaches the reader like a POLLERR would. Called with readMu held.
void ThrowPendingError(Napi::Env env, Ring& r) {
  int err = r.pendingError;
  if (err == 0) return;
  r.pendingError = 0;
  ThrowErrno(env, err, "recv(PACKET_COPY_THRESH)", "");
}

Napi::Value RingRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto dst = BytesArg(info, 1, "dst");
  uint32_t dstOffset = UintArg(info, 2, "dstOffset");
  uint32_t dstEnd = UintArg(info, 3, "dstEnd");
  auto meta = WordsArg(info, 4, "meta");
  uint32_t maxFrames = UintArg(info, 5, "maxFrames");
  int32_t timeoutMs = IntArg(info, 6, "timeoutMs");
  if (dstEnd > dst.length || dstOffset > dstEnd) ThrowRange(env, "ringRead: need dstOffset <= dstEnd <= dst.length");
  if (maxFrames > meta.length / 4) maxFrames = static_cast<uint32_t>(meta.length / 4);
  std::shared_ptr<Ring> ring = FindRing(env, fd, "ringRead");

  bool noRoom = false;
  uint32_t count;
  bool busy;
  {
    std::lock_guard<std::mutex> lock(ring->readMu);
    ThrowPendingError(env, *ring);
    count = CopyFrames(*ring, dst.data, dstOffset, dstEnd, meta.data, maxFrames, &noRoom);
    ring->sinceWait += count;
    busy = count == 0 && ring->holdOffUs > 0 && ring->sinceWait >= kBusyFrames &&
           MonotonicNs() - ring->waitedAtNs < kBusyWindowNs;
  }
  if (count > 0 || noRoom || timeoutMs <= 0 || maxFrames == 0) return Napi::Number::New(env, count);

  // A V2 ring wakes a reader blocked in poll() for every frame, and on a busy wire those
  // wake-ups cost more than the frames (the kernel's receive path pays for them: in
  // bench/wire.ts a 64-byte flood fell from 310k to 120k frames/s). So, interrupt moderation
  // as NAPI does it: a reader that read kBusyFrames or more since it last waited (within the
  // last millisecond) sleeps holdOffUs instead, and frames pile up into one batch without
  // waking anyone; a reader on a quiet wire (a lone request) polls and is woken by the very
  // next frame. V3 holds every frame up to 1 ms; this holds only those of a busy wire.
  if (busy) {
    uint64_t us = std::min<uint64_t>(ring->holdOffUs, uint64_t(timeoutMs) * 1000);
    struct timespec pause = {static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(ring->readMu);
    ring->waitedAtNs = MonotonicNs();
    count = CopyFrames(*ring, dst.data, dstOffset, dstEnd, meta.data, maxFrames, &noRoom);
    ring->sinceWait = count;
    if (count > 0 || noRoom) return Napi::Number::New(env, count);
  }

  struct pollfd pfd = {fd, POLLIN | POLLERR, 0};
  int rc;
  do rc = poll(&pfd, 1, timeoutMs);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(env, errno, "poll", "");
  if (pfd.revents & POLLNVAL) ThrowErrno(env, EBADF, "poll", "");
  if (pfd.revents & POLLERR) ThrowSocketError(env, fd, "poll(POLLERR)");
  std::lock_guard<std::mutex> lock(ring->readMu);
  ring->waitedAtNs = MonotonicNs();
  count = CopyFrames(*ring, dst.data, dstOffset, dstEnd, meta.data, maxFrames, &noRoom);
  ring->sinceWait = count;
  return Napi::Number::New(env, count);
}

Napi::Value RingStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  std::shared_ptr<Ring> ring = FindRing(env, fd, "ringStats");
  struct tpacket_stats_v3 st;
  memset(&st, 0, sizeof st);
  socklen_t len = sizeof st;
  std::lock_guard<std::mutex> lock(ring->statsMu);
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
    ThrowErrno(env, errno, "getsockopt(PACKET_STATISTICS)", "");
  ring->packets += st.tp_packets;
  ring->drops += st.tp_drops;
  ring->freezes += st.tp_freeze_q_cnt;
  Napi::Object out = Napi::Object::New(env);
  out.Set("packets", static_cast<double>(ring->packets));
  out.Set("drops", static_cast<double>(ring->drops));
  out.Set("freezes", static_cast<double>(ring->freezes));
  return out;
}

// ---------------------------------------------------------------------------------------
// Frame I/O. write() works on both TAP fds and bound packet sockets, so one path serves both.

bool IsTransientSendError(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

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

void Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  std::shared_ptr<Ring> ring;
  {
    std::lock_guard<std::mutex> lock(g_ringsMu);
    auto it = g_rings.find(fd);
    if (it != g_rings.end()) {
      ring = std::move(it->second);
      g_rings.erase(it);
    }
    // Closed under the table lock so that a new ring on a reused fd number cannot be
    // registered between the erase and the close.
    if (::close(fd) < 0 && errno != EINTR) ThrowErrno(env, errno, "close", "");
  }
  // `ring` unmaps here, or later when a concurrent reader drops its reference.
}

// ---------------------------------------------------------------------------------------
// Traffic generator for benchmarks: count copies of one frame with the IPv4 source address
// walking through sourceCount values, so the receiver sees many flows.

uint16_t Ipv4HeaderChecksum(const uint8_t* header, size_t length) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2) sum += (uint32_t(header[i]) << 8) | header[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

double NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

Napi::Value SendBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto buf = BytesArg(info, 1, "buf");
  uint32_t offset = UintArg(info, 2, "offset");
  uint32_t length = UintArg(info, 3, "length");
  uint32_t count = UintArg(info, 4, "count");
  Napi::Object opts = ObjArg(info, 5, "opts");
  CheckSlice(env, buf.length, offset, length, "sendBurst");
  size_t ip = static_cast<size_t>(IntOpt(env, opts, "ipv4Offset", 14, 0, 65535));
  uint32_t sourceCount = static_cast<uint32_t>(IntOpt(env, opts, "sourceCount", 1, 1, 65536));
  if (ip + 20 > length) ThrowRange(env, "sendBurst: ipv4Offset + 20 exceeds the frame");
  size_t ihl = size_t(buf.data[offset + ip] & 0x0f) * 4;
  if (ihl < 20 || ip + ihl > length) ThrowRange(env, "sendBurst: bad IPv4 header length");

  // One copy per call (the caller's buffer may be shared and must stay untouched).
  thread_local std::vector<uint8_t> frame;
  frame.assign(buf.data + offset, buf.data + offset + length);
  uint8_t* header = frame.data() + ip;
  const uint32_t baseSource = (uint32_t(header[14]) << 8) | header[15];
  double stuckSince = 0;
  uint32_t sent = 0;
  for (uint32_t k = 0; k < count; k++) {
    uint32_t source = (baseSource + k % sourceCount) & 0xffff;
    header[14] = static_cast<uint8_t>(source >> 8);
    header[15] = static_cast<uint8_t>(source);
    header[10] = header[11] = 0;
    uint16_t sum = Ipv4HeaderChecksum(header, ihl);
    header[10] = static_cast<uint8_t>(sum >> 8);
    header[11] = static_cast<uint8_t>(sum);
    for (;;) {
      if (write(fd, frame.data(), length) >= 0) {
        sent++;
        stuckSince = 0;
        break;
      }
      int err = errno;
      if (err == EINTR) continue;
      if (!IsTransientSendError(err)) ThrowErrno(env, err, "write", "");
      // A queue that stays full for a second means the device stopped taking frames
      // (peer down): report what went out rather than spin forever.
      double now = NowSeconds();
      if (stuckSince == 0) stuckSince = now;
      else if (now - stuckSince > 1.0) return Napi::Number::New(env, sent);
      if (err == ENOBUFS) {
        sched_yield();  // dropped by the device queue: poll() would not wait for that
      } else {
        struct pollfd pfd = {fd, POLLOUT, 0};
        poll(&pfd, 1, 10);
      }
    }
  }
  return Napi::Number::New(env, sent);
}

// ---------------------------------------------------------------------------------------
// watch(): a uv_poll_t on the calling thread's loop, for the low-rate control socket.

struct WatchHandle {
  uv_poll_t poll;
  napi_env env;
  Napi::FunctionReference onReadable;
  bool closing = false;
};

void CloseWatch(WatchHandle* h) {
  if (h->closing) return;
  h->closing = true;
  uv_poll_stop(&h->poll);
  h->onReadable.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
           [](uv_handle_t* handle) { delete static_cast<WatchHandle*>(handle->data); });
}

// A worker that exits with an active watch must not leave the handle on its dying loop.
void WatchCleanupHook(void* arg) { CloseWatch(static_cast<WatchHandle*>(arg)); }

void OnPoll(uv_poll_t* poll, int status, int /*events*/) {
  auto* h = static_cast<WatchHandle*>(poll->data);
  if (h->closing) return;
  // On an error the callback still runs once: its read reports the error. Polling again
  // would spin on the same error.
  if (status < 0) uv_poll_stop(poll);
  Napi::Env env(h->env);
  Napi::HandleScope scope(env);
  try {
    h->onReadable.MakeCallback(env.Global(), {});
  } catch (const Napi::Error& e) {
    napi_fatal_exception(h->env, e.Value());  // becomes an 'uncaughtException'
  }
}

struct WatchState {
  WatchHandle* handle;  // null once stopped
};

Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "onReadable must be a function");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowErrno(env, EINVAL, "napi_get_uv_event_loop");

  auto* h = new WatchHandle();
  h->env = env;
  h->poll.data = h;
  int rc = uv_poll_init(loop, &h->poll, fd);
  if (rc < 0) {
    delete h;
    ThrowErrno(env, -rc, "uv_poll_init");
  }
  rc = uv_poll_start(&h->poll, UV_READABLE, OnPoll);
  if (rc < 0) {
    h->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
             [](uv_handle_t* handle) { delete static_cast<WatchHandle*>(handle->data); });
    ThrowErrno(env, -rc, "uv_poll_start");
  }
  h->onReadable = Napi::Persistent(info[1].As<Napi::Function>());
  napi_add_env_cleanup_hook(env, WatchCleanupHook, h);

  auto state = std::make_shared<WatchState>(WatchState{h});
  Napi::Object out = Napi::Object::New(env);
  out.Set("stop", Napi::Function::New(env, [state](const Napi::CallbackInfo& ci) {
            if (state->handle == nullptr) return;
            napi_remove_env_cleanup_hook(ci.Env(), WatchCleanupHook, state->handle);
            CloseWatch(state->handle);
            state->handle = nullptr;
          }));
  out.Set("unref", Napi::Function::New(env, [state](const Napi::CallbackInfo&) {
            if (state->handle != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&state->handle->poll));
          }));
  out.Set("ref", Napi::Function::New(env, [state](const Napi::CallbackInfo&) {
            if (state->handle != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&state->handle->poll));
          }));
  return out;
}

// ---------------------------------------------------------------------------------------
// netnsEnter: moves the calling thread (only) into another network namespace. Sockets and
// TAPs created afterwards on this thread live there; fds already open keep their namespace.
// Lets one process drive ports in several namespaces (tests, lab, bench).

void NetnsEnter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  FdGuard fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno(env, errno, "open(netns)", path);
  if (setns(fd.get(), CLONE_NEWNET) < 0) ThrowErrno(env, errno, "setns(CLONE_NEWNET)", path);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("ifInfo", Napi::Function::New(env, IfInfo, "ifInfo"));
  exports.Set("ifSetMac", Napi::Function::New(env, IfSetMac, "ifSetMac"));
  exports.Set("ifSetUp", Napi::Function::New(env, IfSetUp, "ifSetUp"));
  exports.Set("ifSetMtu", Napi::Function::New(env, IfSetMtu, "ifSetMtu"));
  exports.Set("ifSetIPv4", Napi::Function::New(env, IfSetIPv4, "ifSetIPv4"));
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen, "packetOpen"));
  exports.Set("ringOpen", Napi::Function::New(env, RingOpen, "ringOpen"));
  exports.Set("ringRead", Napi::Function::New(env, RingRead, "ringRead"));
  exports.Set("ringStats", Napi::Function::New(env, RingStats, "ringStats"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("writeBatch", Napi::Function::New(env, WriteBatch, "writeBatch"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
  exports.Set("watch", Napi::Function::New(env, Watch, "watch"));
  exports.Set("pollIn", Napi::Function::New(env, PollIn, "pollIn"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("sendBurst", Napi::Function::New(env, SendBurst, "sendBurst"));
  exports.Set("netnsEnter", Napi::Function::New(env, NetnsEnter, "netnsEnter"));
  exports.Set("flock", Napi::Function::New(env, lnlb::Flock, "flock"));
  exports.Set("hmacSha256Prepare", Napi::Function::New(env, lnlb::HmacSha256Prepare, "hmacSha256Prepare"));
  exports.Set("hmacSha256Tag", Napi::Function::New(env, lnlb::HmacSha256Tag, "hmacSha256Tag"));
  exports.Set("hmacSha256Implementation", Napi::Function::New(env, lnlb::HmacSha256Implementation, "hmacSha256Implementation"));
  return exports;
}

}  // namespace

NODE_API_MODULE(lnlb_port, Init)
