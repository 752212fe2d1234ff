/**
 * The full recovery's steps in one table (PRODUCT.md §1; the tenth, after the restore, lives in machines/after-restore):
 * number, name (as printed and journalled), the state key in machine.ts (persisted in state.json: never renamed), why
 * the step exists and what it does (the screen's words), and the equivalent talosctl commands, so the engineer learns
 * the procedure and can fall back to it.
 *
 * Every talosctl line must work when pasted. Flags as talosctl v1.13.9 defines them (siderolabs/talos):
 * global -n/--nodes: cmd/talosctl/cmd/talos/root.go@v1.13.9:74; get -o: get.go@v1.13.9:319 (a `jsonpath=` value,
 * output/output.go@v1.13.9:38; MachineConfig's spec is its YAML text, output/yaml.go@v1.13.9:77-83); reset
 * --graceful/--reboot/--system-labels-to-wipe: reset.go@v1.13.9:188-193; edit/apply-config --mode:
 * pkg/talos/helpers/mode.go@v1.13.9:72-84; apply-config --insecure/--file: apply-config.go@v1.13.9:123-124;
 * bootstrap --recover-from/--recover-skip-hash-check: bootstrap.go@v1.13.9:82-83; copy's alias cp: copy.go@v1.13.9:25.
 * test/machines/talosctl-lines.test.ts parses every line printed here against those flags.
 */
import { AFTER_RESTORE_STEPS } from '../after-restore/steps.js';
import { NOSPACE_STEPS } from '../nospace/steps.js';
import { REPLACE_MEMBER_STEPS } from '../replace-member/steps.js';

/** What a step's talosctl lines are written from. */
export interface TalosctlArgs {
  /** the control-plane nodes */
  nodes: readonly string[];
  /** step 6: the nodes to wipe with the labels each gets (EPHEMERAL, and ETCD for a dedicated 1.14 volume) */
  wipes?: readonly { node: string; labels: readonly string[] }[];
}

export interface StepDef {
  n: number;
  name: string;
  /** the state key under `procedure` in machine.ts */
  state: string;
  title: string;
  why: string;
  whatHappens: string;
  /** what the spinner says is awaited while the step works without a question */
  working: string;
  talosctl: (args: TalosctlArgs) => string[];
}

const list = (nodes: readonly string[]): string => nodes.join(',') || '<nodes>';

/** The reset line for one node: every label the tool wipes on it, each named (reset.go@v1.13.9:193). */
export function resetLine(node: string, labels: readonly string[]): string {
  const wipe = (labels.length ? labels : ['EPHEMERAL']).map((l) => ` --system-labels-to-wipe ${l}`).join('');
  return `talosctl -n ${node} reset --graceful=false --reboot${wipe}`;
}

export const STEPS = [
  {
    n: 1,
    name: 'connect',
    state: 'connect',
    title: 'Connect',
    why: 'Every later decision needs every control-plane node to be asked; a node that does not answer is named.',
    whatHappens: 'Ask each control-plane node for its Talos version over mTLS with your talosconfig.',
    working: 'every node to answer',
    talosctl: ({ nodes }) => [`talosctl -n ${list(nodes)} version`],
  },
  {
    n: 2,
    name: 'assess',
    state: 'assess',
    title: 'Assess',
    why: "Quorum is never called lost from one node's view: each node's local member list and etcd status are compared.",
    whatHappens:
      'Read every node’s etcd members, status and service state, give the quorum verdict and the freshest member.',
    working: "every node's etcd view",
    talosctl: ({ nodes }) => [
      `talosctl -n ${list(nodes)} etcd members`,
      `talosctl -n ${list(nodes)} etcd status`,
      `talosctl -n ${list(nodes)} service etcd`,
    ],
  },
  {
    n: 3,
    name: 'snapshot',
    state: 'snapshot',
    title: 'Snapshot',
    why: 'Nothing is wiped before a verified copy of the data exists on local disk; it is the only copy that survives.',
    whatHappens:
      'Take (or pick) a snapshot, write it with a .sha256 beside it, and verify it offline as etcdutl would.',
    working: 'the snapshot to be written and verified',
    talosctl: () => [
      'talosctl -n <source> etcd snapshot db.snapshot',
      'talosctl -n <source> cp /var/lib/etcd/member/snap/db .',
    ],
  },
  {
    n: 4,
    name: 'backup configs',
    state: 'backup',
    title: 'Back up configs',
    why: 'Machine configurations hold the cluster’s secrets; a replaced node can only be re-created from them.',
    whatHappens: 'Save every reachable node’s machine configuration as YAML (mode 0600) in the incident folder.',
    working: 'the machine configurations to be saved',
    // `-o yaml` would print the resource wrapper (node, metadata, spec), not a configuration apply-config takes
    talosctl: ({ nodes }) =>
      (nodes.length ? nodes : ['<node>']).map(
        (node) => `talosctl -n ${node} get mc v1alpha1 -o jsonpath='{.spec}' > configs/${node}.yaml`,
      ),
  },
  {
    n: 5,
    name: 'init nodes',
    state: 'initNodes',
    title: 'Init nodes',
    why: 'A node of type init would try to bootstrap a new cluster on its own; it must become controlplane first.',
    whatHappens: 'Convert each init node to controlplane (staged config change, then reboot).',
    working: 'the init node conversion',
    talosctl: () => [
      'talosctl -n <node> edit mc --mode=staged   # set machine.type: controlplane',
      'talosctl -n <node> reboot',
    ],
  },
  {
    n: 6,
    name: 'prepare nodes',
    state: 'prepare',
    title: 'Prepare nodes',
    why: 'etcd can only be restored into empty data directories; broken members must be wiped or re-created.',
    whatHappens:
      'Wipe EPHEMERAL (and ETCD where it exists) on each node you confirm, or re-apply its config; wait for it.',
    working: 'the nodes to be wiped and come back',
    talosctl: ({ wipes }) => [
      ...(wipes?.length ? wipes.map((w) => resetLine(w.node, w.labels)) : [resetLine('<node>', ['EPHEMERAL'])]),
      'talosctl -n <blank-node> apply-config --insecure --file configs/<node>.yaml',
    ],
  },
  {
    n: 7,
    name: 'wait for Preparing',
    state: 'waitPreparing',
    title: 'Wait for Preparing',
    why: 'Bootstrap only works when etcd on every node waits in Preparing; a Waiting node names what holds it up.',
    whatHappens: 'Watch every node’s etcd service until all are Preparing.',
    working: "every node's etcd to reach Preparing",
    talosctl: ({ nodes }) => [`talosctl -n ${list(nodes)} service etcd`],
  },
  {
    n: 8,
    name: 'bootstrap',
    state: 'bootstrap',
    title: 'Bootstrap',
    why: 'One node restores the snapshot and starts a new single-member cluster; the others then join it.',
    whatHappens: 'Upload the verified snapshot to one node, then send Bootstrap with recover-etcd.',
    working: 'the upload and Bootstrap',
    talosctl: () => [
      'talosctl -n <node> bootstrap --recover-from=<snapshot>',
      'talosctl -n <node> bootstrap --recover-from=<raw-db-copy> --recover-skip-hash-check',
    ],
  },
  {
    n: 9,
    name: 'verify',
    state: 'verify',
    title: 'Verify',
    why: 'A successful Bootstrap call is not a restore: etcd must be Running and healthy and every member must agree.',
    whatHappens: 'Poll until every node is Running and healthy with agreeing member lists, then write the report.',
    working: 'etcd to be Running and healthy on every node',
    talosctl: ({ nodes }) => [
      `talosctl -n ${list(nodes)} etcd members`,
      `talosctl -n ${list(nodes)} service etcd`,
      `talosctl -n ${nodes[0] ?? '<node>'} health`,
    ],
  },
  // 10: kubelets restarted everywhere and the control plane checked (machines/after-restore): a restore is not done
  // while watch caches still hold the revisions it took back
  ...AFTER_RESTORE_STEPS,
] as const satisfies readonly StepDef[];

/** The procedures the assessment can lead to (issue 15): each has its own table of steps after the shared ones. */
export type Procedure = 'recovery' | 'replace-member' | 'nospace';

/** Every procedure's steps in order: connect and assess always come first, then what the verdict chose. */
export const PROCEDURE_STEPS: Record<Procedure, readonly StepDef[]> = {
  recovery: STEPS,
  // a replacement needs a verified snapshot and the configs (a blank replacement is re-created from them) first
  'replace-member': [STEPS[0], STEPS[1], STEPS[2], STEPS[3], ...REPLACE_MEMBER_STEPS],
  nospace: [STEPS[0], STEPS[1], STEPS[2], ...NOSPACE_STEPS],
};

/** Every step of every procedure (names are unique across procedures: they are journalled and key the texts). */
export const ALL_STEPS = [...STEPS, ...REPLACE_MEMBER_STEPS, ...NOSPACE_STEPS] as const;

export type StepName = (typeof ALL_STEPS)[number]['name'];
/** The state keys under `procedure`, one per step of the full recovery. */
export type StepState = (typeof STEPS)[number]['state'];

/** The names of a table's steps, in order, as a tuple. */
type Names<T extends readonly { name: string }[]> = { readonly [K in keyof T]: T[K]['name'] };
/** The full recovery's step names (the first screen shows them before the assessment chooses a procedure). */
export const STEP_NAMES = STEPS.map((s) => s.name) as unknown as Names<typeof STEPS>;

/** A step's row in the tables by its name. */
export function stepByName(name: StepName): StepDef {
  return ALL_STEPS.find((s) => s.name === name) as StepDef;
}

/** The equivalent talosctl commands of a step. */
export function talosctlFor(step: StepName, args: TalosctlArgs): string[] {
  return stepByName(step).talosctl(args);
}
