/**
 * The simulated cluster (Simulator): serves its nodes on the wire, answers the wizard's drill harness (destructive
 * calls, data report, node views, the trainee's `given/` files), saves its state, and starts and stops. Quorum and
 * membership are ClusterMembership's (membership.ts); building a cluster is fresh-cluster.ts and saved-state.ts;
 * startSimulator is start.ts.
 */
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { readKeyBucket } from '../etcd/keys.js';
import { buildEtcdSnapshot, type HistoryEvent } from '../etcd/writer.js';
import {
  caToJson,
  generateCa,
  issueServerCert,
  spkiFingerprint,
  talosconfigYaml,
  type CertificateAuthority,
  type PemPair,
} from '../talos/pki.js';
import type { ClusterView } from './api.js';
import { SimClock } from './clock.js';
import { toSavedHistory, type EtcdMemberInfo } from './etcd-backend.js';
import type { FaultInjector } from './faults.js';
import { ClusterMembership } from './membership.js';
import type { SimNode } from './node.js';
import type { ClusterHooks } from './node-state.js';
import { RealEtcd } from './real-etcd.js';
import type { SavedState } from './saved-state.js';
import { nodeAddress, scenarioInfo, type Scenario } from './scenario.js';
import { SimWire } from './server.js';
import { SimStartError } from './start-error.js';
import { SIM_CONTEXT, type DataReport, type DestructiveCalls, type SimCluster, type SimNodeView } from './types.js';

export class Simulator extends ClusterMembership implements SimCluster, ClusterView, ClusterHooks {
  readonly context = SIM_CONTEXT;
  readonly clock: SimClock;
  private wire!: SimWire;
  private faultInjector!: FaultInjector;
  /** With `etcd: 'real'`: the given snapshot etcd saved while seeding. */
  realGivenSnapshot: string | null = null;
  endpoints: string[] = [];
  nodes: string[] = [];
  allNodes: string[] = [];
  port = 0;
  talosconfigPath = '';
  caPem = '';
  maintenanceFingerprints: Record<string, string> = {};
  scenario;

  constructor(
    readonly def: Scenario,
    readonly dir: string,
    readonly addressBase: string,
    speed: number,
    readonly pki: {
      ca: CertificateAuthority;
      client: PemPair;
      serverCerts: Record<string, PemPair>;
      maintenanceCerts: Record<string, PemPair>;
    },
    readonly originalConfigs: Record<string, string>,
    readonly fullHistory: HistoryEvent[],
    readonly originalMembers: EtcdMemberInfo[],
    readonly lastWriteRevision: number,
    private restored: SavedState['restored'],
  ) {
    super();
    this.clock = new SimClock(speed);
    this.scenario = scenarioInfo(def, addressBase);
    this.caPem = pki.ca.certPem;
  }

  get timing(): Scenario['timing'] {
    return this.def.timing;
  }

  countCall(kind: keyof DestructiveCalls, node: SimNode): void {
    node.calls[kind]++;
  }

  clockSleep(simMs: number, signal: AbortSignal): Promise<boolean> {
    return this.clock.sleep(simMs, signal);
  }

  realMs(simMs: number): number {
    return this.clock.real(simMs);
  }

  /**
   * Records what the restored snapshot held, read with the toolkit's reader (the restore already accepted the file).
   * Awaited before the node deletes the upload: a read still in flight when the file went would fail. A file that
   * cannot be read leaves the restored member's own keys as the record.
   */
  async onRestored(node: SimNode, snapshotFile: string): Promise<void> {
    const revision = node.etcd.revision() ?? 0;
    this.restored = { node: node.address, revision, snapshotKeys: [...node.etcd.liveKeys()] };
    const keys = await readKeyBucket(snapshotFile).catch(() => null);
    if (!keys) return;
    const snapshotKeys = [...keys].map(([key, value]): [string, string] => [key, value.toString('utf8')]);
    this.restored = { node: node.address, revision, snapshotKeys };
  }

  offline(node: SimNode): void {
    if (!this.stopped) this.wire.offline(node);
  }

  async relisten(node: SimNode): Promise<void> {
    if (this.stopped) return;
    // Made when a machine first enters maintenance mode (e.g. after its STATE was wiped): startup stays quick.
    if (node.inMaintenance && !this.pki.maintenanceCerts[node.address]) {
      const cert = await maintenanceCertificate(node.address);
      this.pki.maintenanceCerts[node.address] = cert;
      this.maintenanceFingerprints[node.address] = spkiFingerprint(cert.certPem);
    }
    await this.wire.relisten(node);
  }

  // ---- SimCluster ----

  destructiveCalls(): DestructiveCalls {
    const calls: DestructiveCalls = {
      reset: {},
      bootstrap: {},
      apply: {},
      reboot: {},
      recover: {},
      removeMember: {},
      leave: {},
      forfeitLeadership: {},
      defragment: {},
      alarmDisarm: {},
      serviceRestart: {},
    };
    for (const node of this.nodesList) {
      for (const kind of Object.keys(calls) as (keyof DestructiveCalls)[]) calls[kind][node.address] = node.calls[kind];
    }
    return calls;
  }

  dataReport(): DataReport {
    const restored = this.restored;
    const etcd = this.fleet ? ('real' as const) : ('model' as const);
    if (!restored)
      return {
        lastWriteRevision: this.lastWriteRevision,
        restoredRevision: null,
        lostRevisions: 0,
        keysMatchSnapshot: null,
        etcd,
      };
    const node = this.nodesList.find((n) => n.address === restored.node);
    const now = node ? [...node.etcd.liveKeys()] : [];
    const expected = new Map(restored.snapshotKeys);
    const match = now.length === expected.size && now.every(([k, v]) => expected.get(k) === v);
    return {
      lastWriteRevision: this.lastWriteRevision,
      restoredRevision: restored.revision,
      lostRevisions: Math.max(0, this.lastWriteRevision - restored.revision),
      keysMatchSnapshot: match,
      etcd,
    };
  }

  view(): SimNodeView[] {
    return this.nodesList.map((n) => ({
      address: n.address,
      hostname: n.hostname,
      machineType: n.inMaintenance || !n.state.type ? 'maintenance' : n.state.type,
      etcdState: n.etcdState,
      reachable: n.reachable,
      etcdRevision: n.etcd.revision(),
      ...(n.etcd instanceof RealEtcd ? { etcdClientUrl: n.etcd.clientUrl } : {}),
    }));
  }

  async writeGiven(incidentDir: string): Promise<string[]> {
    const written: string[] = [];
    /** Writes a given file unless it is there already (a resumed drill keeps its files, and their dates). */
    const put = async (relative: string, content: Buffer | string, mtime?: Date): Promise<void> => {
      const path = join(incidentDir, relative);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      try {
        await writeFile(path, content, { flag: 'wx', mode: 0o600 });
        written.push(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        return;
      }
      if (mtime) await utimes(path, mtime, mtime);
    };
    for (const file of this.scenario.given) {
      if (file.kind === 'machine-config' && file.node) await put(file.path, this.originalConfigs[file.node] ?? '');
    }
    const snapshot = this.def.given.snapshot;
    const file = this.scenario.given.find((g) => g.kind === 'snapshot');
    // The wizard tells a snapshot file's age by its mtime: dated when the routine backup took it, not now.
    const takenAt = snapshot?.ageMinutes ? new Date(Date.now() - snapshot.ageMinutes * 60_000) : undefined;
    if (snapshot && file && this.realGivenSnapshot) {
      // saved by etcd itself (etcdctl snapshot save) at that revision while the scenario's data were written
      await put(file.path, await readFile(this.realGivenSnapshot), takenAt);
    } else if (snapshot && file) {
      const upTo = this.lastWriteRevision - snapshot.revisionsBehind;
      const history = this.fullHistory.filter((e) => e.revision <= upTo);
      const members = this.originalMembers.map((m) => ({
        id: m.id,
        name: m.name,
        peerURLs: m.peerUrls,
        clientURLs: m.clientUrls,
      }));
      await put(file.path, buildEtcdSnapshot({ history, consistentIndex: 1000 + history.length, members }), takenAt);
    }
    return written;
  }

  async saveState(path: string): Promise<void> {
    // a real member is asked again (its keys too), so the state and the data report say what etcd holds now
    await Promise.all(this.nodesList.map((n) => n.etcd.refresh?.({ keys: true })));
    const state: SavedState = {
      format: 'talos-dr-sim-state/1',
      scenario: this.def,
      addressBase: this.addressBase,
      port: this.port,
      speed: this.clock.speed,
      ca: caToJson(this.pki.ca),
      client: this.pki.client,
      serverCerts: this.pki.serverCerts,
      maintenanceCerts: this.pki.maintenanceCerts,
      originalConfigs: this.originalConfigs,
      fullHistory: toSavedHistory(this.fullHistory),
      originalMembers: this.originalMembers,
      lastWriteRevision: this.lastWriteRevision,
      restored: this.restored,
      faultsRemaining: this.faultInjector.remaining,
      nodes: await Promise.all(
        this.nodesList.map(async (n) => {
          const upload = await readFile(n.uploadPath).catch(() => null);
          return {
            state: n.state,
            etcd: n.etcd.save(),
            calls: { ...n.calls },
            ...(upload ? { upload: upload.toString('base64') } : {}),
          };
        }),
      ),
    };
    await writeFileAtomic(path, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.stop();
    await this.wire.close();
    await this.fleet?.stopAll();
  }

  // ---- start ----

  startFaultClock(): void {
    this.faultInjector.applyUnreachable(this.nodesList);
    for (const fault of this.def.faults) {
      if (fault.kind !== 'down') continue;
      this.nodesList.find((n) => n.hostname === fault.node)?.powerOffFor((fault.forSec ?? 0) * 1000);
    }
    this.apiServerWrites();
  }

  /** A resumed drill: the background writes go on, a powered-off node still boots when it was due to. */
  resumeClocks(): void {
    for (const node of this.nodesList) node.schedulePowerOn();
    this.apiServerWrites();
  }

  attach(nodes: SimNode[], faults: FaultInjector): void {
    this.nodesList.push(...nodes);
    this.faultInjector = faults;
    this.wire = new SimWire(
      { view: this, faults, resolve: (t) => this.resolve(t), scratchDir: join(this.dir, 'scratch') },
      {
        caPem: this.pki.ca.certPem,
        serverCert: (n) => this.pki.serverCerts[n.address] as PemPair,
        maintenanceCert: (n) => this.pki.maintenanceCerts[n.address] as PemPair,
      },
    );
  }

  async listen(port: number): Promise<void> {
    try {
      this.port = await this.wire.listenAll(this.nodesList, port);
    } catch (error) {
      // Everything started so far stops, the cluster's clock too: a timer left running (a crash-looping etcd's
      // 5 s restarts) kept a refused `talos-dr sim` alive after its sentence.
      await this.stop();
      const text = error instanceof Error ? error.message : String(error);
      if (/EADDRINUSE|address already in use|No address added/i.test(text)) {
        throw new SimStartError(
          `Port ${port} is already in use on ${this.addressBase}; pick another with --port (0 picks a free one) or another --address-base.`,
        );
      }
      if (/EADDRNOTAVAIL|Cannot assign/i.test(text)) {
        throw new SimStartError(
          `Cannot listen on ${this.addressBase}; use a 127.x.y.z address with --address-base.`,
          'usage',
        );
      }
      throw new SimStartError(`The simulator could not listen on port ${port}: ${text.split('\n')[0]}.`);
    }
    const controlPlane = this.def.nodes
      .map((n, i) => ({ n, address: nodeAddress(this.addressBase, i) }))
      .filter(({ n }) => n.type !== 'worker');
    this.nodes = controlPlane.map((c) => c.address);
    this.endpoints = this.nodes.map((a) => `${a}:${this.port}`);
    this.allNodes = this.nodesList.map((n) => n.address);
    for (const [address, cert] of Object.entries(this.pki.maintenanceCerts)) {
      this.maintenanceFingerprints[address] = spkiFingerprint(cert.certPem);
    }
  }

  async writeTalosconfig(path: string): Promise<void> {
    const yaml = talosconfigYaml({
      context: SIM_CONTEXT,
      endpoints: this.endpoints,
      nodes: this.nodes,
      ca: this.pki.ca,
      client: this.pki.client,
    });
    try {
      await writeFile(path, yaml, { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new SimStartError(
          `${path} already exists; the simulator never overwrites a talosconfig, so pick another --dir or remove it.`,
          'usage',
        );
      }
      throw new SimStartError(`Cannot write ${path}; pick a folder you can write to with --dir.`);
    }
    this.talosconfigPath = path;
  }
}

/** A blank machine makes its own throwaway CA and certificate; nobody can verify it, talosctl pins or skips it. */
export async function maintenanceCertificate(address: string): Promise<PemPair> {
  const own = await generateCa({ commonName: 'maintenance' });
  return issueServerCert(own, { ips: [address], dnsNames: ['talos-maintenance'] });
}
