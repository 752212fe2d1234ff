import type { NodeRow, StepView } from '../../components/view-model.js';

export const NOW = Date.UTC(2026, 10, 24, 3, 12, 0);

export const nodes: NodeRow[] = [
  {
    address: '127.0.0.2',
    hostname: 'cp-1',
    reachable: true,
    machineType: 'controlplane',
    etcdService: 'Running',
    healthy: true,
    members: 3,
    raftAppliedIndex: '48213',
    lastEvent: 'Health check successful',
    lastAnsweredAt: NOW - 1000,
  },
  {
    address: '127.0.0.3',
    hostname: 'cp-2',
    reachable: true,
    machineType: 'controlplane',
    etcdService: 'Failed',
    healthy: false,
    members: 3,
    raftAppliedIndex: '47990',
    lastEvent: 'Error running Containerd(etcd): failed to start: exit status 2',
    lastAnsweredAt: NOW - 1000,
  },
  {
    address: '127.0.0.4',
    hostname: null,
    reachable: false,
    machineType: 'unknown',
    etcdService: null,
    healthy: null,
    members: null,
    raftAppliedIndex: null,
    lastEvent: null,
    lastAnsweredAt: NOW - 42_000,
  },
];

export const steps: StepView[] = [
  { n: 1, title: 'Connect', status: 'done', result: '3 nodes answer, Talos v1.11.2', durationMs: 420 },
  { n: 2, title: 'Assess', status: 'done', result: 'quorum lost: 1 of 3 members healthy', durationMs: 1800 },
  { n: 3, title: 'Snapshot', status: 'current' },
  { n: 4, title: 'Back up configs', status: 'pending' },
  { n: 5, title: 'Init nodes', status: 'pending' },
  { n: 6, title: 'Prepare nodes', status: 'pending' },
  { n: 7, title: 'Wait for Preparing', status: 'pending' },
  { n: 8, title: 'Bootstrap', status: 'pending' },
  { n: 9, title: 'Verify', status: 'pending' },
];
