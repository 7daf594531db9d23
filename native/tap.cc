// TAP devices: see tap.h.

#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "fd-guard.h"
#include "ifctl.h"
#include "vnet-hdr.h"

namespace lnlb {

namespace {

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

}  // namespace

void RegisterTap(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
}

}  // namespace lnlb
