/** The admin socket's commands: each one a thin call into the daemon or one of its interfaces. */

import type { StatusJson } from './admin-protocol.js';
import type { AdminServer } from './admin-server.js';
import type { Daemon } from './daemon.js';
import { interfaceArguments } from './options.js';

export function registerAdminCommands(admin: AdminServer, daemon: Daemon): void {
  admin.register('status', async (): Promise<StatusJson> => ({ interfaces: await daemon.status() }));
  admin.register('addif', async (args) => {
    const { vip, bind, name, overrides } = interfaceArguments({ vip: args['vip'], bind: args['dev'], name: args['name'], rule: args['rule'], handler: args['handler'] });
    return { name: await daemon.addInterface(vip, bind, name, overrides) };
  });
  admin.register('delif', async (args) => {
    await daemon.removeInterface(String(args['interface']));
    return { removed: args['interface'] };
  });
  admin.register('weight_mode', (args) => daemon.get(args['interface']).setWeightMode(String(args['mode'])));
  admin.register('set_weight', (args) => daemon.get(args['interface']).setManualWeight(String(args['weight'])));
  admin.register('resync', (args) => daemon.get(args['interface']).resync());
  admin.register('conntrack', (args) => {
    const limit = typeof args['limit'] === 'number' && args['limit'] > 0 ? args['limit'] : 10_000;
    return daemon.get(args['interface']).conntrack(limit);
  });
}
