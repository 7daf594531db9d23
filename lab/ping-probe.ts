/**
 * Clients that were already talking when the fault came: one `ping -D -i INTERVAL` per source
 * address, started and answered before the fault and left running through it. A source is
 * answered again at the first reply to a request it sent after the fault (its send time is the
 * reply's timestamp less its round trip), so the time a ping process takes to start is in no
 * figure and a reply to a request sent before the fault, still in flight, counts for nothing.
 * The failover benchmarks of lnlb and of keepalived use this one probe.
 */

import { closeSync, openSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { lnlbError } from '../src/errors.js';
import { hasExited, tail, type Lab, type LabProcess } from './netns.js';

/** `[1700000000.123456] 64 bytes from 10.0.0.100: icmp_seq=7 ttl=64 time=0.081 ms` (an IPv6 address has colons of its own) */
const REPLY_LINE = /^\[(\d+\.\d+)\] \d+ bytes from \S+: icmp_seq=\d+ ttl=\d+ time=([\d.]+) ms/;
const POLL_MS = 5;

interface Reply {
  /** Epoch ms. */
  receivedAt: number;
  rttMs: number;
}

/** One ping's log, read as it grows: the replies so far. */
class ReplyLog {
  readonly replies: Reply[] = [];
  private offset = 0;
  private partial = '';
  private readonly chunk = Buffer.alloc(64 * 1024);

  constructor(private readonly file: string) {}

  /** Reads what was appended since the last call. */
  update(): readonly Reply[] {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return this.replies;
    }
    try {
      let n: number;
      while ((n = readSync(fd, this.chunk, 0, this.chunk.length, this.offset)) > 0) {
        this.offset += n;
        const lines = (this.partial + this.chunk.toString('utf8', 0, n)).split('\n');
        this.partial = lines.pop() ?? '';
        for (const line of lines) {
          const m = REPLY_LINE.exec(line);
          if (m !== null) this.replies.push({ receivedAt: Number(m[1]) * 1000, rttMs: Number(m[2]) });
        }
      }
    } finally {
      closeSync(fd);
    }
    return this.replies;
  }
}

export interface ProbeTakeover {
  /** Per source answered again: ms after `sinceEpochMs` of its first reply to a request sent after the fault. */
  firstReplyMs: Map<string, number>;
  unanswered: string[];
  /** The last source's first reply (the failover figure); 0 if none was answered. */
  worstMs: number;
}

export class PingProbe {
  private readonly logs: ReplyLog[];

  private constructor(
    private readonly sources: readonly string[],
    private readonly pings: readonly LabProcess[],
  ) {
    this.logs = pings.map((ping) => new ReplyLog(ping.logFile));
  }

  /** Starts the pings on `host` and resolves once every source has had a reply. */
  static async start(lab: Lab, host: string, sources: readonly string[], target: string, options: { intervalMs: number; timeoutMs?: number }): Promise<PingProbe> {
    const interval = (options.intervalMs / 1000).toFixed(3);
    // The daemons' priority: ping stamps a reply when it gets to print it, and on this small
    // machine lnlbd (nice -20) kept an ordinary ping off the CPU for 20 ms or more just after
    // a failover; a client on a machine of its own would have had its answer by then. Not a
    // real-time class: iputils ping spins on sched_yield just before each send, and with
    // SCHED_FIFO that starves every daemon on its core.
    const argv = ['nice', '-n', '-20', 'ping', '-n', '-D', '-i', interval, '-I'];
    const pings = sources.map((source) => lab.spawn(host, [...argv, source, target], { logName: `ping-${source}` }));
    const probe = new PingProbe(sources, pings);
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      const silent = sources.filter((_, i) => probe.replies(i).length === 0);
      if (silent.length === 0) return probe;
      const died = pings.find(hasExited);
      if (died !== undefined || Date.now() > deadline) {
        probe.stop();
        const why = died !== undefined ? `a ping exited:\n${tail(died.logFile, 5)}` : `no reply to ${silent.join(', ')} within ${options.timeoutMs ?? 5000} ms`;
        throw lnlbError('LNLB_ERR_LAB_SETUP', `ping probe of ${target} from ${host}: ${why}`);
      }
      await sleep(20);
    }
  }

  /**
   * Waits until every source has been answered for a request sent at or after
   * `sentAfterEpochMs` (default `sinceEpochMs`); times are in ms after `sinceEpochMs`.
   */
  async answeredAgain(sinceEpochMs: number, timeoutMs: number, options: { sentAfterEpochMs?: number } = {}): Promise<ProbeTakeover> {
    const sentAfter = options.sentAfterEpochMs ?? sinceEpochMs;
    const firstReplyMs = new Map<string, number>();
    const deadline = Date.now() + timeoutMs;
    while (firstReplyMs.size < this.sources.length && Date.now() <= deadline) {
      await sleep(POLL_MS);
      this.sources.forEach((source, i) => {
        if (firstReplyMs.has(source)) return;
        const reply = this.replies(i).find((r) => r.receivedAt - r.rttMs >= sentAfter);
        if (reply !== undefined) firstReplyMs.set(source, reply.receivedAt - sinceEpochMs);
      });
    }
    const unanswered = this.sources.filter((source) => !firstReplyMs.has(source));
    return { firstReplyMs, unanswered, worstMs: Math.max(0, ...firstReplyMs.values()) };
  }

  /** Ends every ping (the lab's cleanup would too). */
  stop(): void {
    for (const ping of this.pings) if (!hasExited(ping)) ping.kill('SIGKILL');
  }

  /** Every reply source `i` has logged so far. */
  private replies(i: number): readonly Reply[] {
    return this.logs[i]!.update();
  }
}
