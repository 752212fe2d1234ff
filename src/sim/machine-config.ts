/**
 * Realistic Talos v1alpha1 machine configurations for the simulated nodes: what `talosctl gen config` produces, with
 * fake but plausible secrets. They are what a user backs up (MachineConfigs COSI resource) and re-applies to a
 * replaced machine, so they must parse, carry the machine type and hostname, and stay byte-identical when round-tripped.
 */
import { randomBytes } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { talosTag } from './versions.js';

export type MachineTypeName = 'init' | 'controlplane' | 'worker';

/** Secrets shared by every node of one cluster (one `talosctl gen secrets` bundle). */
export interface ClusterSecrets {
  clusterId: string;
  clusterSecret: string;
  bootstrapToken: string;
  trustdToken: string;
  secretboxKey: string;
  osCa: { crt: string; key: string };
  k8sCa: { crt: string; key: string };
  aggregatorCa: { crt: string; key: string };
  etcdCa: { crt: string; key: string };
  serviceAccountKey: string;
}

const b64 = (bytes: number): string => randomBytes(bytes).toString('base64');
const token = (a: number, b: number): string =>
  `${randomBytes(a).toString('hex').slice(0, a)}.${randomBytes(b).toString('hex').slice(0, b)}`;

/** Base64 of a PEM block with random content: looks like Talos's, is no usable key. */
function fakePem(label: string, bytes: number): string {
  const body = (
    randomBytes(bytes)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n');
  return Buffer.from(`-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`).toString('base64');
}

const pair = (keyLabel: string): { crt: string; key: string } => ({
  crt: fakePem('CERTIFICATE', 420),
  key: fakePem(keyLabel, 90),
});

export function generateClusterSecrets(): ClusterSecrets {
  return {
    clusterId: b64(32),
    clusterSecret: b64(32),
    bootstrapToken: token(6, 16),
    trustdToken: token(6, 16),
    secretboxKey: b64(32),
    osCa: pair('ED25519 PRIVATE KEY'),
    k8sCa: pair('EC PRIVATE KEY'),
    aggregatorCa: pair('EC PRIVATE KEY'),
    etcdCa: pair('EC PRIVATE KEY'),
    serviceAccountKey: fakePem('EC PRIVATE KEY', 120),
  };
}

export interface NodeConfigInput {
  type: MachineTypeName;
  hostname: string;
  address: string;
  talosVersion: string;
  clusterName: string;
  controlPlaneEndpoint: string;
  /** Talos 1.14 with a dedicated ETCD partition: adds a VolumeConfig document. */
  etcdPartition: boolean;
  /** etcd's --quota-backend-bytes, set as Talos documents it: cluster.etcd.extraArgs (absent: etcd's default). */
  etcdQuotaBytes?: number | null;
  /** cluster.discovery.enabled (absent: true, as talosctl gen config writes it). */
  discovery?: boolean;
}

const KUBERNETES_VERSION = 'v1.34.1';

export { talosTag };

/** The multi-document YAML of one node, as `talosctl gen config` writes it (comments left out). */
export function machineConfigYaml(secrets: ClusterSecrets, node: NodeConfigInput): string {
  const controlPlane = node.type !== 'worker';
  const lines = [
    'version: v1alpha1',
    'debug: false',
    'persist: true',
    'machine:',
    `    type: ${node.type}`,
    `    token: ${secrets.trustdToken}`,
    '    ca:',
    `        crt: ${secrets.osCa.crt}`,
    ...(controlPlane ? [`        key: ${secrets.osCa.key}`] : ['        key: ""']),
    '    certSANs: []',
    '    kubelet:',
    `        image: ghcr.io/siderolabs/kubelet:${KUBERNETES_VERSION}`,
    '        defaultRuntimeSeccompProfileEnabled: true',
    '        disableManifestsDirectory: true',
    '    network:',
    `        hostname: ${node.hostname}`,
    '        interfaces:',
    '            - interface: eth0',
    `              addresses: [${node.address}/24]`,
    '    install:',
    '        disk: /dev/sda',
    `        image: ghcr.io/siderolabs/installer:${talosTag(node.talosVersion)}`,
    '        wipe: false',
    '    features:',
    '        rbac: true',
    '        stableHostname: true',
    '        apidCheckExtKeyUsage: true',
    '        diskQuotaSupport: true',
    '        kubePrism:',
    '            enabled: true',
    '            port: 7445',
    '        hostDNS:',
    '            enabled: true',
    '            forwardKubeDNSToHost: true',
    ...(controlPlane ? ['    nodeLabels:', '        node.kubernetes.io/exclude-from-external-load-balancers: ""'] : []),
    'cluster:',
    `    id: ${secrets.clusterId}`,
    `    secret: ${secrets.clusterSecret}`,
    '    controlPlane:',
    `        endpoint: ${node.controlPlaneEndpoint}`,
    `    clusterName: ${node.clusterName}`,
    '    network:',
    '        dnsDomain: cluster.local',
    '        podSubnets:',
    '            - 10.244.0.0/16',
    '        serviceSubnets:',
    '            - 10.96.0.0/12',
    `    token: ${secrets.bootstrapToken}`,
    '    ca:',
    `        crt: ${secrets.k8sCa.crt}`,
    `        key: ${controlPlane ? secrets.k8sCa.key : '""'}`,
  ];
  if (controlPlane) {
    lines.push(
      `    secretboxEncryptionSecret: ${secrets.secretboxKey}`,
      '    aggregatorCA:',
      `        crt: ${secrets.aggregatorCa.crt}`,
      `        key: ${secrets.aggregatorCa.key}`,
      '    serviceAccount:',
      `        key: ${secrets.serviceAccountKey}`,
      '    apiServer:',
      `        image: registry.k8s.io/kube-apiserver:${KUBERNETES_VERSION}`,
      '        certSANs:',
      `            - ${new URL(node.controlPlaneEndpoint).hostname}`,
      '    controllerManager:',
      `        image: registry.k8s.io/kube-controller-manager:${KUBERNETES_VERSION}`,
      '    proxy:',
      `        image: registry.k8s.io/kube-proxy:${KUBERNETES_VERSION}`,
      '    scheduler:',
      `        image: registry.k8s.io/kube-scheduler:${KUBERNETES_VERSION}`,
      '    etcd:',
      '        ca:',
      `            crt: ${secrets.etcdCa.crt}`,
      `            key: ${secrets.etcdCa.key}`,
    );
    if (node.etcdQuotaBytes) {
      lines.push('        extraArgs:', `            quota-backend-bytes: "${node.etcdQuotaBytes}"`);
    }
  }
  lines.push(
    '    discovery:',
    `        enabled: ${node.discovery === false ? 'false' : 'true'}`,
    '        registries:',
    '            kubernetes:',
    '                disabled: true',
    '            service: {}',
  );
  if (node.etcdPartition) {
    lines.push(
      '---',
      'apiVersion: v1alpha1',
      'kind: VolumeConfig',
      'name: ETCD',
      'provisioning:',
      '    diskSelector:',
      '        match: system_disk',
      '    minSize: 2GiB',
      '    maxSize: 8GiB',
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface ParsedConfig {
  type: MachineTypeName;
  hostname: string | null;
}

/** A config a node refuses: the gRPC InvalidArgument text. */
export class InvalidConfig extends Error {}

/** What a node reads from a submitted config; throws InvalidConfig with Talos's texts. */
export function parseMachineConfig(yamlText: string): ParsedConfig {
  let docs;
  try {
    docs = parseAllDocuments(yamlText);
  } catch (error) {
    throw new InvalidConfig(`failed to parse config: ${(error as Error).message}`, { cause: error });
  }
  const list = Array.isArray(docs) ? docs : [docs];
  const firstError = list.flatMap((d) => d.errors)[0];
  if (firstError) throw new InvalidConfig(`failed to parse config: ${firstError.message.split('\n')[0]}`);
  const v1alpha1 = list.map((d) => d.toJS() as unknown).find(isV1alpha1);
  if (!v1alpha1) {
    throw new InvalidConfig(
      "the applied machine configuration doesn't contain v1alpha1 config, did you mean to patch the machine config instead?",
    );
  }
  const machine = (v1alpha1.machine ?? {}) as { type?: unknown; network?: { hostname?: unknown } };
  const type = machine.type;
  if (type !== 'init' && type !== 'controlplane' && type !== 'worker') {
    throw new InvalidConfig(`1 error occurred:\n\t* unknown machine type ${JSON.stringify(type ?? '')}\n\n`);
  }
  const hostname = typeof machine.network?.hostname === 'string' ? machine.network.hostname : null;
  return { type, hostname };
}

function isV1alpha1(doc: unknown): doc is { version: string; machine?: unknown } {
  return typeof doc === 'object' && doc !== null && (doc as { version?: unknown }).version === 'v1alpha1';
}

/** The same config with `machine.type` changed (what converting an init node does), everything else untouched. */
export function withMachineType(yamlText: string, type: MachineTypeName): string {
  return yamlText.replace(/^(\s{4}type:\s*)(init|controlplane|worker)\s*$/m, `$1${type}`);
}

/** What each distinct config text says about discovery (a few texts per cluster, read on every Members list). */
const discoveryByConfig = new Map<string, boolean>();

/**
 * The config's cluster.discovery.enabled as Talos reads it (siderolabs/talos
 * internal/app/machined/pkg/controllers/cluster/config.go@v1.13.0:44-48: DiscoveryEnabled from the active config);
 * a config without the field, or one that does not parse, counts as enabled (Talos's default).
 */
export function discoveryEnabled(yamlText: string): boolean {
  const known = discoveryByConfig.get(yamlText);
  if (known !== undefined) return known;
  let enabled = true;
  try {
    const v1alpha1 = parseAllDocuments(yamlText)
      .map((d) => d.toJS() as unknown)
      .find(isV1alpha1) as { cluster?: { discovery?: { enabled?: unknown } } } | undefined;
    enabled = v1alpha1?.cluster?.discovery?.enabled !== false;
  } catch {
    // not a config Talos would hold; the default stands
  }
  if (discoveryByConfig.size > 64) discoveryByConfig.clear();
  discoveryByConfig.set(yamlText, enabled);
  return enabled;
}
