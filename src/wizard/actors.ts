/**
 * The recovery machine's named actors, each one line: the effects live in observe, snapshot, configs, destructive
 * and upload. This is the only place where the procedure touches the cluster or the disk.
 */
import { fromPromise } from 'xstate';
import { describeFailure } from '../talos/errors.js';
import { containerModeRefusal } from '../talos/platform.js';
import type { AssessOutput, BackupOutput, ConnectOutput, NodeView } from '../../machines/recovery-types.js';
import { persisted, statusTimeout, type EffectDeps, type EffectTiming } from './deps.js';
import { ActionError } from './ledger.js';
import { observeNodes } from './observe.js';
import { acquireSnapshotActor, verifySnapshotFile } from './snapshot.js';
import { backupConfigs } from './configs.js';
import { applyConfig, bootstrapNode, convertInitNode, resetNode } from './destructive.js';
import { uploadActor } from './upload.js';
import { backupAges } from '../backups/assessment.js';
import { replaceMemberActors } from './replace-member.js';
import { nospaceActors } from './nospace.js';
import { afterRestoreActors } from './after-restore.js';

async function connect(deps: EffectDeps, nodes: string[]): Promise<ConnectOutput> {
  await persisted(deps);
  let results;
  try {
    results = await deps.client.version(nodes, { timeoutMs: statusTimeout(deps) });
  } catch (error) {
    const message = error instanceof Error ? (error.message.split('\n')[0] ?? 'failed') : String(error);
    results = nodes.map((node) => ({
      node,
      ok: false as const,
      error: { code: 14, codeName: 'Unavailable', message },
    }));
  }
  // Container mode (talosctl cluster create on Docker): Reset does not wipe and Reboot is refused, so stop here,
  // before anything destructive, with what to do instead (src/talos/platform.ts).
  const containerMode = containerModeRefusal(results);
  if (containerMode) throw new ActionError(containerMode);
  return {
    nodes: results.map((r) => ({
      node: r.node,
      ok: r.ok,
      version: r.ok ? r.value.tag : null,
      error: r.ok ? null : describeFailure(r.node, r.error),
    })),
  };
}

async function assess(deps: EffectDeps, nodes: string[], backups: readonly string[] = []): Promise<AssessOutput> {
  await persisted(deps);
  const [observations, ages] = await Promise.all([observeNodes(deps, nodes), backupAgesSeen(deps, backups)]);
  const volumes: AssessOutput['volumes'] = {};
  await Promise.all(
    observations
      .filter((o) => o.reachable)
      .map(async (o) => {
        const r = await deps.client.etcdVolume(o.node, { timeoutMs: statusTimeout(deps) }).catch(() => null);
        volumes[o.node] = r?.ok ? r.value : null;
      }),
  );
  return { observations, volumes, ...(ages.length ? { backupAges: ages } : {}) };
}

/**
 * Issue 16: how old the newest backup is at each location the user gave, read while the nodes are (a backup job that
 * silently stopped shows here, before anything is decided); each is journalled, and a stale, missing or unreadable
 * one is worrying (the machine warns on screen).
 */
async function backupAgesSeen(
  deps: EffectDeps,
  backups: readonly string[],
): Promise<NonNullable<AssessOutput['backupAges']>> {
  if (!backups.length) return [];
  const seen = await backupAges(backups, {
    env: process.env,
    now: new Date(),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  return seen.map((s) => {
    const worrying = s.age === null || s.age.verdict !== 'fresh';
    deps.journal.append({ kind: worrying ? 'warning' : 'observation', what: 'backup age', result: s.sentence });
    return { location: s.location, sentence: s.sentence, worrying };
  });
}

/**
 * The deps of one actor's effect: its signal is also aborted when the actor is stopped (xstate's fromPromise signal:
 * the machine left the state that invoked it, or the run ended), so the ledger sends nothing after that.
 */
function stoppedWith(deps: EffectDeps, actorSignal: AbortSignal): EffectDeps {
  return { ...deps, signal: deps.signal ? AbortSignal.any([deps.signal, actorSignal]) : actorSignal };
}

/** The machine's named actors, ready for `recoveryMachine.provide({ actors })`. */
export function recoveryActors(deps: EffectDeps, timing: EffectTiming) {
  type Input<K extends string> = { [k in K]: string };
  return {
    connect: fromPromise<ConnectOutput, { nodes: string[] }>(({ input }) => connect(deps, input.nodes)),
    assess: fromPromise<AssessOutput, { nodes: string[]; backups?: string[] }>(({ input }) =>
      assess(deps, input.nodes, input.backups),
    ),
    observe: fromPromise<NodeView[], { nodes: string[] }>(async ({ input }) => {
      await persisted(deps);
      return observeNodes(deps, input.nodes);
    }),
    acquireSnapshot: acquireSnapshotActor(deps),
    backupConfigs: fromPromise<BackupOutput, { nodes: string[]; blank: string[] }>(({ input }) =>
      backupConfigs(deps, input.nodes, input.blank),
    ),
    // the effects that send destructive calls: none is sent once their actor was stopped
    convertInitNode: fromPromise<void, Input<'node' | 'opId'>>(({ input, signal }) =>
      convertInitNode(stoppedWith(deps, signal), timing, input),
    ),
    resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(({ input, signal }) =>
      resetNode(stoppedWith(deps, signal), timing, input),
    ),
    applyConfig: fromPromise<void, Input<'node' | 'file' | 'opId'>>(({ input, signal }) =>
      applyConfig(stoppedWith(deps, signal), input),
    ),
    verifySnapshotFile: fromPromise<{ sha256: string }, { file: string }>(({ input }) =>
      verifySnapshotFile(deps, input.file),
    ),
    uploadSnapshot: uploadActor(deps),
    bootstrapNode: fromPromise<
      { alreadyDone: boolean },
      { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
    >(({ input, signal }) => bootstrapNode(stoppedWith(deps, signal), input)),
    ...replaceMemberActors(deps, timing),
    ...nospaceActors(deps, timing),
    ...afterRestoreActors(deps, timing),
  };
}
