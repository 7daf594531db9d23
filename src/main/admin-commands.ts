/** The admin socket's commands: each one a thin call into the daemon or one of its interfaces. */

import type { BondCreateResult, BondListJson, BondShowJson, StatusJson } from './admin-protocol.js';
import type { AdminServer } from './admin-server.js';
import { deviceArgument, devicesArgument, optionWordsArgument } from './bond-spec.js';
import type { Daemon } from './daemon.js';
import { checkDrainOptions } from './drain.js';
import { interfaceArguments } from './options.js';
import { ADDIF_BINDING_NAMES } from './interface-preflight.js';

export function registerAdminCommands(admin: AdminServer, daemon: Daemon): void {
  admin.register('status', async (): Promise<StatusJson> => ({ interfaces: await daemon.status() }));
  admin.register('addif', async (args) => {
    const { vip, bind, name, overrides } = interfaceArguments({
      vip: args['vip'],
      bind: args['dev'],
      name: args['name'],
      rule: args['rule'],
      handler: args['handler'],
      keyFile: args['keyFile'],
      insecureNoAuth: args['insecureNoAuth'],
      vlan: args['vlan'],
    });
    return { name: await daemon.addInterface(vip, bind, name, overrides, { names: ADDIF_BINDING_NAMES }) };
  });
  admin.register('delif', async (args) => {
    await daemon.removeInterface(String(args['interface']));
    return { removed: args['interface'] };
  });
  // Windows NLB's per-interface operations (docs/operating.md).
  admin.register('stop', (args) => ({ interface: args['interface'], ...daemon.get(args['interface']).stopCluster() }));
  admin.register('start', (args) => ({ interface: args['interface'], ...daemon.get(args['interface']).startCluster() }));
  admin.register('suspend', (args) => ({ interface: args['interface'], ...daemon.get(args['interface']).suspend() }));
  admin.register('resume', (args) => ({ interface: args['interface'], ...daemon.get(args['interface']).resume() }));
  admin.register('drainstop', async (args) => {
    const cluster = daemon.get(args['interface']);
    const options = checkDrainOptions(args);
    if (args['wait'] === false) {
      cluster.drainInBackground(options);
      return { interface: cluster.name, state: 'draining', waited: false };
    }
    return { interface: cluster.name, ...(await cluster.drainstop(options)) };
  });
  admin.register('weight_mode', (args) => daemon.get(args['interface']).setWeightMode(String(args['mode'])));
  admin.register('set_weight', (args) => daemon.get(args['interface']).setManualWeight(String(args['weight'])));
  admin.register('resync', (args) => daemon.get(args['interface']).resync());
  admin.register('conntrack', (args) => {
    const limit = typeof args['limit'] === 'number' && args['limit'] > 0 ? args['limit'] : 10_000;
    return daemon.get(args['interface']).conntrack(limit);
  });

  // Bonds (`lnlbctl bond ...`): names checked here, option words by the bond option table.
  admin.register('bond.create', (args): Promise<BondCreateResult> => daemon.bonds.create(deviceArgument(args['name'], 'name'), optionWordsArgument(args['options'], 'options')));
  admin.register('bond.enslave', (args) => daemon.bonds.enslave(deviceArgument(args['bond'], 'bond'), devicesArgument(args['devices'], 'devices')));
  admin.register('bond.release', (args) => daemon.bonds.release(deviceArgument(args['bond'], 'bond'), devicesArgument(args['devices'], 'devices')));
  admin.register('bond.show', (args): Promise<BondShowJson> => daemon.bonds.show(deviceArgument(args['bond'], 'bond')));
  admin.register('bond.list', (): BondListJson => ({ bonds: daemon.bonds.names() }));
  admin.register('bond.destroy', async (args) => {
    const bond = deviceArgument(args['bond'], 'bond');
    await daemon.bonds.destroy(bond);
    return { destroyed: bond };
  });
}
