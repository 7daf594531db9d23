/** lnlbctl: talks to lnlbd over the admin socket in its run directory. */

import { Command, CommanderError } from 'commander';
import { isLnlbError } from '../errors.js';
import { adminRequest } from './admin-client.js';
import type { StatusJson } from './admin-protocol.js';
import { formatStatus } from './status-format.js';

async function main(argv: string[]): Promise<void> {
  const program = new Command('lnlbctl')
    .description('control and inspect a running lnlbd')
    .option('--run-dir <dir>', "the daemon's run directory", '/run/lnlb')
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  program
    .command('status')
    .description('members of each cluster interface, with their status and weight')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const status = (await adminRequest(runDir, 'status')) as StatusJson;
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return;
      process.stderr.write(`lnlbctl: ${err.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    throw err;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`lnlbctl: ${isLnlbError(err) || err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
