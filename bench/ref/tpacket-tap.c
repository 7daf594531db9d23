/*
 * tpacket-tap: the C reference of lnlb's datapath, for bench/throughput.ts.
 *
 *   tpacket-tap <dev> <tap> <cluster-mac> <vip> <nodes> <index> [<filter-file>]
 *
 * Reads <dev> through a TPACKET_V3 ring with the same socket setup as lnlb's data socket
 * (the same classic BPF filter: ARP, and IPv4 whose destination MAC is the cluster MAC;
 * PACKET_VNET_HDR, PACKET_IGNORE_OUTGOING, promiscuous membership, 128 blocks of 256 KiB,
 * 1 ms retire timeout), keeps the frames whose source IPv4 hashes to <index> of <nodes>,
 * and writes each kept frame, its virtio-net header first, straight from the ring into a
 * TAP (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) that carries the cluster MAC and <vip>/32, as
 * lnlb's does. Prints "ready" once set up; on SIGTERM or SIGINT prints one JSON line and exits:
 *   {"seen":N,"kept":N,"written":N,"writeErrors":N,"kernelDrops":N}
 * (kernelDrops: frames the kernel lost because the ring was full, from PACKET_STATISTICS).
 * SIGUSR1 prints the same line with the counts so far and goes on (for deltas over a run).
 * With <filter-file> (struct sock_filter records, as src/net/bucket-filter.ts assembles them)
 * that program replaces the plain one and picks this node's share in the kernel: every IPv4
 * frame that arrives is kept.
 *
 * TPACKET_TAP_RING=v2 in the environment: a TPACKET_V2 ring instead, as lnlb's default data
 * socket reads it (src/main/cluster-device.ts rxRingOptions, native/packet-ring.cc): 8192 slots
 * of 1600 bytes, each frame handed over at once, and the same interrupt moderation (a reader
 * that read 8 frames or more within a millisecond of its last wait sleeps 500 µs instead of
 * polling). With the V3 ring a lone frame waits for the 1 ms block timer, which batches an
 * evenly paced stream for free: a reference for lnlb's v2 must pay the wake-ups v2 pays.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VNET_HDR_LEN 10
#define BLOCK_SIZE (256u << 10)
#define BLOCK_COUNT 128u
/* V2, as lnlb's default ring: slots fitting a 1500-byte MTU with the vnet header, 40 to a 64 KiB block. */
#define V2_FRAME_SIZE 1600u
#define V2_BLOCK_SIZE (64u << 10)
#define V2_FRAMES 8192u
#define V2_BUSY_FRAMES 8u
#define V2_BUSY_WINDOW_NS 1000000ull
#define V2_HOLD_OFF_US 500

static uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t stopping, snapshot;
static void on_signal(int sig) {
  if (sig == SIGUSR1) snapshot = 1;
  else stopping = 1;
}

static void die(const char *what) {
  fprintf(stderr, "tpacket-tap: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* murmur3's finalizer: a plain, well-mixed hash of one 32-bit word. */
static uint32_t hash32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static void set_ifflag_up(int sock, const char *name) {
  struct ifreq ifr = {0};
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS");
}

/* The TAP as lnlb makes it: vnet header, cluster MAC, VIP/32, loose reverse-path filter, up. */
static int open_tap(const char *name, const uint8_t mac[6], const char *vip) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr = {0};
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  int size = VNET_HDR_LEN;
  if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) die("TUNSETVNETHDRSZ");
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) die("TUNSETOFFLOAD");

  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket(AF_INET)");
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
  if (ioctl(sock, SIOCSIFHWADDR, &ifr) < 0) die("SIOCSIFHWADDR");
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  memset(&ifr.ifr_addr, 0, sizeof ifr.ifr_addr);
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, vip, &sin->sin_addr) != 1) { fprintf(stderr, "tpacket-tap: bad VIP %s\n", vip); exit(2); }
  if (ioctl(sock, SIOCSIFADDR, &ifr) < 0) die("SIOCSIFADDR");
  inet_pton(AF_INET, "255.255.255.255", &sin->sin_addr);
  if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0) die("SIOCSIFNETMASK");
  set_ifflag_up(sock, name);
  close(sock);

  char path[96];
  snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/rp_filter", name);
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs("2", f) < 0 || fclose(f) != 0) die(path);
  return fd;
}

/* The data socket as lnlb makes it (src/net/bpf.ts dataFilter, src/main/cluster-interface.ts). */
/* A program from a file of sock_filter records; exits on a malformed file. */
static struct sock_fprog read_filter(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die(path);
  static struct sock_filter code[4096];
  size_t n = fread(code, sizeof code[0], sizeof code / sizeof code[0], f);
  if (n == 0 || ferror(f)) die(path);
  fclose(f);
  struct sock_fprog prog = {(unsigned short)n, code};
  return prog;
}

static int open_packet(const char *dev, const uint8_t mac[6], const char *filter_file, uint8_t **ring, int v2, unsigned *v2_frames) {
  uint32_t hi = (uint32_t)mac[0] << 24 | mac[1] << 16 | mac[2] << 8 | mac[3], lo = mac[4] << 8 | mac[5];
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 5, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 3),
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0x40000),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {sizeof code / sizeof code[0], code};
  if (filter_file != NULL) prog = read_filter(filter_file);
  int one = 1, version = v2 ? TPACKET_V2 : TPACKET_V3;
  /* Protocol 0: nothing is queued before bind(), when the filter is already in place. */
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket(AF_PACKET)");
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) die("SO_ATTACH_FILTER");
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) die("PACKET_VNET_HDR");
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) die("PACKET_IGNORE_OUTGOING");
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) die("PACKET_VERSION");
  size_t map_size;
  if (v2) {
    unsigned per_block = V2_BLOCK_SIZE / V2_FRAME_SIZE, blocks = (V2_FRAMES + per_block - 1) / per_block;
    struct tpacket_req req = {.tp_block_size = V2_BLOCK_SIZE, .tp_block_nr = blocks, .tp_frame_size = V2_FRAME_SIZE, .tp_frame_nr = blocks * per_block};
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) die("PACKET_RX_RING");
    map_size = (size_t)V2_BLOCK_SIZE * blocks;
    *v2_frames = blocks * per_block;
  } else {
    struct tpacket_req3 req = {
        .tp_block_size = BLOCK_SIZE, .tp_block_nr = BLOCK_COUNT, .tp_frame_size = 2048,
        .tp_frame_nr = BLOCK_SIZE / 2048 * BLOCK_COUNT, .tp_retire_blk_tov = 1,
    };
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) die("PACKET_RX_RING");
    map_size = (size_t)BLOCK_SIZE * BLOCK_COUNT;
  }
  *ring = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (*ring == MAP_FAILED) die("mmap");
  unsigned ifindex = if_nametoindex(dev);
  if (ifindex == 0) die(dev);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)ifindex};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind");
  struct packet_mreq mreq = {.mr_ifindex = (int)ifindex, .mr_type = PACKET_MR_PROMISC};
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) die("PACKET_MR_PROMISC");
  return fd;
}

int main(int argc, char **argv) {
  uint8_t mac[6];
  if ((argc != 7 && argc != 8) || sscanf(argv[3], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) {
    fprintf(stderr, "usage: tpacket-tap <dev> <tap> <cluster-mac> <vip> <nodes> <index> [<filter-file>]\n");
    return 2;
  }
  uint32_t nodes = (uint32_t)strtoul(argv[5], NULL, 10), index = (uint32_t)strtoul(argv[6], NULL, 10);
  if (nodes == 0 || index >= nodes) { fprintf(stderr, "tpacket-tap: need 0 <= index < nodes\n"); return 2; }
  struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll() returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);

  int tap = open_tap(argv[2], mac, argv[4]);
  uint8_t *ring;
  const char *filter_file = argc == 8 ? argv[7] : NULL;
  const char *ring_kind = getenv("TPACKET_TAP_RING");
  int v2 = ring_kind != NULL && strcmp(ring_kind, "v2") == 0;
  unsigned v2_frames = 0;
  int fd = open_packet(argv[1], mac, filter_file, &ring, v2, &v2_frames);
  fprintf(stderr, "ready\n");

  unsigned long long seen = 0, kept = 0, written = 0, writeErrors = 0, drops = 0;
  unsigned block = 0;
  unsigned slot = 0, since_wait = 0;
  uint64_t waited_at = 0;
#define HANDLE_FRAME(eth, snaplen)                                                                   \
  do {                                                                                             \
    seen++;                                                                                        \
    if ((snaplen) >= 34 && (eth)[12] == 0x08 && (eth)[13] == 0x00) {                               \
      uint32_t src;                                                                                \
      memcpy(&src, (eth) + 26, 4);                                                                 \
      if (filter_file != NULL || hash32(ntohl(src)) % nodes == index) {                            \
        kept++;                                                                                    \
        if (write(tap, (eth) - VNET_HDR_LEN, (snaplen) + VNET_HDR_LEN) >= 0) written++;             \
        else writeErrors++;                                                                        \
      }                                                                                            \
    }                                                                                              \
  } while (0)
  for (;;) {
    if (stopping || snapshot) {
      struct tpacket_stats_v3 st = {0}; /* the kernel resets these on each read */
      socklen_t len = sizeof st;
      if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) die("PACKET_STATISTICS");
      drops += st.tp_drops;
      printf("{\"seen\":%llu,\"kept\":%llu,\"written\":%llu,\"writeErrors\":%llu,\"kernelDrops\":%llu}\n", seen, kept,
             written, writeErrors, drops);
      fflush(stdout);
      snapshot = 0;
      if (stopping) return 0;
    }
    if (v2) {
      unsigned per_block = V2_BLOCK_SIZE / V2_FRAME_SIZE;
      unsigned n = 0;
      for (;;) {
        struct tpacket2_hdr *h = (void *)(ring + (size_t)(slot / per_block) * V2_BLOCK_SIZE + (size_t)(slot % per_block) * V2_FRAME_SIZE);
        if ((__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) break;
        uint8_t *eth = (uint8_t *)h + h->tp_mac;
        HANDLE_FRAME(eth, h->tp_snaplen);
        __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        slot = slot + 1 == v2_frames ? 0 : slot + 1;
        n++;
      }
      since_wait += n;
      if (n > 0) continue;
      if (since_wait >= V2_BUSY_FRAMES && monotonic_ns() - waited_at < V2_BUSY_WINDOW_NS) {
        struct timespec pause = {0, V2_HOLD_OFF_US * 1000L};
        nanosleep(&pause, NULL);
      } else {
        struct pollfd pfd = {fd, POLLIN | POLLERR, 0};
        if (poll(&pfd, 1, 100) < 0 && errno != EINTR) die("poll");
      }
      waited_at = monotonic_ns();
      since_wait = 0;
      continue;
    }
    struct tpacket_block_desc *desc = (void *)(ring + (size_t)block * BLOCK_SIZE);
    if ((__atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
      struct pollfd pfd = {fd, POLLIN | POLLERR, 0};
      if (poll(&pfd, 1, 100) < 0 && errno != EINTR) die("poll");
      continue;
    }
    uint8_t *frame = (uint8_t *)desc + desc->hdr.bh1.offset_to_first_pkt;
    for (uint32_t i = 0; i < desc->hdr.bh1.num_pkts; i++) {
      struct tpacket3_hdr *h = (void *)frame;
      uint8_t *eth = frame + h->tp_mac;
      HANDLE_FRAME(eth, h->tp_snaplen);
      frame += h->tp_next_offset;
    }
    __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    block = (block + 1) % BLOCK_COUNT;
  }
}
