/**
 * The carrier monitor's per-slave link state (the driver's bond_miimon_inspect), pure: one
 * observation of the carrier per miimon tick in, the new state and what happened out.
 *
 *   UP ──carrier lost──► FAIL ──downdelay ticks without carrier──► DOWN  (a link failure)
 *          ▲              │ carrier back: UP again (no failure counted)
 *          │              ▼
 *   UP ◄──updelay ticks with carrier── BACK ◄──carrier seen── DOWN
 *                                       │ carrier lost: DOWN again
 *
 * Delays count in ticks (updelay / miimon, downdelay / miimon, rounded down as the driver
 * does). The driver's arithmetic: on the tick a change is seen the delay is set and, if it is
 * not already 0, decremented; each later tick decrements it; the change commits on the tick
 * that finds it at 0. So with miimon 100 and downdelay 200 a slave goes DOWN 200 ms after the
 * tick that saw the carrier go, and with a delay of 0 on that same tick.
 */

export const LinkState = { UP: 'UP', FAIL: 'FAIL', DOWN: 'DOWN', BACK: 'BACK' } as const;
export type LinkState = (typeof LinkState)[keyof typeof LinkState];

/** What one tick did to a slave's link, for logs and the status file. */
export const LinkEvent = {
  NONE: 'none',
  /** Carrier lost; DOWN follows after downdelay unless it comes back. */
  GOING_DOWN: 'going-down',
  /** Carrier back before downdelay ran out: no failure. */
  UP_AGAIN: 'up-again',
  /** Committed DOWN: counted as a link failure. */
  DOWN: 'down',
  /** Carrier seen on a DOWN slave; UP follows after updelay unless it goes again. */
  COMING_UP: 'coming-up',
  /** Carrier lost again before updelay ran out. */
  DOWN_AGAIN: 'down-again',
  /** Committed UP: usable again. */
  UP: 'up',
} as const;
export type LinkEvent = (typeof LinkEvent)[keyof typeof LinkEvent];

export interface SlaveLink {
  state: LinkState;
  /** Ticks left before a pending change (FAIL → DOWN, BACK → UP) commits. */
  delay: number;
  /** Link failures (committed DOWNs) since enslaving: the status file's "Link Failure Count". */
  failures: number;
}

export interface LinkDelays {
  /** updelay / miimon, whole ticks. */
  upTicks: number;
  /** downdelay / miimon, whole ticks. */
  downTicks: number;
}

/** Delays in ticks from the options in ms (rounded down, as the driver rounds them). */
export function linkDelays(miimonMs: number, updelayMs: number, downdelayMs: number): LinkDelays {
  if (miimonMs <= 0) return { upTicks: 0, downTicks: 0 };
  return { upTicks: Math.floor(updelayMs / miimonMs), downTicks: Math.floor(downdelayMs / miimonMs) };
}

/**
 * A slave as enslaving finds it: carrier up is UP (or BACK when there is an updelay, so it is
 * not used before updelay has passed), carrier down is DOWN.
 */
export function initialLink(carrier: boolean, delays: LinkDelays): SlaveLink {
  if (!carrier) return { state: LinkState.DOWN, delay: 0, failures: 0 };
  if (delays.upTicks > 0) return { state: LinkState.BACK, delay: delays.upTicks, failures: 0 };
  return { state: LinkState.UP, delay: 0, failures: 0 };
}

/** One miimon tick for one slave: updates `link` in place and says what happened. */
export function inspectLink(link: SlaveLink, carrier: boolean, delays: LinkDelays): LinkEvent {
  switch (link.state) {
    case LinkState.UP:
      if (carrier) return LinkEvent.NONE;
      link.state = LinkState.FAIL;
      link.delay = delays.downTicks;
      return failTick(link) ?? LinkEvent.GOING_DOWN;
    case LinkState.FAIL:
      if (carrier) {
        link.state = LinkState.UP;
        link.delay = 0;
        return LinkEvent.UP_AGAIN;
      }
      return failTick(link) ?? LinkEvent.NONE;
    case LinkState.DOWN:
      if (!carrier) return LinkEvent.NONE;
      link.state = LinkState.BACK;
      link.delay = delays.upTicks;
      return backTick(link) ?? LinkEvent.COMING_UP;
    case LinkState.BACK:
      if (!carrier) {
        link.state = LinkState.DOWN;
        link.delay = 0;
        return LinkEvent.DOWN_AGAIN;
      }
      return backTick(link) ?? LinkEvent.NONE;
  }
}

function failTick(link: SlaveLink): LinkEvent | undefined {
  if (link.delay <= 0) {
    link.state = LinkState.DOWN;
    link.failures++;
    return LinkEvent.DOWN;
  }
  link.delay--;
  return undefined;
}

function backTick(link: SlaveLink): LinkEvent | undefined {
  if (link.delay <= 0) {
    link.state = LinkState.UP;
    return LinkEvent.UP;
  }
  link.delay--;
  return undefined;
}

/** The slave may carry traffic (FAIL still does, as in the driver, until DOWN commits). */
export function linkUsable(link: SlaveLink): boolean {
  return link.state === LinkState.UP || link.state === LinkState.FAIL;
}

/** "MII Status" of a slave in the status file. */
export function miiStatus(link: SlaveLink): 'up' | 'down' | 'going down' | 'going back' {
  switch (link.state) {
    case LinkState.UP:
      return 'up';
    case LinkState.DOWN:
      return 'down';
    case LinkState.FAIL:
      return 'going down';
    case LinkState.BACK:
      return 'going back';
  }
}
