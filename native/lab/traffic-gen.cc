// Traffic generator: see traffic-gen.h.

#include "traffic-gen.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "../args.h"
#include "../errors.h"
#include "../io.h"

namespace lnlb {

namespace {

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

}  // namespace

void RegisterTrafficGen(Napi::Env env, Napi::Object exports) {
  exports.Set("sendBurst", Napi::Function::New(env, SendBurst, "sendBurst"));
}

}  // namespace lnlb
