/**
 * Every talosctl line a step shows must work when pasted: each is split as a shell would, its command resolved and
 * every flag checked against the flags talosctl v1.13.9 defines for that command (siderolabs/talos, read in
 * cmd/talosctl/cmd/talos/*.go@v1.13.9 at the lines cited below), with their value or boolean kind.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { STEPS } from '../../machines/recovery/steps.js';
import {
  recoveryMachine,
  type AssessOutput,
  type BackupOutput,
  type ConnectOutput,
  type NodeView,
  type SnapshotInfo,
  type SnapshotOption,
} from '../../machines/recovery.js';

type Flags = Record<string, 'value' | 'bool'>;

/** root.go@v1.13.9:64-79: persistent flags of every command. */
const GLOBAL: Flags = {
  talosconfig: 'value',
  nodes: 'value',
  n: 'value',
  endpoints: 'value',
  e: 'value',
  cluster: 'value',
  c: 'value',
  context: 'value',
};

/** The commands the steps print, with their own flags. */
const COMMANDS: Record<string, Flags> = {
  // version.go@v1.13.9:110-115
  version: { short: 'bool', client: 'bool', insecure: 'bool', i: 'bool', json: 'bool' },
  // etcd.go@v1.13.9:206,268,335 (members, status, snapshot <path>): no flags of their own that the steps use
  'etcd members': {},
  'etcd status': {},
  'etcd snapshot': {},
  // service.go@v1.13.9:24 (service [<id> ...])
  service: {},
  // copy.go@v1.13.9:24-25 (copy, alias cp)
  cp: {},
  // get.go@v1.13.9:318-321
  get: { namespace: 'value', output: 'value', o: 'value', watch: 'bool', w: 'bool', insecure: 'bool', i: 'bool' },
  // edit.go@v1.13.9:216-219, with --mode from helpers/mode.go@v1.13.9:72-84
  edit: { namespace: 'value', mode: 'value', m: 'value', 'dry-run': 'bool', timeout: 'value' },
  // reboot.go@v1.13.9:134-144 (track.go adds --wait/--debug/--timeout)
  reboot: { progress: 'value', mode: 'value', m: 'value', drain: 'bool', 'drain-timeout': 'value', wait: 'bool' },
  // reset.go@v1.13.9:188-193
  reset: {
    graceful: 'bool',
    reboot: 'bool',
    insecure: 'bool',
    'wipe-mode': 'value',
    'user-disks-to-wipe': 'value',
    'system-labels-to-wipe': 'value',
    wait: 'bool',
  },
  // apply-config.go@v1.13.9:38-39,123-129
  'apply-config': {
    file: 'value',
    f: 'value',
    insecure: 'bool',
    i: 'bool',
    'dry-run': 'bool',
    'cert-fingerprint': 'value',
    'config-patch': 'value',
    p: 'value',
    timeout: 'value',
    mode: 'value',
    m: 'value',
  },
  // bootstrap.go@v1.13.9:82-83
  bootstrap: { 'recover-from': 'value', 'recover-skip-hash-check': 'bool' },
  // health.go@v1.13.9:216-222
  health: {
    'init-node': 'value',
    'control-plane-nodes': 'value',
    'worker-nodes': 'value',
    'wait-timeout': 'value',
    'k8s-endpoint': 'value',
    server: 'bool',
    'run-e2e': 'bool',
  },
};

/** Words as a POSIX shell splits them (single and double quotes removed), up to a redirect or a comment. */
function shellWords(line: string): { words: string[]; redirect: string | null } {
  const words: string[] = [];
  let cur: string | null = null;
  let quote: string | null = null;
  let redirect: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      cur ??= '';
    } else if (ch === ' ') {
      if (cur !== null) words.push(cur);
      cur = null;
    } else if (ch === '#' && cur === null) {
      break;
    } else if (ch === '>' && cur === null) {
      redirect = line.slice(i + 1).trim();
      break;
    } else cur = (cur ?? '') + ch;
  }
  expect(quote, `unbalanced quote in: ${line}`).toBeNull();
  if (cur !== null) words.push(cur);
  return { words, redirect };
}

interface Parsed {
  command: string;
  flags: Record<string, string[]>;
  args: string[];
  redirect: string | null;
}

function parse(line: string): Parsed {
  const { words, redirect } = shellWords(line);
  expect(words[0], line).toBe('talosctl');
  const path: string[] = [];
  const flags: Record<string, string[]> = {};
  const args: string[] = [];
  let command: string | null = null;
  for (let i = 1; i < words.length; i++) {
    const w = words[i] as string;
    if (w.startsWith('-')) {
      const [rawName, inline] = w.replace(/^--?/, '').split(/=(.*)/s) as [string, string | undefined];
      const known = { ...GLOBAL, ...(command ? COMMANDS[command] : {}) };
      const kind = known[rawName];
      expect(kind, `talosctl ${command ?? ''} has no flag ${w.split('=')[0]} (in: ${line})`).toBeDefined();
      let value = inline ?? 'true';
      if (kind === 'value' && inline === undefined) value = words[++i] as string;
      if (kind === 'bool') expect(['true', 'false'], `${w} takes no value (in: ${line})`).toContain(value);
      expect(value, `${w} needs a value (in: ${line})`).toBeDefined();
      (flags[rawName] ??= []).push(value);
    } else if (command === null) {
      path.push(w);
      const name = path.join(' ');
      if (name in COMMANDS) command = name;
      else if (name === 'copy') command = 'cp';
      else if (name === 'apply') command = 'apply-config';
    } else args.push(w);
  }
  expect(command, `no talosctl command known in: ${line}`).not.toBeNull();
  return { command: command as string, flags, args, redirect };
}

const NODES = ['10.5.0.2', '10.5.0.3', '10.5.0.4'];
const WIPES = [
  { node: '10.5.0.2', labels: ['EPHEMERAL'] },
  { node: '10.5.0.3', labels: ['EPHEMERAL', 'ETCD'] },
];

describe('the talosctl lines each step shows', () => {
  const lines = STEPS.flatMap((s) => [...s.talosctl({ nodes: NODES, wipes: WIPES }), ...s.talosctl({ nodes: [] })]);

  it.each(lines)('%s: every flag is one talosctl has for that command', (line) => {
    parse(line);
  });

  it('the configuration backup writes the machine configuration itself, not the resource wrapper', () => {
    const backups = STEPS.find((s) => s.name === 'backup configs')!.talosctl({ nodes: NODES });
    expect(backups).toHaveLength(NODES.length);
    for (const [i, line] of backups.entries()) {
      const p = parse(line);
      expect(p.command).toBe('get');
      expect(p.args).toEqual(['mc', 'v1alpha1']);
      expect(p.flags.n).toEqual([NODES[i]]);
      // -o yaml prints node/metadata/spec (output/yaml.go@v1.13.9:49-83); jsonpath {.spec} prints the spec's text
      expect(p.flags.o ?? p.flags.output).toEqual(['jsonpath={.spec}']);
      expect(p.redirect).toBe(`configs/${NODES[i]}.yaml`);
    }
  });

  it('the reset line names every label the tool wipes on each node', () => {
    const resets = STEPS.find((s) => s.name === 'prepare nodes')!
      .talosctl({ nodes: NODES, wipes: WIPES })
      .map(parse)
      .filter((p) => p.command === 'reset');
    expect(resets.map((p) => [p.flags.n, p.flags['system-labels-to-wipe']])).toEqual([
      [['10.5.0.2'], ['EPHEMERAL']],
      [['10.5.0.3'], ['EPHEMERAL', 'ETCD']],
    ]);
    for (const p of resets) expect([p.flags.graceful, p.flags.reboot]).toEqual([['false'], ['true']]);
  });

  it("a drill's step 6 row names ETCD for a node whose etcd has a dedicated volume, once the plan is made", async () => {
    const view = (node: string): NodeView => ({
      node,
      hostname: node,
      reachable: true,
      machineType: 'controlplane',
      etcdService: 'Failed',
      etcdHealthy: false,
      members: null,
      membersError: 'etcd is not running',
      status: null,
      statusError: 'etcd is not running',
    });
    const machine = recoveryMachine.provide({
      actors: {
        connect: fromPromise<ConnectOutput, { nodes: string[] }>(async () => ({
          nodes: NODES.map((node) => ({ node, ok: true, version: 'v1.14.0', error: null })),
        })),
        assess: fromPromise<AssessOutput, { nodes: string[] }>(async () => ({
          observations: NODES.map(view),
          volumes: { '10.5.0.2': 'partition' as const, '10.5.0.3': null, '10.5.0.4': null },
        })),
        acquireSnapshot: fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(async () => ({
          file: '/tmp/s.db',
          sha256: 'ab'.repeat(32),
          method: 'file' as const,
          node: null,
          raftAppliedIndex: null,
          revision: 10,
          totalKeys: 10,
          totalSize: 4096,
          hash: '01234567',
          integrity: 'verified' as const,
          kind: 'bbolt' as const,
          structure: 'ok' as const,
          usable: true,
          needsSkipHashCheck: false,
          problems: [],
          bytes: 4096,
          takenAt: 0,
        })),
        backupConfigs: fromPromise<BackupOutput, { nodes: string[]; blank: string[] }>(async () => ({
          configs: NODES.map((node) => ({ node, file: `/tmp/${node}.yaml`, source: 'live' as const, error: null })),
        })),
        observe: fromPromise<NodeView[], { nodes: string[] }>(async () => NODES.map(view)),
      },
    });
    const actor = createActor(machine, {
      input: { nodes: NODES, operator: 'tester', mode: 'drill', givenSnapshots: ['/tmp/s.db'] },
    }).start();
    await waitFor(actor, (s) => s.context.prompt?.id === 'confirm-nodes');
    actor.send({ type: 'answer.yes' });
    await waitFor(actor, (s) => s.context.prompt?.id === 'snapshot-source');
    actor.send({ type: 'choose', option: 'file:/tmp/s.db' });
    const at = await waitFor(actor, (s) => s.context.prompt?.id.startsWith('prepare:') ?? false);
    actor.stop();
    const row = at.context.steps.find((s) => s.name === 'prepare nodes')!;
    expect(row.talosctl.filter((l) => l.includes(' reset '))).toEqual([
      'talosctl -n 10.5.0.2 reset --graceful=false --reboot --system-labels-to-wipe EPHEMERAL --system-labels-to-wipe ETCD',
      'talosctl -n 10.5.0.3 reset --graceful=false --reboot --system-labels-to-wipe EPHEMERAL',
      'talosctl -n 10.5.0.4 reset --graceful=false --reboot --system-labels-to-wipe EPHEMERAL',
    ]);
  });
});
