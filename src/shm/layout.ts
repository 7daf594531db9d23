/**
 * Every SharedArrayBuffer field of src/shm/ in one place (piscina keeps its shared words in
 * `symbols.ts` the same way): the byte ring's control block, the tracking table's header and
 * the published view. Offsets are indices into an Int32Array / Uint32Array over the SAB
 * unless the name ends in `_BYTES`.
 *
 * Words written by different threads sit on different 64-byte cache lines where it matters
 * (ring head vs ring tail), so a producer and a consumer on two cores do not fight over one
 * line on every commit.
 */

/** Size of a cache line on the machines we run on (x86-64, arm64). */
export const CACHE_LINE_BYTES = 64;

// ---------------------------------------------------------------------------------------
// ByteRing control block (src/shm/byte-ring.ts), 256 bytes at the start of the ring's SAB.
//
//   byte 0    line 0, written by the PRODUCER only
//             [0] HEAD        free-running producer position (bytes, wraps at 2^32)
//             [1] OVERFLOWS   records refused because the ring was full
//             [2..15]         producer-side counters for the ring's user (RING_PRODUCER_USER)
//   byte 64   line 1, written by the CONSUMER only
//             [16] TAIL       free-running consumer position (bytes, wraps at 2^32)
//             [17] SLEEPING   1 while the consumer is (about to be) parked on HEAD
//             [18] WAKEUPS    times the consumer went to sleep and was woken by a commit
//             [19..31]        consumer-side counters for the ring's user (RING_CONSUMER_USER)
//   byte 128  line 2, written once by ByteRing.allocate
//             [32] MAGIC      RING_MAGIC
//             [33] CAPACITY   data area size in bytes (a power of two)
//   byte 192  line 3, unused
//   byte 256  data area (capacity bytes)
// ---------------------------------------------------------------------------------------
export const RING_HEAD = 0;
export const RING_OVERFLOWS = 1;
export const RING_PRODUCER_USER = 2;
export const RING_PRODUCER_USER_COUNT = 14;
export const RING_TAIL = 16;
export const RING_SLEEPING = 17;
export const RING_WAKEUPS = 18;
export const RING_CONSUMER_USER = 19;
export const RING_CONSUMER_USER_COUNT = 13;
export const RING_MAGIC_WORD = 32;
/** Line 3: the consumer's doorbell, rung by commit() when it sleeps and by wakeConsumer() always; it waits on this word. */
export const RING_DOORBELL = 48;
export const RING_CAPACITY_WORD = 33;
export const RING_MAGIC = 0x4c4e5242; // 'LNRB'
export const RING_CONTROL_BYTES = 256;
export const RING_CONTROL_WORDS = RING_CONTROL_BYTES >> 2;

// ---------------------------------------------------------------------------------------
// TrackingTable (src/shm/tracking-table.ts): a 64-byte header, then capacity entries of
// 16 bytes, at a caller-chosen 8-aligned byte offset of a SAB.
//
//   header word [0] SIZE       occupied entries
//               [1] CAPACITY   entries (any size from 8 to 2^26)
//               [2] EVICTIONS  entries evicted because the table was at its load limit
//               [3] CURSOR     next slot the incremental expiry sweep looks at
//               [4] EXPIRED    entries removed by expiry, total
//               [5] MAGIC      TT_MAGIC
//               [6] SEED       hash seed (random per table: sources are chosen by strangers)
//               [7..15]        reserved
//   entry  word [0] keyLo
//               [1] keyHi
//               [2] owner (bits 0..15) | occupied (bit 16) | entry flags (bits 17..31)
//                   entry flags: 15 bits the table's user defines (tcp: closing); the table
//                   moves them with the entry and never reads them
//               [3] lastSeen (u32 seconds, the caller's clock)
// ---------------------------------------------------------------------------------------
export const TT_SIZE = 0;
export const TT_CAPACITY = 1;
export const TT_EVICTIONS = 2;
export const TT_CURSOR = 3;
export const TT_EXPIRED = 4;
export const TT_MAGIC_WORD = 5;
export const TT_SEED = 6;
export const TT_MAGIC = 0x4c4e5454; // 'LNTT'
export const TT_HEADER_BYTES = 64;
export const TT_HEADER_WORDS = TT_HEADER_BYTES >> 2;
export const TT_ENTRY_WORDS = 4;
export const TT_ENTRY_BYTES = TT_ENTRY_WORDS * 4;
export const TT_E_KEY_LO = 0;
export const TT_E_KEY_HI = 1;
export const TT_E_OWNER_FLAGS = 2;
export const TT_E_LAST_SEEN = 3;
/** Bit of the owner/flags word marking a used slot (flag bit 0, stored in bit 16). */
export const TT_OCCUPIED = 0x10000;
/** The owner/flags word's bits holding the entry owner (a node id). */
export const TT_OWNER_MASK = 0xffff;
/** Entry flags sit above the occupied bit, so no value of them can make a slot look used or free. */
export const TT_ENTRY_FLAGS_SHIFT = 17;
/** Entry flags as the user sees them (shifted down): 15 bits. */
export const TT_ENTRY_FLAGS_MASK = 0x7fff;

// ---------------------------------------------------------------------------------------
// Published view (src/shm/view.ts): 4 + 4 * VIEW_MAX_NODES Int32 words, every one accessed
// with Atomics (seqlock: see view.ts for why plain accesses would not do).
//
//   word [0] GENERATION  odd while the writer is writing, even when stable
//        [1] FLAGS       bit 0 = accepting (first convergence round complete)
//        [2] SELF_ID     this node's stable id (u16)
//        [3] NODE_COUNT  entries in use (0..VIEW_MAX_NODES)
//        [4 + 4i]        node i: id (bits 0..15) | weight (bits 16..31)
//        [5 + 4i]        node i: status (bits 0..7) | mac0 << 8 | mac1 << 16 | mac2 << 24
//        [6 + 4i]        node i: mac3 | mac4 << 8 | mac5 << 16
//        [7 + 4i]        node i: the weight it goes to (bits 0..15; = weight unless weights are pending)
//   then the port rules' per-node parameters (cluster/port-rules.ts):
//        [RULES]         rule slots in use (0..VIEW_MAX_RULE_SLOTS)
//        [RULES + 1 + VIEW_RULE_WORDS * i + k]  node i: params of rules 2k (bits 0..15) and 2k+1
// ---------------------------------------------------------------------------------------
export const VIEW_MAX_NODES = 64;
export const VIEW_GENERATION = 0;
export const VIEW_FLAGS = 1;
export const VIEW_SELF_ID = 2;
export const VIEW_NODE_COUNT = 3;
export const VIEW_NODES = 4;
export const VIEW_NODE_WORDS = 4;
/** The default rule and 32 port rules (cluster/port-rules.ts MAX_RULE_SLOTS; a unit test keeps them equal). */
export const VIEW_MAX_RULE_SLOTS = 33;
export const VIEW_RULE_WORDS = (VIEW_MAX_RULE_SLOTS + 1) >> 1;
export const VIEW_RULES = VIEW_NODES + VIEW_NODE_WORDS * VIEW_MAX_NODES;
/**
 * The bucket tables (--election bucket, cluster/bucket-ledger.ts): [BUCKETS] bit 0 the current
 * table is there, bit 1 the next one (weights pending); then each table's 1024 owners (index in
 * the view's members less the draining ones), four to a word.
 */
export const VIEW_BUCKETS = VIEW_RULES + 1 + VIEW_RULE_WORDS * VIEW_MAX_NODES;
export const VIEW_BUCKET_TABLE_WORDS = 1024 / 4;
/**
 * Then two bucket bitmaps (bit b % 32 of word b >> 5 is bucket b), each there when its
 * VIEW_BUCKETS bit says so: the buckets gained whose handovers have not all arrived (the actors
 * hold their new flows), and the buckets the data socket's kernel filter passes besides the
 * actors' draining ones (absent: it passes every bucket).
 */
export const VIEW_BUCKET_MASK_WORDS = 1024 / 32;
export const VIEW_PENDING_BUCKETS = VIEW_BUCKETS + 1 + 2 * VIEW_BUCKET_TABLE_WORDS;
export const VIEW_PASS_BUCKETS = VIEW_PENDING_BUCKETS + VIEW_BUCKET_MASK_WORDS;
/**
 * Then two times (epoch ms, float64, two words each, low word first), the control plane's
 * place in the stream of frames (control-plane.ts): READ_THROUGH, every control frame received
 * before it has been read and is in the view published before it, under a seqlock of its own
 * (its first word) so that it moves on without a new view; PENDING_FROM, the weights in flight
 * were announced then (-Infinity: none, or the members are changing).
 */
export const VIEW_READ_THROUGH = VIEW_PASS_BUCKETS + VIEW_BUCKET_MASK_WORDS;
export const VIEW_PENDING_FROM = VIEW_READ_THROUGH + 3;
/**
 * Then per node (table order), its applied weight's history: [the weight before it (bits
 * 0..15)] [when the applied one was announced: float64, two words]; a frame held across the
 * application of a weight announced after it came is decided under the one before.
 */
export const VIEW_WEIGHT_HISTORY = VIEW_PENDING_FROM + 2;
export const VIEW_WEIGHT_HISTORY_WORDS = 3;
export const VIEW_WORDS = VIEW_WEIGHT_HISTORY + VIEW_WEIGHT_HISTORY_WORDS * VIEW_MAX_NODES;
export const VIEW_BYTES = VIEW_WORDS * 4;
