/**
 * Rate limits for input we do not control: a token bucket (work spent on strangers' frames)
 * and a log limiter (one line per key per interval, with the count of lines it held back), so
 * a flood costs bounded CPU and writes a bounded log. Pure: the time is passed in (ms).
 */

/** `ratePerSecond` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at = Number.NaN;
  /** Takes refused since the start. */
  refused = 0;

  constructor(ratePerSecond: number, burst = ratePerSecond) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new RangeError(`a token bucket needs a positive rate and a burst of at least 1, got ${ratePerSecond}/s, burst ${burst}`);
    this.#rate = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** One token if there is one (true), else counts a refusal (false). */
  take(now: number): boolean {
    if (Number.isNaN(this.#at)) this.#at = now;
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
      this.#at = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.refused++;
    return false;
  }
}

/** What the log limiter decided for one line. */
export interface LogPermit {
  /** Write the line now. */
  write: boolean;
  /** Lines of this key held back since the last one written (say so in this one). */
  suppressed: number;
}

/**
 * One line per key per `intervalMs`; the others are counted and the next line written says
 * how many were held back. Keys are bounded (`maxKeys`, the least recently written dropped:
 * a flood of distinct keys costs a bounded map, and each new key still writes at most once
 * per interval).
 */
export class LogLimiter {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  /** key → [last written at, held back since]; Map order is write order (oldest first). */
  readonly #keys = new Map<string, { at: number; suppressed: number }>();
  /** Keys dropped to stay within maxKeys. */
  evicted = 0;

  constructor(intervalMs = 10_000, maxKeys = 256) {
    this.#intervalMs = intervalMs;
    this.#maxKeys = maxKeys;
  }

  permit(key: string, now: number): LogPermit {
    const entry = this.#keys.get(key);
    if (entry !== undefined && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return { write: false, suppressed: entry.suppressed };
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#keys.delete(key);
    if (this.#keys.size >= this.#maxKeys) {
      const oldest = this.#keys.keys().next().value as string;
      this.#keys.delete(oldest);
      this.evicted++;
    }
    this.#keys.set(key, { at: now, suppressed: 0 });
    return { write: true, suppressed };
  }

  get size(): number {
    return this.#keys.size;
  }
}
