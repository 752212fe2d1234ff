/**
 * A scenario's cluster built afresh: its PKI and machine configurations, a Kubernetes-like etcd history, each node's
 * starting state and service history, its etcd members seeded (the built-in model, or real etcd processes), and the
 * scenario's faults armed.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { HistoryEvent } from '../etcd/writer.js';
import { generateCa, issueClientCert, issueServerCert, type PemPair } from '../talos/pki.js';
import { maintenanceCertificate, Simulator } from './cluster.js';
import { memberFor, randomMemberId } from './etcd-backend.js';
import { ModelEtcd } from './model-etcd.js';
import { FaultInjector } from './faults.js';
import { generateClusterSecrets, machineConfigYaml } from './machine-config.js';
import { SimNode } from './node.js';
import { ETCD_UNHEALTHY, etcdFirstWaitingText, type NodeState, type ServiceRecord } from './node-state.js';
import { RealEtcd } from './real-etcd.js';
import { freePortOn, RealEtcdFleet } from './real-etcd-fleet.js';
import { seedRealCluster, type RealFate } from './real-etcd-seed.js';
import { nodeAddress, type Scenario, type ScenarioNode } from './scenario.js';
import { SimStartError } from './start-error.js';
import { etcdVersionOf } from './versions.js';

const KINDS = ['pods', 'services/specs', 'configmaps', 'secrets', 'deployments', 'leases'];
const NAMESPACES = ['default', 'kube-system', 'monitoring', 'payments'];

/** Kubernetes-like history: creates, a few updates and deletes, one change per revision (starting at 2). */
function generateHistory(keys: number, valueBytes: number): HistoryEvent[] {
  const history: HistoryEvent[] = [];
  const versions = new Map<string, { created: number; version: number }>();
  let revision = 1;
  const put = (key: string): void => {
    revision++;
    const prior = versions.get(key);
    const state = prior ? { created: prior.created, version: prior.version + 1 } : { created: revision, version: 1 };
    versions.set(key, state);
    const body = JSON.stringify({ kind: key.split('/')[2], name: key.split('/').pop(), rev: revision });
    const value = Buffer.alloc(Math.max(valueBytes, body.length), ' ');
    value.write(body);
    history.push({ kind: 'put', revision, key, value, createRevision: state.created, version: state.version });
  };
  const names: string[] = [];
  for (let i = 0; i < keys; i++) {
    const kind = KINDS[i % KINDS.length] ?? 'pods';
    const ns = NAMESPACES[Math.floor(i / KINDS.length) % NAMESPACES.length] ?? 'default';
    const name = `/registry/${kind}/${ns}/app-${String(i).padStart(4, '0')}`;
    names.push(name);
    put(name);
  }
  // Some churn, as a live cluster has: leases renewed, a few objects deleted.
  names.filter((n) => n.includes('/leases/')).forEach(put);
  for (const name of names.filter((_, i) => i % 17 === 5)) {
    revision++;
    history.push({ kind: 'delete', revision, key: name });
    versions.delete(name);
  }
  return history;
}

const lastRevision = (h: readonly HistoryEvent[]): number => h[h.length - 1]?.revision ?? 0;

function etcdServiceHistory(
  condition: ScenarioNode['etcd'],
  timeSync: boolean,
  now: number,
  talosVersion: string,
): ServiceRecord {
  const events: ServiceRecord['events'] = [];
  const at = (msg: string, state: string, ago: number): void => {
    events.push({ msg, state, ts: now - ago * 1000 });
  };
  at('Starting service', 'Starting', 86_400);
  at(etcdFirstWaitingText(talosVersion), 'Waiting', 86_399);
  if (!timeSync) {
    at('Waiting for time sync', 'Waiting', 86_398);
  } else if (condition === 'wiped') {
    at('Running pre state', 'Preparing', 1_200);
  } else {
    at('Running pre state', 'Preparing', 86_396);
    at('Creating service runner', 'Preparing', 86_395);
    at(`Started task etcd (PID ${2000 + Math.floor(Math.random() * 6000)}) for container etcd`, 'Running', 86_394);
    at('Health check successful', 'Running', 86_380);
    if (condition === 'no-quorum' || condition === 'not-serving')
      at(`Health check failed: ${ETCD_UNHEALTHY}`, 'Running', 600);
    if (condition === 'crashloop') {
      // the restart runner's loop: the task starts and exits again every 5 s (node.ts crashLoop)
      for (const ago of [10, 5, 0]) {
        if (ago < 10)
          at(`Started task etcd (PID ${2000 + Math.floor(Math.random() * 6000)}) for container etcd`, 'Running', ago);
        at('Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2', 'Waiting', ago);
      }
    }
    if (condition === 'stopped') at('Service finished successfully', 'Finished', 900);
  }
  const last = events[events.length - 1];
  const healthy = last?.state === 'Running' && condition === 'healthy';
  const lastChange = events.filter((e) => e.msg.startsWith('Health')).at(-1)?.ts ?? now;
  const health =
    last?.state === 'Running'
      ? { unknown: false, healthy, lastMessage: healthy ? '' : ETCD_UNHEALTHY, lastChange }
      : condition === 'crashloop'
        ? { unknown: false, healthy: false, lastMessage: 'service not running', lastChange: now }
        : { unknown: true, healthy: false, lastMessage: '', lastChange: -62135596800000 };
  return { id: 'etcd', state: last?.state ?? 'Waiting', events, health };
}

function freshNodeState(address: string, sn: ScenarioNode, def: Scenario, config: string | null): NodeState {
  return {
    address,
    hostname: sn.hostname,
    type: sn.state === 'maintenance' ? null : sn.type,
    mode: sn.state === 'maintenance' ? 'maintenance' : sn.state === 'down' ? 'off' : 'running',
    config,
    stagedConfig: null,
    talosVersion: def.talosVersion,
    etcdPartition: def.etcdPartition,
    ephemeralMounted: sn.state === 'running',
    timeSynced: sn.timeSync,
    etcdServing: sn.etcd === 'healthy' || sn.etcd === 'no-quorum',
    etcdCrashes: sn.etcd === 'crashloop',
    bootstrap: null,
    pendingReset: null,
    bootId: randomBytes(16)
      .toString('hex')
      .replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    services: {},
    eventLog: [],
  };
}

async function issuePki(addresses: { address: string; hostname: string; maintenance: boolean }[]) {
  const ca = await generateCa();
  const client = await issueClientCert(ca, { roles: ['os:admin'] });
  const serverCerts: Record<string, PemPair> = {};
  const maintenanceCerts: Record<string, PemPair> = {};
  for (const { address, hostname, maintenance } of addresses) {
    serverCerts[address] = await issueServerCert(ca, { ips: [address], dnsNames: [hostname] });
    if (maintenance) maintenanceCerts[address] = await maintenanceCertificate(address);
  }
  return { ca, client, serverCerts, maintenanceCerts };
}

export async function buildFresh(
  def: Scenario,
  dir: string,
  base: string,
  speed: number,
  etcdKind: 'model' | 'real' = 'model',
): Promise<Simulator> {
  const addresses = def.nodes.map((n, i) => ({
    address: nodeAddress(base, i),
    hostname: n.hostname,
    maintenance: n.state === 'maintenance',
  }));
  const pki = await issuePki(addresses);
  const secrets = generateClusterSecrets();
  const firstCp = addresses[def.nodes.findIndex((n) => n.type !== 'worker')]?.address ?? base;
  const originalConfigs: Record<string, string> = {};
  def.nodes.forEach((n, i) => {
    const address = nodeAddress(base, i);
    originalConfigs[address] = machineConfigYaml(secrets, {
      type: n.type,
      hostname: n.hostname,
      address,
      talosVersion: def.talosVersion,
      clusterName: 'talos-dr-sim',
      controlPlaneEndpoint: `https://${firstCp}:6443`,
      etcdPartition: def.etcdPartition,
      etcdQuotaBytes: def.etcdQuotaBytes,
      discovery: def.discovery !== false,
    });
  });
  const fullHistory = generateHistory(def.data.keys, def.data.valueBytes);
  let lastWriteRevision = lastRevision(fullHistory);
  const clusterId = randomMemberId();
  let members = def.nodes
    .map((n, i) => ({ n, address: nodeAddress(base, i) }))
    .filter(({ n }) => n.type !== 'worker')
    .map(({ n, address }) => memberFor({ name: n.hostname, address }));
  let simRef: Simulator | null = null;
  const real = etcdKind === 'real' ? await seedReal(def, dir, base, fullHistory, () => simRef?.kick()) : null;
  if (real) ({ members, lastWriteRevision } = real.seeded);
  const sim = new Simulator(def, dir, base, speed, pki, originalConfigs, fullHistory, members, lastWriteRevision, null);
  simRef = sim;
  if (real) {
    sim.fleet = real.fleet;
    sim.realGivenSnapshot = real.givenSnapshot;
  }
  const nodes: SimNode[] = [];
  for (const [i, sn] of def.nodes.entries()) {
    const address = nodeAddress(base, i);
    const root = join(dir, 'nodes', address);
    const realEtcd = real?.backends[i];
    if (realEtcd) {
      const state = freshNodeState(
        address,
        sn,
        def,
        sn.state === 'maintenance' ? null : (originalConfigs[address] ?? null),
      );
      const node = new SimNode(i, state, realEtcd, root, sim);
      if (sn.state !== 'maintenance') {
        state.services = baseServicesFor(sn.type !== 'worker');
        if (sn.type !== 'worker') {
          state.services.etcd = etcdServiceHistory(sn.etcd, sn.timeSync, Date.now(), def.talosVersion);
          if (sn.timeSync && (sn.etcd === 'healthy' || sn.etcd === 'no-quorum' || sn.etcd === 'not-serving'))
            realEtcd.start();
        }
      }
      nodes.push(node);
      continue;
    }
    const etcd = new ModelEtcd(join(root, 'var', 'lib', 'etcd'), etcdVersionOf(def.talosVersion));
    const state = freshNodeState(
      address,
      sn,
      def,
      sn.state === 'maintenance' ? null : (originalConfigs[address] ?? null),
    );
    const node = new SimNode(i, state, etcd, root, sim);
    if (sn.state !== 'maintenance') {
      state.services = baseServicesFor(sn.type !== 'worker');
      if (sn.type !== 'worker' && sn.etcd === 'wiped') {
        state.services.etcd = etcdServiceHistory(sn.etcd, sn.timeSync, Date.now(), def.talosVersion);
      } else if (sn.type !== 'worker') {
        const member = members.find((m) => m.name === sn.hostname);
        const history = fullHistory.slice(0, Math.max(0, fullHistory.length - sn.behind));
        await etcd.seed({
          clusterId,
          memberId: member?.id ?? randomMemberId(),
          members,
          history,
          consistentIndex: 5000 + history.length * 3,
          raftTerm: 7,
          alarms: def.alarms.flatMap((a) => {
            const raisedBy = members.find((m) => m.name === a.node);
            return raisedBy ? [{ memberId: raisedBy.id, alarm: a.alarm }] : [];
          }),
          freeBytes: sn.freeBytes,
        });
        state.services.etcd = etcdServiceHistory(sn.etcd, sn.timeSync, Date.now(), def.talosVersion);
        if (sn.timeSync && (sn.etcd === 'healthy' || sn.etcd === 'no-quorum' || sn.etcd === 'not-serving'))
          etcd.start();
      }
    }
    nodes.push(node);
  }
  const faults = new FaultInjector(def.faults, sim.clock);
  sim.attach(nodes, faults);
  for (const node of nodes) node.resumeCrashLoop();
  return sim;
}

/** `etcd: 'real'`: one real etcd member per node (ports per simulator), seeded through etcd's API, faults applied. */
async function seedReal(def: Scenario, dir: string, base: string, history: HistoryEvent[], onChange: () => void) {
  const fleet = new RealEtcdFleet();
  try {
    const backends: RealEtcd[] = [];
    for (const [i, sn] of def.nodes.entries()) {
      const address = nodeAddress(base, i);
      const root = join(dir, 'nodes', address);
      backends.push(
        new RealEtcd({
          fleet,
          address,
          name: sn.hostname,
          dataDir: join(root, 'var', 'lib', 'etcd'),
          clientPort: await freePortOn(address),
          peerPort: await freePortOn(address),
          logFile: join(root, 'etcd.log'),
          onChange,
        }),
      );
    }
    const fate = (sn: ScenarioNode): RealFate => {
      if (sn.state === 'maintenance' || sn.etcd === 'wiped') return 'wipe';
      if (sn.etcd === 'crashloop') return 'crash';
      return sn.state === 'running' ? 'run' : 'stop';
    };
    const given = def.given.snapshot;
    const upTo = given ? lastRevision(history) - given.revisionsBehind : null;
    const givenSnapshot = join(dir, 'etcd-given.snapshot');
    const seeded = await seedRealCluster({
      nodes: def.nodes.map((sn, i) => ({
        backend: backends[i] as RealEtcd,
        hostname: sn.hostname,
        member: sn.type !== 'worker',
        behind: sn.behind,
        fate: fate(sn),
      })),
      history,
      givenSnapshotRevision:
        upTo === null ? null : Math.max(1, lastRevision(history.filter((e) => e.revision <= upTo))),
      givenSnapshotPath: givenSnapshot,
    });
    return { fleet, backends, seeded, givenSnapshot: given ? givenSnapshot : null };
  } catch (error) {
    await fleet.stopAll();
    const text = error instanceof Error ? error.message : String(error);
    throw new SimStartError(`The real etcd cluster could not be set up: ${text.split('\n')[0]}.`);
  }
}

function baseServicesFor(controlPlane: boolean): Record<string, ServiceRecord> {
  const now = Date.now() - 86_400_000;
  const ids = ['apid', 'auditd', 'containerd', 'cri', 'dashboard', 'kubelet', 'machined', 'syslogd', 'udevd'];
  if (controlPlane) ids.push('trustd');
  const services: Record<string, ServiceRecord> = {};
  for (const id of ids.sort()) {
    services[id] = {
      id,
      state: 'Running',
      events: [
        { msg: 'Starting service', state: 'Starting', ts: now },
        { msg: 'Health check successful', state: 'Running', ts: now + 5000 },
      ],
      health: { unknown: false, healthy: true, lastMessage: '', lastChange: now + 5000 },
    };
  }
  return services;
}
