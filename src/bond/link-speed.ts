/**
 * A slave's speed and duplex from sysfs, as the bonding driver reads them (bond_update_speed_duplex)
 * for 802.3ad's keys and balance-tlb's loads. On its own so that the main thread (bond-manager.ts)
 * reads them without loading the bond thread and every mode with it.
 */
import { readFileSync } from 'node:fs';

function readSys(dev: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${dev}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Speed and duplex as the device reports them in sysfs (-1 / unknown when it does not). */
export function readLinkSpeed(dev: string): { speed: number; fullDuplex: boolean | undefined } {
  const speed = Number(readSys(dev, 'speed'));
  const duplex = readSys(dev, 'duplex');
  return { speed: Number.isInteger(speed) && speed > 0 ? speed : 0, fullDuplex: duplex === 'full' ? true : duplex === 'half' ? false : undefined };
}
