// Interface reads (rtnetlink) and changes (ioctl): see ifctl.h.

#include "ifctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <vector>

#include "args.h"
#include "errors.h"
#include "fd-guard.h"

namespace lnlb {

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

namespace {

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
  out.Set("type", link->ifi_type);  // ARPHRD_*: 1 for Ethernet (veth, TAP, bond, VLAN)
  out.Set("loopback", (link->ifi_flags & IFF_LOOPBACK) != 0);
  return out;
}

// Every address of every device in this network namespace (RTM_GETADDR dump), up or down:
// getifaddrs, and so Node's os.networkInterfaces(), leave out devices without carrier.
// [{ device, family: 4 | 6, address: Uint8Array(4 | 16) }].
Napi::Value HostAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdGuard sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (sock.get() < 0) ThrowErrno(env, errno, "socket(AF_NETLINK)");
  struct {
    struct nlmsghdr header;
    struct ifaddrmsg addr;
  } req;
  memset(&req, 0, sizeof req);
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  req.header.nlmsg_type = RTM_GETADDR;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.header.nlmsg_seq = 1;
  req.addr.ifa_family = AF_UNSPEC;
  if (send(sock.get(), &req, req.header.nlmsg_len, 0) < 0) ThrowErrno(env, errno, "send(RTM_GETADDR)");

  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  thread_local std::vector<char> answer(1 << 16);
  for (;;) {
    ssize_t n;
    do n = recv(sock.get(), answer.data(), answer.size(), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) ThrowErrno(env, errno, "recv(RTM_GETADDR)");
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(answer.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return out;
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -reinterpret_cast<struct nlmsgerr*>(NLMSG_DATA(h))->error;
        ThrowErrno(env, err != 0 ? err : EPROTO, "netlink(RTM_GETADDR)");
      }
      if (h->nlmsg_type != RTM_NEWADDR) continue;
      auto* a = reinterpret_cast<struct ifaddrmsg*>(NLMSG_DATA(h));
      size_t size = a->ifa_family == AF_INET ? 4 : a->ifa_family == AF_INET6 ? 16 : 0;
      if (size == 0) continue;
      // IFA_LOCAL is the address itself (IFA_ADDRESS the peer's on a point-to-point link); IPv6 has only IFA_ADDRESS.
      const void* local = nullptr;
      const void* address = nullptr;
      int attrsLen = static_cast<int>(IFA_PAYLOAD(h));
      for (struct rtattr* r = IFA_RTA(a); RTA_OK(r, attrsLen); r = RTA_NEXT(r, attrsLen)) {
        if (RTA_PAYLOAD(r) != size) continue;
        if (r->rta_type == IFA_LOCAL) local = RTA_DATA(r);
        else if (r->rta_type == IFA_ADDRESS) address = RTA_DATA(r);
      }
      const void* own = local != nullptr ? local : address;
      if (own == nullptr) continue;
      char name[IF_NAMESIZE] = {0};
      if (if_indextoname(a->ifa_index, name) == nullptr) continue;  // the device went meanwhile
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("device", name);
      entry.Set("family", size == 4 ? 4 : 6);
      entry.Set("address", Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(own), size));
      out.Set(count++, entry);
    }
  }
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

// Removes the primary IPv4 address, as `ifconfig DEV 0.0.0.0` does: SIOCSIFADDR with 0.0.0.0
// deletes it (devinet_ioctl, then inet_set_ifa frees an address of 0). For a process that is
// exiting with its TAP still there: the VIP goes from the host before the bound device's
// arp_ignore is restored, so that the host never answers ARP for the VIP with its own MAC.
void IfClearIPv4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  struct ifreq ifr = IfReq(env, name);
  auto* sin = reinterpret_cast<struct sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_ANY);
  FdGuard sock(IoctlSocket(env, name));
  Ioctl(env, sock.get(), SIOCSIFADDR, &ifr, "ioctl(SIOCSIFADDR)");
}

// An IPv6 address goes in by rtnetlink (RTM_NEWADDR), not ioctl: only netlink can mark it
// IFA_F_NODAD. Duplicate address detection on a cluster TAP would hold the VIP tentative for a
// second (nobody on the TAP answers), and the VIP is shared on purpose.
void IfAddIPv6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StrArg(info, 0, "name");
  std::string addr = StrArg(info, 1, "addr");
  int32_t prefixLen = IntArg(info, 2, "prefixLen");
  CheckIfName(env, name, false);
  if (prefixLen < 0 || prefixLen > 128) ThrowErrno(env, EINVAL, "check(prefixLen)", name);
  struct in6_addr address;
  if (inet_pton(AF_INET6, addr.c_str(), &address) != 1) ThrowErrno(env, EINVAL, "inet_pton", name);
  unsigned index = if_nametoindex(name.c_str());
  if (index == 0) ThrowErrno(env, errno, "if_nametoindex", name);
  FdGuard sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (sock.get() < 0) ThrowErrno(env, errno, "socket(AF_NETLINK)", name);

  struct {
    struct nlmsghdr header;
    struct ifaddrmsg addr;
    char attrs[2 * RTA_SPACE(sizeof(struct in6_addr)) + RTA_SPACE(sizeof(uint32_t))];
  } req;
  memset(&req, 0, sizeof req);
  req.header.nlmsg_type = RTM_NEWADDR;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  req.header.nlmsg_seq = 1;
  req.addr.ifa_family = AF_INET6;
  req.addr.ifa_prefixlen = static_cast<unsigned char>(prefixLen);
  req.addr.ifa_flags = IFA_F_NODAD;
  req.addr.ifa_scope = RT_SCOPE_UNIVERSE;
  req.addr.ifa_index = index;
  size_t len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  for (unsigned short type : {static_cast<unsigned short>(IFA_LOCAL), static_cast<unsigned short>(IFA_ADDRESS)}) {
    auto* a = reinterpret_cast<struct rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(len));
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(sizeof address);
    memcpy(RTA_DATA(a), &address, sizeof address);
    len = NLMSG_ALIGN(len) + RTA_ALIGN(a->rta_len);
  }
  // IFA_FLAGS as well: ifa_flags has 8 bits, and newer kernels read the flags from here.
  auto* flags = reinterpret_cast<struct rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(len));
  flags->rta_type = IFA_FLAGS;
  flags->rta_len = RTA_LENGTH(sizeof(uint32_t));
  uint32_t nodad = IFA_F_NODAD;
  memcpy(RTA_DATA(flags), &nodad, sizeof nodad);
  len = NLMSG_ALIGN(len) + RTA_ALIGN(flags->rta_len);
  req.header.nlmsg_len = static_cast<uint32_t>(len);
  if (send(sock.get(), &req, len, 0) < 0) ThrowErrno(env, errno, "send(RTM_NEWADDR)", name);

  char answer[1024];
  ssize_t n;
  do n = recv(sock.get(), answer, sizeof answer, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, "recv(RTM_NEWADDR)", name);
  auto* header = reinterpret_cast<struct nlmsghdr*>(answer);
  if (!NLMSG_OK(header, static_cast<size_t>(n)) || header->nlmsg_type != NLMSG_ERROR) ThrowErrno(env, EPROTO, "recv(RTM_NEWADDR)", name);
  int err = -reinterpret_cast<struct nlmsgerr*>(NLMSG_DATA(header))->error;
  if (err != 0) ThrowErrno(env, err, "netlink(RTM_NEWADDR)", name);
}

}  // namespace

void RegisterIfctl(Napi::Env env, Napi::Object exports) {
  exports.Set("ifInfo", Napi::Function::New(env, IfInfo, "ifInfo"));
  exports.Set("hostAddresses", Napi::Function::New(env, HostAddresses, "hostAddresses"));
  exports.Set("ifSetMac", Napi::Function::New(env, IfSetMac, "ifSetMac"));
  exports.Set("ifSetUp", Napi::Function::New(env, IfSetUp, "ifSetUp"));
  exports.Set("ifSetMtu", Napi::Function::New(env, IfSetMtu, "ifSetMtu"));
  exports.Set("ifSetIPv4", Napi::Function::New(env, IfSetIPv4, "ifSetIPv4"));
  exports.Set("ifClearIPv4", Napi::Function::New(env, IfClearIPv4, "ifClearIPv4"));
  exports.Set("ifAddIPv6", Napi::Function::New(env, IfAddIPv6, "ifAddIPv6"));
}

}  // namespace lnlb
