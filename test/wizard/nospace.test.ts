/**
 * The NOSPACE playbook's effects on their own: the quota read from a machine config (only that value, whatever the
 * config's shape), and whether a defragment sent before a crash happened, decided from the member's sizes now.
 */
import { describe, expect, it } from 'vitest';
import { defragLanded, quotaFromConfig } from '../../src/wizard/nospace.js';
import type { EtcdMemberStatus } from '../../src/talos/types.js';

const status = (dbSize: number, dbSizeInUse: number): EtcdMemberStatus => ({
  memberId: 'a1',
  protocolVersion: '3.6.0',
  storageVersion: '3.6.0',
  dbSize: BigInt(dbSize),
  dbSizeInUse: BigInt(dbSizeInUse),
  leader: 'a1',
  raftIndex: 1n,
  raftTerm: 1n,
  raftAppliedIndex: 1n,
  errors: [],
  isLearner: false,
});

describe('quota-backend-bytes from the machine config', () => {
  it('reads cluster.etcd.extraArgs in a multi-document config, as a string or a list; else null', () => {
    const config = [
      'version: v1alpha1',
      'machine:',
      '  type: controlplane',
      'cluster:',
      '  etcd:',
      '    extraArgs:',
      '      election-timeout: "5000"',
      '      quota-backend-bytes: "4294967296"',
      '---',
      'apiVersion: v1alpha1',
      'kind: HostnameConfig',
      'hostname: cp-1',
    ].join('\n');
    expect(quotaFromConfig(config)).toBe(4294967296);
    expect(quotaFromConfig(config.replace('"4294967296"', '["1048576"]'))).toBe(1048576);
    expect(quotaFromConfig('version: v1alpha1\ncluster:\n  etcd: {}\n')).toBeNull();
    expect(quotaFromConfig('cluster: [unclosed')).toBeNull();
    expect(quotaFromConfig(config.replace('"4294967296"', '"lots"'))).toBeNull();
  });
});

describe('a defragment sent before a crash', () => {
  it('happened when the file shrank since it was sent, or is down to what etcd uses; not when unchanged', () => {
    expect(defragLanded({ dbSize: 1_200_000 }, status(500_000, 480_000))).toBe(true);
    expect(defragLanded(null, status(480_000, 480_000))).toBe(true);
    expect(defragLanded({ dbSize: 1_200_000 }, status(1_200_000, 480_000))).toBe(false);
    expect(defragLanded(null, status(1_200_000, 480_000))).toBe(false);
  });
});
