/**
 * Why each step exists and what it does, in the words the panel shows. The machine owns the talosctl equivalents
 * (they name real nodes and files); the screen owns the explanation. Keyed by the machine's step names.
 */
import type { StepName } from '../machines/recovery-types.js';

export interface StepText {
  readonly title: string;
  readonly why: string;
  readonly whatHappens: string;
  /** what the spinner says is awaited while the step works without a question */
  readonly working: string;
}

export const STEP_TEXT: Record<StepName, StepText> = {
  connect: {
    title: 'Connect',
    why: 'Every later decision needs every control-plane node to be asked; a node that does not answer is named.',
    whatHappens: 'Ask each control-plane node for its Talos version over mTLS with your talosconfig.',
    working: 'every node to answer',
  },
  assess: {
    title: 'Assess',
    why: "Quorum is never called lost from one node's view: each node's local member list and etcd status are compared.",
    whatHappens:
      'Read every node’s etcd members, status and service state, give the quorum verdict and the freshest member.',
    working: "every node's etcd view",
  },
  snapshot: {
    title: 'Snapshot',
    why: 'Nothing is wiped before a verified copy of the data exists on local disk; it is the only copy that survives.',
    whatHappens:
      'Take (or pick) a snapshot, write it with a .sha256 beside it, and verify it offline as etcdutl would.',
    working: 'the snapshot to be written and verified',
  },
  'backup configs': {
    title: 'Back up configs',
    why: 'Machine configurations hold the cluster’s secrets; a replaced node can only be re-created from them.',
    whatHappens: 'Save every reachable node’s machine configuration as YAML (mode 0600) in the incident folder.',
    working: 'the machine configurations to be saved',
  },
  'init nodes': {
    title: 'Init nodes',
    why: 'A node of type init would try to bootstrap a new cluster on its own; it must become controlplane first.',
    whatHappens: 'Convert each init node to controlplane (staged config change, then reboot).',
    working: 'the init node conversion',
  },
  'prepare nodes': {
    title: 'Prepare nodes',
    why: 'etcd can only be restored into empty data directories; broken members must be wiped or re-created.',
    whatHappens:
      'Wipe EPHEMERAL (and ETCD where it exists) on each node you confirm, or re-apply its config; wait for it.',
    working: 'the nodes to be wiped and come back',
  },
  'wait for Preparing': {
    title: 'Wait for Preparing',
    why: 'Bootstrap only works when etcd on every node waits in Preparing; a Waiting node names what holds it up.',
    whatHappens: 'Watch every node’s etcd service until all are Preparing.',
    working: "every node's etcd to reach Preparing",
  },
  bootstrap: {
    title: 'Bootstrap',
    why: 'One node restores the snapshot and starts a new single-member cluster; the others then join it.',
    whatHappens: 'Upload the verified snapshot to one node, then send Bootstrap with recover-etcd.',
    working: 'the upload and Bootstrap',
  },
  verify: {
    title: 'Verify',
    why: 'A successful Bootstrap call is not a restore: etcd must be Running and healthy and every member must agree.',
    whatHappens: 'Poll until every node is Running and healthy with agreeing member lists, then write the report.',
    working: 'etcd to be Running and healthy on every node',
  },
};
