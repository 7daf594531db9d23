import test from 'ava';
import { createLogger, setLogLevel } from '../../../src/main/logger.js';
import { resolveDaemonOptions } from '../../../src/main/options.js';
import { LIVE_OPTIONS, planReload } from '../../../src/main/reload.js';

const base = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', keyFile: '/etc/lnlb/cluster.key' });

test('SIGHUP plan: log level and weight mode apply live; other changes wait for a restart; nothing changed, nothing to do', (t) => {
  t.deepEqual(planReload(base, base), { apply: {}, needRestart: [] });
  const next = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', keyFile: '/etc/lnlb/cluster.key', logLevel: 'debug', weightMode: 'fixed', heartbeatMs: '500', rule: '22/tcp=single' });
  const plan = planReload(base, next);
  t.deepEqual(plan.apply, { logLevel: 'debug', weightMode: 'fixed' });
  t.deepEqual(plan.needRestart.sort(), ['heartbeatMs', 'rule']);
  // The options table says which options are live (one list, where the option is defined).
  t.deepEqual([...LIVE_OPTIONS].sort(), ['logLevel', 'weightMode']);
});

test('setLogLevel reaches the loggers made from the root before the change (pino children copy the level)', (t) => {
  const root = createLogger('info');
  const child = root.child({ interface: 'nlb0' });
  const grandchild = child.child({ component: 'x' });
  t.false(grandchild.isLevelEnabled('debug'));
  setLogLevel(root, 'debug');
  t.true(child.isLevelEnabled('debug'));
  t.true(grandchild.isLevelEnabled('debug'));
  setLogLevel(root, 'warn');
  t.false(grandchild.isLevelEnabled('info'));
});
