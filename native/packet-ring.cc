// Receive rings on AF_PACKET sockets, TPACKET_V2 or TPACKET_V3. The ring table is
// process-wide so that a socket opened on the main thread can be read by a worker thread.
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

#include "packet-ring.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "args.h"
#include "errors.h"
#include "packet-socket.h"
#include "vnet-hdr.h"

namespace lnlb {

namespace {

constexpr uint32_t kMetaTruncated = 0x100;
// ringReadInPlace: the frame is in the caller's spill buffer (a whole GSO frame), not the ring.
constexpr uint32_t kMetaSpilled = 0x200;
// The frame came with an 802.1Q tag, which the kernel took off before the socket saw it (it
// always does): the tag's TCI is in bits 16-31 of the same word (TP_STATUS_VLAN_VALID).
constexpr uint32_t kMetaVlan = 0x400;

// The meta flags of a frame's VLAN tag, from its ring header's status and TCI.
inline uint32_t VlanMeta(uint32_t status, uint16_t tci) {
  return (status & TP_STATUS_VLAN_VALID) != 0 ? kMetaVlan | (uint32_t(tci) << 16) : 0;
}
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
  // ringReadInPlace: what the last batch lent out (V2 slots or V3 blocks, consecutive from
  // lentFrom), given back to the kernel at the start of the next read.
  uint32_t lentFrom = 0;
  uint32_t lentCount = 0;
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

  // ringWake: another thread makes a reader blocked in poll() return at once (it must act on
  // something besides frames: a new kernel filter to attach). An eventfd, polled with the socket.
  int wakeFd = -1;

  ~Ring() {
    if (map != nullptr) munmap(map, mapSize);
    if (wakeFd >= 0) ::close(wakeFd);
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
  ring->wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ring->wakeFd < 0) ThrowErrno(env, errno, "eventfd", "");
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

// A frame ready in the ring: where it starts (its virtio-net header first, when the socket has
// one), the bytes the ring holds of it, its length on the wire and packet type (with its VLAN
// tag's flag and TCI, kMetaVlan), and whether
// the whole of it waits on the receive queue (V2 TP_STATUS_COPY: larger than a slot).
struct RingFrame {
  uint8_t* start;
  size_t length;
  uint32_t wireLength;
  uint32_t pkttype;
  bool queued;
  // When the kernel received it (CLOCK_REALTIME, the ring header's tp_sec / tp_nsec).
  uint32_t sec;
  uint32_t nsec;
};

// Both reads walk the frames ready in ring order the same way, up to maxFrames, handing each
// to take(frame, index) until it returns false (no room: the frame stays for the next call).
// A V3 block or a V2 slot whose frames were all taken goes back to the kernel at once (copied
// out), or is lent (read in place: ReleaseLent gives it back at the next read).
template <typename Take>
uint32_t WalkV3(Ring& r, uint32_t maxFrames, bool lend, Take take) {
  uint32_t count = 0;
  if (lend && r.lentCount == 0) r.lentFrom = r.block;
  while (count < maxFrames) {
    uint8_t* base = r.map + size_t(r.block) * r.blockSize;
    auto* desc = reinterpret_cast<struct tpacket_block_desc*>(base);
    if (!r.inBlock) {
      uint32_t status = __atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
      if ((status & TP_STATUS_USER) == 0) break;
      r.inBlock = true;
      r.framesLeft = desc->hdr.bh1.num_pkts;
      r.frameOffset = desc->hdr.bh1.offset_to_first_pkt;
    }
    if (r.framesLeft > 0) {
      uint8_t* frame = base + r.frameOffset;
      auto* hdr = reinterpret_cast<struct tpacket3_hdr*>(frame);
      auto* sll = reinterpret_cast<struct sockaddr_ll*>(frame + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
      uint32_t tags = VlanMeta(hdr->tp_status, hdr->hv1.tp_vlan_tci);
      if (!take(RingFrame{frame + hdr->tp_mac - r.vnetLen, r.vnetLen + hdr->tp_snaplen, hdr->tp_len, sll->sll_pkttype | tags, false, hdr->tp_sec, hdr->tp_nsec},
                count))
        break;
      count++;
      r.frameOffset += hdr->tp_next_offset;
      r.framesLeft--;
    }
    if (r.framesLeft == 0) {
      if (lend) r.lentCount++;
      else __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      r.inBlock = false;
      r.block = (r.block + 1) % r.blockCount;
    }
  }
  return count;
}

template <typename Take>
uint32_t WalkV2(Ring& r, uint32_t maxFrames, bool lend, Take take) {
  uint32_t count = 0;
  if (lend && r.lentCount == 0) r.lentFrom = r.slot;
  while (count < maxFrames) {
    uint8_t* frame = r.Slot(r.slot);
    auto* hdr = reinterpret_cast<struct tpacket2_hdr*>(frame);
    uint32_t status = __atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) break;
    auto* sll = reinterpret_cast<struct sockaddr_ll*>(frame + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
    RingFrame f{frame + hdr->tp_mac - r.vnetLen, r.vnetLen + hdr->tp_snaplen, hdr->tp_len, sll->sll_pkttype | VlanMeta(status, hdr->tp_vlan_tci),
                (status & TP_STATUS_COPY) != 0, hdr->tp_sec, hdr->tp_nsec};
    if (!take(f, count)) break;
    count++;
    if (lend) r.lentCount++;
    else __atomic_store_n(&hdr->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r.slot = r.slot + 1 == r.frameCount ? 0 : r.slot + 1;
  }
  return count;
}

template <typename Take>
uint32_t Walk(Ring& r, uint32_t maxFrames, bool lend, Take take) {
  return r.version == TPACKET_V2 ? WalkV2(r, maxFrames, lend, take) : WalkV3(r, maxFrames, lend, take);
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

// ringRead: copies the frames into dst, each 8-aligned; a queued one (V2 COPY) whole from the
// receive queue. Sets *noRoom when a frame is ready but does not fit.
uint32_t CopyFrames(Ring& r, uint8_t* dst, size_t offset, size_t end, uint32_t* meta, double* stamps, uint32_t maxFrames,
                    bool* noRoom) {
  *noRoom = false;
  return Walk(r, maxFrames, false, [&](const RingFrame& f, uint32_t i) {
    size_t at = (offset + 7) & ~size_t(7);
    // A queued frame needs room for all of it (it comes from the queue), the others for what
    // the slot holds.
    size_t want = f.queued ? r.vnetLen + f.wireLength : f.length;
    if (at + want > end) {
      *noRoom = true;
      return false;
    }
    bool whole = f.queued && RecvCopied(r, dst + at, want);
    size_t length = whole ? want : f.length;
    if (!whole) memcpy(dst + at, f.start, length);
    PutMeta(meta + 4 * i, at, length, f.wireLength, f.pkttype, !whole && f.length - r.vnetLen < f.wireLength);
    if (stamps != nullptr) stamps[i] = double(f.sec) * 1e3 + double(f.nsec) / 1e6;
    offset = at + length;
    return true;
  });
}

// ringReadInPlace gives back what the previous batch lent: the reader is done with it.
void ReleaseLent(Ring& r) {
  for (uint32_t k = 0; k < r.lentCount; k++) {
    if (r.version == TPACKET_V2) {
      auto* hdr = reinterpret_cast<struct tpacket2_hdr*>(r.Slot((r.lentFrom + k) % r.frameCount));
      __atomic_store_n(&hdr->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    } else {
      auto* desc = reinterpret_cast<struct tpacket_block_desc*>(r.map + size_t((r.lentFrom + k) % r.blockCount) * r.blockSize);
      __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    }
  }
  r.lentCount = 0;
}

// ringReadInPlace: describes the frames where they are (offsets in the ring's view). A queued
// frame's whole copy comes from the receive queue into `spill`, one per batch (a second one
// ends the batch and leads the next).
uint32_t LendFrames(Ring& r, uint8_t* spill, size_t spillLen, uint32_t* meta, double* stamps, uint32_t maxFrames) {
  bool spilled = false;
  return Walk(r, maxFrames, true, [&](const RingFrame& f, uint32_t i) {
    if (stamps != nullptr) stamps[i] = double(f.sec) * 1e3 + double(f.nsec) / 1e6;
    size_t at = size_t(f.start - r.map);
    size_t length = f.length;
    uint32_t flags = f.pkttype;
    bool truncated = f.length - r.vnetLen < f.wireLength;
    if (f.queued) {
      if (spilled) return false;
      size_t want = r.vnetLen + f.wireLength;
      if (want <= spillLen && RecvCopied(r, spill, want)) {
        spilled = true;
        at = 0;
        length = want;
        flags |= kMetaSpilled;
        truncated = false;
      } else if (want > spillLen) {
        // No room for it: its queued copy goes (so the queue and the COPY slots stay paired)
        // and the slot's truncated copy stands in, counted as truncated.
        while (recv(r.fd, spill, spillLen, MSG_DONTWAIT | MSG_TRUNC) < 0 && errno == EINTR) {
        }
      }
    }
    PutMeta(meta + 4 * i, at, length, f.wireLength, flags, truncated);
    return true;
  });
}

// The optional Float64Array at info[index] for the frames' receive times (epoch ms, the ring
// header's), or nullptr; a batch is cut to its length.
double* OptionalStamps(const Napi::CallbackInfo& info, size_t index, uint32_t& maxFrames) {
  if (info.Length() <= index || info[index].IsUndefined()) return nullptr;
  auto s = TypedArg<double, napi_float64_array>(info.Env(), info[index], "stamps", "Float64Array");
  if (maxFrames > s.length) maxFrames = static_cast<uint32_t>(s.length);
  return s.data;
}

// realtimeMs(): CLOCK_REALTIME in epoch ms with its nanoseconds, the clock of the ring's
// receive times (Date.now() has whole milliseconds only): to place an event of this process
// among the frames the kernel received.
Napi::Value RealtimeMs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Napi::Number::New(info.Env(), double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6);
}

// Turns a POLLERR on a packet socket into the pending socket error (ENETDOWN when the
// device went down or away) so the reader learns about it instead of spinning.
void ThrowSocketError(Napi::Env env, int fd, const char* syscall) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) ThrowErrno(env, err, syscall, "");
}

// Reports (once, at the start of the next call) a socket error that a recv() of a queued frame
// took, so it reaches the reader like a POLLERR would. Called with readMu held.
void ThrowPendingError(Napi::Env env, Ring& r) {
  int err = r.pendingError;
  if (err == 0) return;
  r.pendingError = 0;
  ThrowErrno(env, err, "recv(PACKET_COPY_THRESH)", "");
}

// Reads one batch with `gather` (copying or in place), blocking up to timeoutMs for the first
// frame; `gather` runs with readMu held and returns the frames it described.
template <typename Gather>
uint32_t ReadBatch(Napi::Env env, int fd, Ring& ring, int32_t timeoutMs, bool noFrames, Gather gather) {
  bool noRoom = false;
  uint32_t count;
  bool busy;
  {
    std::lock_guard<std::mutex> lock(ring.readMu);
    ThrowPendingError(env, ring);
    count = gather(&noRoom);
    ring.sinceWait += count;
    busy = count == 0 && ring.holdOffUs > 0 && ring.sinceWait >= kBusyFrames &&
           MonotonicNs() - ring.waitedAtNs < kBusyWindowNs;
  }
  if (count > 0 || noRoom || timeoutMs <= 0 || noFrames) return count;

  // A V2 ring wakes a reader blocked in poll() for every frame, and on a busy wire those
  // wake-ups cost more than the frames (the kernel's receive path pays for them: in
  // bench/wire.ts a 64-byte flood fell from 310k to 120k frames/s). So, interrupt moderation
  // as NAPI does it: a reader that read kBusyFrames or more since it last waited (within the
  // last millisecond) sleeps holdOffUs instead, and frames pile up into one batch without
  // waking anyone; a reader on a quiet wire (a lone request) polls and is woken by the very
  // next frame. V3 holds every frame up to 1 ms; this holds only those of a busy wire.
  if (busy) {
    uint64_t us = std::min<uint64_t>(ring.holdOffUs, uint64_t(timeoutMs) * 1000);
    struct timespec pause = {static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(ring.readMu);
    ring.waitedAtNs = MonotonicNs();
    count = gather(&noRoom);
    ring.sinceWait = count;
    if (count > 0 || noRoom) return count;
  }

  struct pollfd pfds[2] = {{fd, POLLIN | POLLERR, 0}, {ring.wakeFd, POLLIN, 0}};
  int rc;
  do rc = poll(pfds, 2, timeoutMs);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(env, errno, "poll", "");
  const struct pollfd& pfd = pfds[0];
  if (pfd.revents & POLLNVAL) ThrowErrno(env, EBADF, "poll", "");
  if (pfd.revents & POLLERR) ThrowSocketError(env, fd, "poll(POLLERR)");
  if (pfds[1].revents & POLLIN) {
    uint64_t wakes;
    while (read(ring.wakeFd, &wakes, sizeof wakes) < 0 && errno == EINTR) {
    }
  }
  std::lock_guard<std::mutex> lock(ring.readMu);
  ring.waitedAtNs = MonotonicNs();
  count = gather(&noRoom);
  ring.sinceWait = count;
  return count;
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
  // Optional: when the kernel received each frame, epoch ms (the control plane's "heard at").
  double* stamps = OptionalStamps(info, 7, maxFrames);
  std::shared_ptr<Ring> ring = FindRing(env, fd, "ringRead");
  if (ring->lentCount != 0) ThrowRange(env, "ringRead: this ring is read in place (ringReadInPlace)");
  uint32_t count = ReadBatch(env, fd, *ring, timeoutMs, maxFrames == 0, [&](bool* noRoom) {
    return CopyFrames(*ring, dst.data, dstOffset, dstEnd, meta.data, stamps, maxFrames, noRoom);
  });
  return Napi::Number::New(env, count);
}

// ringReadInPlace(fd, meta, maxFrames, timeoutMs, spill[, stamps]): the frames stay in the ring,
// where ringView's ArrayBuffer shows them (meta[4i] is the offset in it), until the next call
// gives them back to the kernel; a whole GSO frame (V2 COPY) is in `spill` instead
// (kMetaSpilled). With `stamps`, stamps[i] is when the kernel received frame i (epoch ms).
Napi::Value RingReadInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  auto meta = WordsArg(info, 1, "meta");
  uint32_t maxFrames = UintArg(info, 2, "maxFrames");
  int32_t timeoutMs = IntArg(info, 3, "timeoutMs");
  auto spill = BytesArg(info, 4, "spill");
  if (maxFrames > meta.length / 4) maxFrames = static_cast<uint32_t>(meta.length / 4);
  double* stamps = OptionalStamps(info, 5, maxFrames);
  std::shared_ptr<Ring> ring = FindRing(env, fd, "ringReadInPlace");
  {
    std::lock_guard<std::mutex> lock(ring->readMu);
    ReleaseLent(*ring);
  }
  uint32_t count = ReadBatch(env, fd, *ring, timeoutMs, maxFrames == 0, [&](bool*) {
    return LendFrames(*ring, spill.data, spill.length, meta.data, stamps, maxFrames);
  });
  return Napi::Number::New(env, count);
}

// ringView(fd): an ArrayBuffer over the whole ring (not a copy), for ringReadInPlace's offsets.
// It holds the mapping: a socket closed meanwhile unmaps only when the buffer is collected.
Napi::Value RingView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  std::shared_ptr<Ring> ring = FindRing(env, fd, "ringView");
  auto* hold = new std::shared_ptr<Ring>(ring);
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(
      env, ring->map, ring->mapSize,
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<Ring>*>(hint); }, hold, &buffer);
  if (status != napi_ok) {
    delete hold;
    ThrowErrno(env, ENOTSUP, "ringView", "");
  }
  return Napi::Value(env, buffer);
}

// ringWake(fd): a ringRead blocked on `fd` (on any thread) returns now; one that is not
// returns at once next time it would block. Safe from any thread.
void RingWake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  std::shared_ptr<Ring> ring = FindRing(env, fd, "ringWake");
  uint64_t one = 1;
  // EAGAIN: the counter is at its maximum, so a wake-up is pending anyway.
  while (write(ring->wakeFd, &one, sizeof one) < 0 && errno == EINTR) {
  }
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

}  // namespace

void CloseDroppingRing(Napi::Env env, int fd) {
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

void RegisterPacketRing(Napi::Env env, Napi::Object exports) {
  exports.Set("ringOpen", Napi::Function::New(env, RingOpen, "ringOpen"));
  exports.Set("ringRead", Napi::Function::New(env, RingRead, "ringRead"));
  exports.Set("ringReadInPlace", Napi::Function::New(env, RingReadInPlace, "ringReadInPlace"));
  exports.Set("realtimeMs", Napi::Function::New(env, RealtimeMs, "realtimeMs"));
  exports.Set("ringView", Napi::Function::New(env, RingView, "ringView"));
  exports.Set("ringStats", Napi::Function::New(env, RingStats, "ringStats"));
  exports.Set("ringWake", Napi::Function::New(env, RingWake, "ringWake"));
}

}  // namespace lnlb
