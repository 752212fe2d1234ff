/**
 * Drill scenarios: YAML files in scenarios/ (shipped) or a user's own file. A scenario says what nodes exist, what
 * state each is in, what data etcd held, what the trainee is given, which faults to inject, the time limit and the
 * right outcome. A wrong user-written scenario gets one clear sentence naming the file and the problem.
 */
import { DEFAULT_TALOS_VERSION, TALOS_VERSIONS, type TalosVersion } from './versions.js';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { listScenarioNames, scenariosDir } from '../paths.js';
import { CODE_NAMES } from '../talos/errors.js';
import type { ExpectedOutcome, GivenFile, ScenarioInfo, ScenarioProcedure } from './types.js';

export type NodeRunState = 'running' | 'maintenance' | 'down';
/**
 * The etcd condition a node starts in:
 * healthy      Running, serving, part of a quorum;
 * no-quorum    Running and serving clients, but quorum is lost (leader 0, "etcdserver: no leader");
 * not-serving  Running but restarted without quorum: never serves clients (calls wait until the caller's deadline);
 * crashloop    the etcd process exits at once (damaged data): Waiting "Error running …, going to restart forever";
 * stopped      etcd not running (Finished), data kept;
 * wiped        the data is gone: etcd waits in Preparing for a bootstrap (or a quorum to join).
 */
export type EtcdCondition = 'healthy' | 'no-quorum' | 'not-serving' | 'crashloop' | 'stopped' | 'wiped';

export interface ScenarioNode {
  hostname: string;
  type: 'init' | 'controlplane' | 'worker';
  state: NodeRunState;
  etcd: EtcdCondition;
  /** How many revisions this member's data lags behind the newest write. */
  behind: number;
  timeSync: boolean;
  /** Bytes of free pages in this member's database file (compacted, not yet defragmented): dbSize = in use + these. */
  freeBytes: number;
}

/** An alarm a member raised before the drill starts (etcd replicates it to every member through raft). */
export interface ScenarioAlarm {
  /** Hostname of the member that raised it. */
  node: string;
  alarm: 'NOSPACE' | 'CORRUPT';
}

export type { ScenarioProcedure };

export type FaultKind = 'latency' | 'cut-stream' | 'unreachable' | 'fail' | 'reboot-during' | 'down' | 'hold';

export interface ScenarioFault {
  kind: FaultKind;
  /** Hostname of the node the fault applies to. */
  node: string;
  /** RPC method name (e.g. EtcdSnapshot); all methods when absent. */
  method?: string;
  /** latency: added delay per call (simulated ms). */
  ms?: number;
  /** cut-stream: bytes sent before the stream ends (with status OK, as Talos does). */
  afterBytes?: number;
  /** unreachable, down: how long, from the start (simulated seconds). */
  forSec?: number;
  /** fail / cut-stream / reboot-during / hold: how many calls are hit (default 1). */
  times?: number;
  /** fail: the gRPC status name and message. */
  code?: string;
  message?: string;
}

export interface Scenario {
  name: string;
  description: string;
  expectedOutcome: ExpectedOutcome;
  rightAnswer: string;
  /** The procedure a trainer expects; derived from expectedOutcome when the file does not say. */
  procedure: ScenarioProcedure;
  /** A planned swap's machine to take out: the hostname of one of its control-plane nodes. */
  retire?: string;
  timeLimitSec: number;
  talosVersion: TalosVersion;
  /** etcd's --quota-backend-bytes on every member (machine config cluster.etcd.extraArgs); null: etcd's default. */
  etcdQuotaBytes: number | null;
  alarms: ScenarioAlarm[];
  etcdPartition: boolean;
  /**
   * The machine config's cluster.discovery.enabled (default true). Off, no node publishes or pulls affiliates, so
   * Members.cluster.talos.dev lists nothing anywhere. Absent in drills saved before the field existed: on.
   */
  discovery?: boolean;
  timing: { rebootSec: number; resetSec: number; joinSec: number; restoreSec: number; bootSec: number };
  data: { keys: number; valueBytes: number };
  nodes: ScenarioNode[];
  given: {
    configs: string[];
    /** ageMinutes: how long before the drill starts the snapshot was taken (its file's mtime); 0 = now. */
    snapshot: { revisionsBehind: number; name: string; ageMinutes: number } | null;
  };
  faults: ScenarioFault[];
  /** Where it was read from. */
  source: string;
}

/** A scenario file that is wrong: the message is the one sentence the user sees. */
export class ScenarioError extends Error {}

const OUTCOMES: ExpectedOutcome[] = [
  'recovered',
  'member-replaced',
  'nospace-cleared',
  'stopped-quorum-intact',
  'nothing-to-do',
  'failed',
];
const NODE_TYPES = ['init', 'controlplane', 'worker'] as const;
const RUN_STATES: NodeRunState[] = ['running', 'maintenance', 'down'];
const ETCD_CONDITIONS: EtcdCondition[] = ['healthy', 'no-quorum', 'not-serving', 'crashloop', 'stopped', 'wiped'];
const FAULT_KINDS: FaultKind[] = ['latency', 'cut-stream', 'unreachable', 'fail', 'reboot-during', 'down', 'hold'];
const PROCEDURES: ScenarioProcedure[] = ['full-recovery', 'replace-member', 'nospace', 'wait', 'none'];
const ALARMS = ['NOSPACE', 'CORRUPT'] as const;
/** etcd's own default quota (etcd-io/etcd: server/storage/quota.go@v3.6.14:30, DefaultQuotaBytes, 2 GiB). */
export const ETCD_DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const GRPC_CODES = CODE_NAMES.filter((name) => name !== 'OK');
/** Each node listens on its own loopback address; 256 covers the fan-out benchmark's 200 with room to spare. */
export const MAX_NODES = 256;

type Obj = Record<string, unknown>;

class Reader {
  constructor(private readonly file: string) {}

  fail(what: string): never {
    throw new ScenarioError(
      `Scenario ${this.file}: ${what}; fix the file or pick a shipped scenario (talos-dr drill --list).`,
    );
  }

  object(value: unknown, where: string, allowed: string[]): Obj {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(`${where} must be a mapping`);
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail(`unknown key "${key}" in ${where} (allowed: ${allowed.join(', ')})`);
    }
    return value as Obj;
  }

  string(obj: Obj, key: string, where: string, fallback?: string): string {
    const value = obj[key] ?? fallback;
    if (typeof value !== 'string' || value.trim() === '') this.fail(`${where}.${key} must be a non-empty string`);
    return value;
  }

  number(obj: Obj, key: string, where: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = obj[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.fail(`${where}.${key} must be a number from ${min} to ${max}`);
    }
    return value;
  }

  bool(obj: Obj, key: string, where: string, fallback: boolean): boolean {
    const value = obj[key] ?? fallback;
    if (typeof value !== 'boolean') this.fail(`${where}.${key} must be true or false`);
    return value;
  }

  oneOf<T extends string>(obj: Obj, key: string, where: string, choices: readonly T[], fallback?: T): T {
    const value = obj[key] ?? fallback;
    if (!choices.includes(value as T)) this.fail(`${where}.${key} must be one of ${choices.join(', ')}`);
    return value as T;
  }

  list(obj: Obj, key: string, where: string): unknown[] {
    const value = obj[key] ?? [];
    if (!Array.isArray(value)) this.fail(`${where}.${key} must be a list`);
    return value;
  }
}

const TOP_KEYS = [
  'name',
  'description',
  'expectedOutcome',
  'rightAnswer',
  'procedure',
  'retire',
  'timeLimitSec',
  'talosVersion',
  'etcdPartition',
  'discovery',
  'timing',
  'data',
  'nodes',
  'given',
  'faults',
  'etcdQuotaBytes',
  'alarms',
];

function readNode(r: Reader, raw: unknown, i: number): ScenarioNode {
  const where = `nodes[${i}]`;
  const o = r.object(raw, where, ['hostname', 'type', 'state', 'etcd', 'behind', 'timeSync', 'freeBytes']);
  const type = r.oneOf(o, 'type', where, NODE_TYPES);
  return {
    hostname: r.string(o, 'hostname', where),
    type,
    state: r.oneOf(o, 'state', where, RUN_STATES, 'running'),
    etcd: r.oneOf(o, 'etcd', where, ETCD_CONDITIONS, 'healthy'),
    behind: r.number(o, 'behind', where, 0, 0, 1_000_000),
    timeSync: r.bool(o, 'timeSync', where, true),
    freeBytes: r.number(o, 'freeBytes', where, 0, 0, 64 * 1024 * 1024 * 1024),
  };
}

function readAlarm(r: Reader, raw: unknown, i: number, nodes: ScenarioNode[]): ScenarioAlarm {
  const where = `alarms[${i}]`;
  const o = r.object(raw, where, ['node', 'alarm']);
  const node = r.string(o, 'node', where);
  const member = nodes.find((n) => n.hostname === node);
  if (!member) r.fail(`${where}.node "${node}" is not the hostname of any node`);
  if (member.type === 'worker') r.fail(`${where}.node "${node}" is a worker, which runs no etcd`);
  return { node, alarm: r.oneOf(o, 'alarm', where, ALARMS, 'NOSPACE') };
}

/** What a scenario that does not name its procedure expects, from its outcome. */
function procedureFor(outcome: ExpectedOutcome): ScenarioProcedure {
  if (outcome === 'recovered' || outcome === 'failed') return 'full-recovery';
  if (outcome === 'stopped-quorum-intact' || outcome === 'member-replaced') return 'replace-member';
  if (outcome === 'nospace-cleared') return 'nospace';
  return 'none';
}

function readFault(r: Reader, raw: unknown, i: number, hostnames: Set<string>): ScenarioFault {
  const where = `faults[${i}]`;
  const o = r.object(raw, where, ['kind', 'node', 'method', 'ms', 'afterBytes', 'forSec', 'times', 'code', 'message']);
  const kind = r.oneOf(o, 'kind', where, FAULT_KINDS);
  const node = r.string(o, 'node', where);
  if (!hostnames.has(node)) r.fail(`${where}.node "${node}" is not the hostname of any node`);
  const fault: ScenarioFault = { kind, node, times: r.number(o, 'times', where, 1, 1, 1000) };
  if (o.method !== undefined) fault.method = r.string(o, 'method', where);
  if (kind === 'latency') fault.ms = r.number(o, 'ms', where, NaN, 1, 600_000);
  if (kind === 'cut-stream') fault.afterBytes = r.number(o, 'afterBytes', where, NaN, 0, 1e12);
  if (kind === 'unreachable' || kind === 'down') fault.forSec = r.number(o, 'forSec', where, NaN, 1, 86_400);
  if (kind === 'fail') {
    fault.code = r.oneOf(o, 'code', where, GRPC_CODES, 'Unavailable');
    fault.message = r.string(o, 'message', where, 'connection reset by peer');
  }
  return fault;
}

/**
 * The etcd conditions must agree with the quorum the members make: quorum holds when more than half of the members
 * (the control-plane nodes) run etcd. A healthy member needs that majority; a member without quorum
 * (no-quorum, not-serving) cannot have it.
 */
function checkQuorumConsistency(r: Reader, nodes: ScenarioNode[]): void {
  // every control-plane node is in the membership the scenario starts from, replaced and wiped ones included
  const members = nodes.filter((n) => n.type !== 'worker');
  if (members.length === 0) return;
  const runs = (n: ScenarioNode): boolean =>
    n.state === 'running' && n.timeSync && ['healthy', 'no-quorum', 'not-serving'].includes(n.etcd);
  const running = members.filter(runs);
  const quorum = running.length > members.length / 2;
  const sentence = `${running.length} of ${members.length} etcd members run`;
  if (quorum) {
    const without = running.find((n) => n.etcd === 'no-quorum' || n.etcd === 'not-serving');
    if (without) {
      r.fail(
        `${without.hostname} is "${without.etcd}" but ${sentence}, which is a quorum; mark it healthy or stop more members`,
      );
    }
  } else {
    const healthy = running.find((n) => n.etcd === 'healthy');
    if (healthy) {
      r.fail(
        `${healthy.hostname} is "healthy" but only ${sentence}, which is no quorum; mark it no-quorum or run more members`,
      );
    }
  }
}

/** Validates a parsed scenario document. */
export function validateScenario(doc: unknown, file: string): Scenario {
  const r = new Reader(file);
  const top = r.object(doc, 'the scenario', TOP_KEYS);
  const rawNodes = r.list(top, 'nodes', 'the scenario');
  if (rawNodes.length < 1 || rawNodes.length > MAX_NODES)
    r.fail(`it must have between 1 and ${MAX_NODES} nodes, not ${rawNodes.length}`);
  const nodes = rawNodes.map((raw, i) => readNode(r, raw, i));
  const hostnames = new Set(nodes.map((n) => n.hostname));
  if (hostnames.size !== nodes.length) r.fail('two nodes have the same hostname');
  if (!nodes.some((n) => n.type !== 'worker')) r.fail('it needs at least one control-plane (or init) node');
  checkQuorumConsistency(r, nodes);
  const talosVersion = r.oneOf(top, 'talosVersion', 'the scenario', TALOS_VERSIONS, DEFAULT_TALOS_VERSION);
  const etcdPartition = r.bool(top, 'etcdPartition', 'the scenario', false);
  if (etcdPartition && talosVersion !== '1.14') r.fail('etcdPartition needs talosVersion "1.14"');
  const timing = r.object(top.timing ?? {}, 'timing', ['rebootSec', 'resetSec', 'joinSec', 'restoreSec', 'bootSec']);
  const data = r.object(top.data ?? {}, 'data', ['keys', 'valueBytes']);
  const given = r.object(top.given ?? {}, 'given', ['configs', 'snapshot']);
  const configs = r.list(given, 'configs', 'given').map((h, i): string => {
    if (typeof h === 'string' && hostnames.has(h)) return h;
    return r.fail(`given.configs[${i}] must be the hostname of a node`);
  });
  let snapshot: Scenario['given']['snapshot'] = null;
  if (given.snapshot !== undefined) {
    const s = r.object(given.snapshot, 'given.snapshot', ['revisionsBehind', 'name', 'ageMinutes']);
    const name = r.string(s, 'name', 'given.snapshot', 'etcd-backup.snapshot');
    if (basename(name) !== name) r.fail('given.snapshot.name must be a plain file name');
    snapshot = {
      revisionsBehind: r.number(s, 'revisionsBehind', 'given.snapshot', 0, 0, 1_000_000),
      name,
      ageMinutes: r.number(s, 'ageMinutes', 'given.snapshot', 0, 0, 366 * 24 * 60),
    };
  }
  const expectedOutcome = r.oneOf(top, 'expectedOutcome', 'the scenario', OUTCOMES);
  let retire: string | undefined;
  if (top.retire !== undefined) {
    retire = r.string(top, 'retire', 'the scenario');
    const node = nodes.find((n) => n.hostname === retire);
    if (!node || node.type === 'worker') r.fail(`retire "${retire}" is not the hostname of a control-plane node`);
  }
  const quota =
    top.etcdQuotaBytes === undefined ? null : r.number(top, 'etcdQuotaBytes', 'the scenario', NaN, 1, 8 * 2 ** 30);
  return {
    name: r.string(top, 'name', 'the scenario'),
    description: r.string(top, 'description', 'the scenario'),
    expectedOutcome,
    rightAnswer: r.string(top, 'rightAnswer', 'the scenario'),
    procedure: r.oneOf(top, 'procedure', 'the scenario', PROCEDURES, procedureFor(expectedOutcome)),
    ...(retire !== undefined ? { retire } : {}),
    etcdQuotaBytes: quota,
    alarms: r.list(top, 'alarms', 'the scenario').map((raw, i) => readAlarm(r, raw, i, nodes)),
    timeLimitSec: r.number(top, 'timeLimitSec', 'the scenario', 1800, 10, 86_400),
    talosVersion,
    etcdPartition,
    discovery: r.bool(top, 'discovery', 'the scenario', true),
    timing: {
      rebootSec: r.number(timing, 'rebootSec', 'timing', 45, 0, 3600),
      resetSec: r.number(timing, 'resetSec', 'timing', 15, 0, 3600),
      joinSec: r.number(timing, 'joinSec', 'timing', 8, 0, 3600),
      restoreSec: r.number(timing, 'restoreSec', 'timing', 5, 0, 3600),
      bootSec: r.number(timing, 'bootSec', 'timing', 3, 0, 3600),
    },
    data: {
      keys: r.number(data, 'keys', 'data', 120, 0, 200_000),
      valueBytes: r.number(data, 'valueBytes', 'data', 300, 1, 1_000_000),
    },
    nodes,
    given: { configs, snapshot },
    faults: r.list(top, 'faults', 'the scenario').map((raw, i) => readFault(r, raw, i, hostnames)),
    source: file,
  };
}

const SCENARIO_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Loads a shipped scenario by name, or a user's scenario by path (anything with a slash or a .yaml ending). */
export function loadScenario(nameOrPath: string): Scenario {
  const isPath = nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath);
  if (!isPath && !SCENARIO_NAME.test(nameOrPath)) {
    throw new ScenarioError(
      `"${nameOrPath}" is not a scenario name; run "talos-dr drill --list" to see the scenarios.`,
    );
  }
  const file = isPath ? nameOrPath : join(scenariosDir(), `${nameOrPath}.yaml`);
  if (!existsSync(file)) {
    throw new ScenarioError(
      isPath
        ? `Scenario file ${file} does not exist; check the path.`
        : `There is no scenario "${nameOrPath}"; run "talos-dr drill --list" to see the ${listScenarioNames().length} scenarios.`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    const first = (error as Error).message.split('\n')[0] ?? 'invalid YAML';
    throw new ScenarioError(`Scenario ${file} is not valid YAML (${first}); fix the file.`, { cause: error });
  }
  return validateScenario(doc, file);
}

/** An IPv4 address as a number (0 … 2^32-1), or null when it is not a dotted quad. */
export function ipv4ToNumber(address: string): number | null {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!match) return null;
  const parts = match.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return parts.reduce((n, p) => n * 256 + p, 0);
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/**
 * Addresses count up from the base: 127.0.0.2, 127.0.0.3, … and on past .255 into the next block (127.0.0.255,
 * 127.0.1.0, 127.0.1.1, …), so every node of a large cluster has its own loopback address (Linux routes all of
 * 127.0.0.0/8 to lo, .0 and .255 included).
 */
export function nodeAddress(base: string, index: number): string {
  const start = ipv4ToNumber(base);
  if (start === null) throw new Error(`not an IPv4 address: ${base}`);
  return numberToIpv4(start + index);
}

/** 540 → "9 h", 90 → "1 h 30 min", 25 → "25 min", 2880 → "2 days". */
function formatAge(minutes: number): string {
  if (minutes >= 2 * 24 * 60 && minutes % (24 * 60) === 0) return `${minutes / (24 * 60)} days`;
  const h = Math.floor(minutes / 60);
  const m = Math.round(minutes % 60);
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

export function givenFiles(scenario: Scenario, addressBase: string): GivenFile[] {
  const files: GivenFile[] = scenario.given.configs.map((hostname) => {
    const address = nodeAddress(
      addressBase,
      scenario.nodes.findIndex((n) => n.hostname === hostname),
    );
    return {
      path: `given/configs/${address}.yaml`,
      kind: 'machine-config',
      node: address,
      description: `machine configuration backup of ${hostname} (${address})`,
    };
  });
  const snapshot = scenario.given.snapshot;
  if (snapshot) {
    files.push({
      path: `given/snapshots/${snapshot.name}`,
      kind: 'snapshot',
      description: `an older etcd snapshot from the routine backups (${snapshot.revisionsBehind} revisions behind the newest data${snapshot.ageMinutes > 0 ? `, taken ${formatAge(snapshot.ageMinutes)} before the drill started` : ''})`,
    });
  }
  return files;
}

export function scenarioInfo(scenario: Scenario, addressBase: string): ScenarioInfo {
  return {
    name: scenario.name,
    description: scenario.description,
    expectedOutcome: scenario.expectedOutcome,
    rightAnswer: scenario.rightAnswer,
    procedure: scenario.procedure,
    ...(scenario.retire !== undefined ? { retire: scenario.retire } : {}),
    timeLimitSec: scenario.timeLimitSec,
    nodeCount: scenario.nodes.length,
    talosVersion: scenario.talosVersion,
    given: givenFiles(scenario, addressBase),
  };
}

export function listScenarios(addressBase = '127.0.0.2'): ScenarioInfo[] {
  return listScenarioNames().map((name) => scenarioInfo(loadScenario(name), addressBase));
}
