/**
 * A bond as the operator writes it, outside the option words themselves: lnlbd's
 * `--bond "<name> [option=value ...] [slaves=dev1,dev2]"` and the config file's `bond = ...`
 * line, and the names in the admin socket's `bond.*` arguments (which lnlbctl checks too,
 * before it asks the daemon). The option words go through the bonding option table
 * (`resolveBondOptions`, src/bond/options.ts), the one path every bond option takes, so the
 * flag, the file, lnlbctl and the daemon refuse the same words with the same message.
 */

import { resolveBondOptions } from '../bond/options.js';
import { isLnlbError, lnlbError } from '../errors.js';

/** A bond to create when lnlbd starts (`--bond`, config `bond =`). */
export interface BondSpec {
  /** The bond's device name (1..15 bytes). */
  name: string;
  /** The driver's `key=value` option words, in the order given (checked), without `slaves=`. */
  options: string[];
  /** The devices to enslave once it exists, in order; empty: none (`lnlbctl bond enslave` later). */
  slaves: string[];
}

/** IFNAMSIZ without its NUL. */
export const DEVICE_NAME_MAX = 15;

export const DEVICE_NAME_ACCEPTED = `a device name of 1 to ${DEVICE_NAME_MAX} bytes (no '/', ':', '%' or white space)`;

/**
 * What is wrong with a device name, as the kernel's dev_valid_name sees it, and a '%' (the
 * kernel would take `bond%d` for a pattern and pick a number); undefined: nothing.
 */
export function deviceNameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > DEVICE_NAME_MAX || /[\s/:%]/.test(name) || name === '.' || name === '..') {
    return `expected ${DEVICE_NAME_ACCEPTED}, got ${JSON.stringify(name)}`;
  }
  return undefined;
}

const SPEC_FORM = '"<name> [option=value ...] [slaves=dev1,dev2]"';

/**
 * Parses one `--bond` value: the bond's name, then option words, and at most one
 * `slaves=dev1,dev2` word anywhere after the name. Throws LNLB_ERR_CLI_BAD_FLAG naming the
 * flag, the value and the word (a bad option word: the option table's own message).
 */
export function parseBondSpec(raw: string, flag: string): BondSpec {
  const text = raw.trim();
  const bad = (message: string): never => {
    throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${flag}: ${JSON.stringify(text)}: ${message}`);
  };
  const words = text === '' ? [] : text.split(/\s+/);
  const name = words[0];
  if (name === undefined) throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${flag}: expected ${SPEC_FORM}, got an empty value`);
  if (name.includes('=')) bad(`the first word is the bond's name (e.g. bond0 ${name}), got the option word ${JSON.stringify(name)}`);
  const nameProblem = deviceNameProblem(name);
  if (nameProblem !== undefined) bad(`the bond's name: ${nameProblem}`);

  const options: string[] = [];
  let slaves: string[] | undefined;
  for (const word of words.slice(1)) {
    if (!word.startsWith('slaves=')) {
      options.push(word);
      continue;
    }
    if (slaves !== undefined) bad(`${word}: slaves= is given twice; list every slave in one slaves=dev1,dev2`);
    const list = word.slice('slaves='.length).split(',');
    const seen = new Set<string>();
    for (const dev of list) {
      const problem = deviceNameProblem(dev);
      if (problem !== undefined) bad(`${word}: ${dev === '' ? `expected slaves=dev1,dev2 (${DEVICE_NAME_ACCEPTED} each)` : problem}`);
      if (dev === name) bad(`${word}: ${name} cannot be a slave of itself`);
      if (seen.has(dev)) bad(`${word}: ${dev} is given twice`);
      seen.add(dev);
    }
    slaves = list;
  }
  try {
    resolveBondOptions(options);
  } catch (err) {
    if (isLnlbError(err) && err.code === 'LNLB_ERR_BOND_OPTION') bad(err.message);
    throw err;
  }
  return { name, options, slaves: slaves ?? [] };
}

/**
 * Every `--bond` of a daemon together: one bond per name, and a device a slave of one bond
 * at most (and not a bond itself). Throws LNLB_ERR_CLI_BAD_FLAG naming the flag.
 */
export function checkBondSpecs(specs: readonly BondSpec[], flag: string): BondSpec[] {
  const bonds = new Set<string>();
  const slaveOf = new Map<string, string>();
  const bad = (message: string): never => {
    throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${flag}: ${message}`);
  };
  for (const spec of specs) {
    if (bonds.has(spec.name)) bad(`${spec.name} is given twice; give each bond once, with all its options`);
    if (slaveOf.has(spec.name)) bad(`${spec.name} is a slave of ${slaveOf.get(spec.name)!} already; a bond cannot also be a slave`);
    bonds.add(spec.name);
    for (const dev of spec.slaves) {
      const owner = slaveOf.get(dev);
      if (owner !== undefined) bad(`${dev} is a slave of ${owner} already; a device can be the slave of one bond only`);
      if (bonds.has(dev)) bad(`${spec.name}: ${dev} is a bond; a bond cannot also be a slave`);
      slaveOf.set(dev, spec.name);
    }
  }
  return [...specs];
}

// ---------------------------------------------------------------------------------------------
// Admin arguments (the `bond.*` commands; lnlbctl runs the same checks before it asks)

function badArgument(what: string, message: string): never {
  throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${what}: ${message}`);
}

/** A bond or device name argument; `what` names it in the message (`name`, `bond`). */
export function deviceArgument(value: unknown, what: string): string {
  if (typeof value !== 'string') return badArgument(what, `expected ${DEVICE_NAME_ACCEPTED}, got ${value === undefined ? 'nothing' : typeof value}`);
  const problem = deviceNameProblem(value);
  if (problem !== undefined) badArgument(what, problem);
  return value;
}

/** A non-empty list of device names, each once. */
export function devicesArgument(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0) return badArgument(what, `expected a non-empty list of devices, each ${DEVICE_NAME_ACCEPTED}`);
  const seen = new Set<string>();
  return value.map((dev: unknown) => {
    const name = deviceArgument(dev, what);
    if (seen.has(name)) badArgument(what, `${name} is given twice`);
    seen.add(name);
    return name;
  });
}

/** A list of option words (strings; their content is the option table's to check); absent: none. */
export function optionWordsArgument(value: unknown, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((w): w is string => typeof w === 'string')) {
    return badArgument(what, 'expected a list of key=value words such as mode=802.3ad miimon=100');
  }
  return value;
}
