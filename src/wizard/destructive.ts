/**
 * The calls that change a node: init conversion (steps 5), Reset and re-creation over the maintenance API (step 6),
 * Bootstrap (step 8). Each goes through the ledger (journalled before and after, never sent twice) and, for a resume
 * after a crash, checks what the node shows now against what a real node does after that call.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { classifyFailure, Code, describeFailure } from '../talos/errors.js';
import { MachineConfigError, withControlPlaneType } from '../talos/machine-config.js';
import {
  bootSince,
  bootSinceByBootId,
  bootstrapAlreadyDone,
  bootstrapLanded,
  resetTookEffect,
  type BootSince,
} from '../../machines/decisions.js';
import type { NodeView } from '../../machines/recovery-types.js';
import { statusTimeout, type EffectDeps, type EffectTiming } from './deps.js';
import { ActionError, ledgered, messageOf, timesSent, unwrap, unwrapDestructive, witnessOf } from './ledger.js';
import { isBlank, observeNodes } from './observe.js';

async function pollUntil<T>(
  deps: EffectDeps,
  check: () => Promise<T | null>,
  timeoutMs: number,
  everyMs: number,
): Promise<T | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > end || deps.signal?.aborted) return null;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const one = async (deps: EffectDeps, node: string): Promise<NodeView | null> =>
  (await observeNodes(deps, [node]))[0] ?? null;

const sentAtOf = (witness: Record<string, unknown> | null): number | null =>
  typeof witness?.sentAt === 'number' ? witness.sentAt : null;

/** The boot id read before the call was sent, or null (not read: refused, no answer, or a journal from before it). */
const bootIdOf = (witness: Record<string, unknown> | null): string | null =>
  typeof witness?.bootId === 'string' && witness.bootId !== '' ? witness.bootId : null;

/** The witness says the node refused to read its boot id before the send (Read needs os:admin). */
const bootIdRefused = (witness: Record<string, unknown> | null): boolean => witness?.bootIdUnread === 'refused';

/**
 * How long the read of a boot id before a Reset or Reboot may hold it back. Each node's Reset is sent by its own child
 * as soon as it is confirmed, the snapshot source's last (planPreparation, SAFETY rule 3): a read that hangs must not
 * let a node's wipe go out long after its confirmation, behind the source's. A node that does not answer it in this
 * time gets today's rule (its services' start times). talosctl's integration suite bounds the same read too
 * (internal/integration/base/api.go@v1.13.9:227-229).
 */
const BOOT_ID_READ_MS = 2000;

/** The node's boot id now: the id, 'refused' (PermissionDenied: Read needs os:admin), or null (no answer). */
async function readBootId(deps: EffectDeps, node: string): Promise<string | 'refused' | null> {
  if (!deps.client.bootId) return null;
  const timeoutMs = Math.min(statusTimeout(deps), BOOT_ID_READ_MS);
  const r = await deps.client.bootId(node, { timeoutMs }).catch(() => null);
  if (!r) return null;
  if (r.ok) return r.value === '' ? null : r.value;
  return r.error.code === Code.permissionDenied ? 'refused' : null;
}

/** What the screen and the journal say when a node refused the read of its boot id before `call`. */
const refusedSentence = (node: string, call: string) =>
  `${node} refused to read its boot id (Read needs the os:admin role), so whether it got the ${call} is judged, if this run is interrupted, from its services' start times, which assumes its clock agrees with this machine's.`;

/**
 * The node's boot id just before `call` is sent, for the witness journalled with the send time: on a resume a
 * different boot id shows the node rebooted since, the same one that it did not, without comparing the node's clock
 * with this machine's (talosctl reads it before a Reboot or Reset for the same reason:
 * cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:356-378). A node that refuses it gets today's rule, said on
 * screen and journalled; one that does not answer in BOOT_ID_READ_MS gets it too (journalled with the witness).
 */
async function bootIdBeforeSend(
  deps: EffectDeps,
  node: string,
  call: string,
  said: { notice: boolean },
): Promise<Record<string, unknown>> {
  const read = await readBootId(deps, node);
  if (read === null) return deps.client.bootId ? { bootIdUnread: 'no answer' } : {};
  if (read !== 'refused') return { bootId: read };
  const sentence = refusedSentence(node, call);
  deps.journal.append({ kind: 'observation', node, what: `boot id of ${node} before the ${call}`, result: sentence });
  deps.notice?.(sentence);
  said.notice = true;
  return { bootIdUnread: 'refused' };
}

/**
 * Runs an effect whose bootIdBeforeSend may put the refusal on screen: the sentence stays while the effect runs
 * (the send and the wait for the node) and is cleared when it ends, so it never outlives its step; the journal keeps it.
 */
async function sayingRefusal<T>(deps: EffectDeps, run: (said: { notice: boolean }) => Promise<T>): Promise<T> {
  const said = { notice: false };
  try {
    return await run(said);
  } finally {
    if (said.notice) deps.notice?.(null);
  }
}

/**
 * Whether the node booted since the call witnessed by `before` was sent: by its boot id when one was read before the
 * send (bootSinceByBootId), else from its services' start times against the send time (bootSince).
 */
async function bootSinceSend(
  deps: EffectDeps,
  node: string,
  before: Record<string, unknown> | null,
): Promise<{ boot: BootSince; byBootId: boolean }> {
  const then = bootIdOf(before);
  const byId = then === null ? null : bootSinceByBootId(then, await readBootId(deps, node));
  if (byId !== null) return { boot: byId, byBootId: true };
  return { boot: bootSince(await serviceHistories(deps, node), sentAtOf(before)), byBootId: false };
}

/** Step 5: stage machine.type controlplane, reboot, and wait until the node says it is a controlplane node. */
export async function convertInitNode(
  deps: EffectDeps,
  timing: EffectTiming,
  input: { node: string; opId: string },
): Promise<void> {
  const { node } = input;
  const isControlPlaneNow = async () => {
    const r = await deps.client.machineType(node, { timeoutMs: 3000 });
    return r.ok && r.value === 'controlplane' ? true : null;
  };
  await ledgered(deps, {
    opId: `${input.opId}:apply`,
    action: 'stage machine.type controlplane (ApplyConfiguration STAGED)',
    node,
    destructive: true,
    answered: () => undefined,
    send: async () => {
      const yaml = unwrap(await deps.client.machineConfig(node), 'reading the machine configuration');
      // multi-document configs (Talos 1.12+): only machine.type of the v1alpha1 document changes
      let converted: string;
      try {
        converted = withControlPlaneType(yaml, `of ${node}`);
      } catch (error) {
        throw error instanceof MachineConfigError ? new ActionError(error.message) : error;
      }
      unwrapDestructive(
        await deps.client.applyConfiguration(node, { data: Buffer.from(converted), mode: 'STAGED' }),
        'staging the configuration change',
      );
    },
    // A staged configuration shows only after the reboot, so a node still of type init is no proof the apply was
    // lost; sending it again stages the same document again, which changes nothing more.
    reconcile: async () => ((await isControlPlaneNow().catch(() => null)) ? undefined : null),
  });
  await sayingRefusal(deps, async (said) => {
    await ledgered(deps, {
      opId: `${input.opId}:reboot`,
      action: 'reboot to apply the staged configuration',
      node,
      destructive: true,
      answered: () => undefined,
      send: async () => {
        unwrapDestructive(await deps.client.reboot(node), 'reboot');
      },
      // the send time, with the boot id read just before it
      witness: async () => {
        const bootId = await bootIdBeforeSend(deps, node, 'reboot', said);
        return { sentAt: Date.now(), ...bootId };
      },
      reconcile: async (before) => ((await interruptedRebootLanded(deps, timing, node, before)) ? undefined : null),
    });
    const back = await pollUntil(deps, isControlPlaneNow, timing.nodeBackTimeoutMs, timing.pollMs);
    if (!back) throw new ActionError(`${node} did not come back as a controlplane node after the reboot.`, true);
  });
}

/**
 * Did a Reboot sent before an interruption (the process died, or its answer was lost) reach the node? Talos answers
 * Reboot and runs the reboot sequence afterwards (siderolabs/talos
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:365-393 Reboot: the sequence starts in a
 * goroutine and the reply goes back at once), and that sequence first stops the pods, so the node may answer as before for
 * minutes. It got the Reboot once it says it is a controlplane node (the staged type applied) or its services'
 * histories began after the send (bootSince 'rebooted'); it never got it only if, after waiting as long as a node is
 * given to come back, it still shows the boot from before the send ('same boot'). Anything else (silent, nothing
 * that dates its boot) is not sent again on a guess: the person is asked.
 */
async function interruptedRebootLanded(
  deps: EffectDeps,
  timing: EffectTiming,
  node: string,
  before: Record<string, unknown> | null,
): Promise<boolean> {
  const rebooted = async () => {
    const r = await deps.client.machineType(node, { timeoutMs: statusTimeout(deps) });
    if (r.ok && r.value === 'controlplane') return true;
    return (await bootSinceSend(deps, node, before)).boot === 'rebooted' ? true : null;
  };
  if (await rebooted().catch(() => null)) return true;
  // not settled at once: the wait can last minutes on a real node, so the person is told what it waits for
  const until = Date.now() + timing.nodeBackTimeoutMs;
  deps.notice?.(
    `Checking whether ${node} got the reboot sent before the interruption: waiting until ${utcTime(until)} for it to come back as a controlplane node; it is sent again only if it still shows the same boot then.`,
  );
  try {
    if (await pollUntil(deps, rebooted, timing.nodeBackTimeoutMs, timing.pollMs)) return true;
  } finally {
    deps.notice?.(null);
  }
  if ((await bootSinceSend(deps, node, before)).boot === 'same boot') return false;
  throw new ActionError(
    `Cannot tell whether ${node} got the reboot sent before the interruption (it did not come back as a controlplane node, and shows nothing that dates its last boot), so it is not sent again on a guess: check talosctl -n ${node} get machinetype and its console, and try again.`,
    false,
    true,
  );
}

/**
 * How long a node that accepted a Reset may go on answering as before. Talos answers Reset and runs the reset
 * sequence afterwards (siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:738-744),
 * and that sequence first stops the pods: up to 30 s for the kubelet's lifecycle finalizers, the kubelet's graceful
 * shutdown (its inhibitor delay, 30 s as Talos configures it and capped by logind at 40 times that), then up to 3 min
 * to stop the pod sandboxes (internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go@v1.13.9:967-1044,
 * internal/pkg/logind/logind.go@v1.13.9:27, pkg/machinery/constants/constants.go@v1.13.9:354). Only then do its
 * services stop, etcd's included, and the node wipe and reboot (v1alpha1_sequencer.go@v1.13.9:298-335). Until then
 * every answer is the one from before the Reset, for minutes, not seconds. 5 minutes covers those defaults; never
 * longer than the tool waits for a node to come back (nodeBackTimeoutMs, compressed in a drill).
 */
const RESET_START_BOUND_MS = 5 * 60_000;

const utcTime = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/**
 * What the check of an interrupted Reset waits for once the node answers as before, in the person's words, after the
 * node's name ("<node> still answers as before ...").
 */
export function sameBootWait(sentAt: number | null, until: number, byBootId = false): string {
  const since =
    sentAt === null
      ? ''
      : byBootId
        ? ` (its boot id is the one it had when the Reset was sent at ${utcTime(sentAt)})`
        : ` (it has not rebooted since the Reset was sent at ${utcTime(sentAt)})`;
  const secs = Math.max(1, Math.round((until - Date.now()) / 1000));
  const left = secs < 90 ? `${secs} s` : `${Math.round(secs / 60)} min`;
  return `still answers as before${since}; a node can take minutes to act on a Reset, so it is sent again only if it still shows the same boot at ${utcTime(until)} (in ${left})`;
}

/** The node's services with their histories, or null when it did not list them. */
async function serviceHistories(deps: EffectDeps, node: string) {
  const r = (await deps.client.serviceList([node], { timeoutMs: statusTimeout(deps) }).catch(() => null))?.[0];
  return r?.ok ? r.value : null;
}

/**
 * Did a Reset the journal shows as sent, but never answered (the process died in between), reach the node? A node
 * that came back blank, whose etcd service history restarted after the send, or whose services all started after it
 * (it booted since), got it. A node that does not answer is not evidence either way: a status read that timed out (a
 * loaded machine, a lost packet) looks the same as a node inside its reset, so it is watched until it answers, and
 * only a node silent for the whole nodeBackTimeoutMs counts as reset (then the wait for it to come back says what it
 * shows). "Never got it" needs evidence that the node has not booted since the send (bootSince 'same boot'), shown
 * for RESET_START_BOUND_MS from the first answer that showed it: a real node keeps answering as before for minutes
 * after it accepted a Reset, and an answer with no dated history (right after a boot, before etcd's service is
 * listed) says nothing; counting such an answer, or 3 polls from the start of the check, sent a Reset twice (SAFETY
 * rule 6). A node that answers for that long with nothing to tell is not sent it on a guess: the person is asked.
 */
async function interruptedResetLanded(
  deps: EffectDeps,
  timing: EffectTiming,
  node: string,
  before: Record<string, unknown> | null,
): Promise<boolean> {
  let shown = false;
  const show = (text: string) => {
    shown = true;
    deps.notice?.(text);
  };
  try {
    return await checkInterruptedReset(deps, timing, node, before, show);
  } finally {
    if (shown) deps.notice?.(null);
  }
}

/**
 * The check itself. With a boot id read before the send (bootIdBeforeSend), the node's boot id now decides whether it
 * booted since: a node whose clock is behind this machine's dates its new boot's services before the send, and read
 * by those times it showed "same boot" and got the Reset again after the hold (a second wipe). The services' times
 * decide only when there is no boot id to compare (a journal of an older version, a node that refuses Read).
 */
async function checkInterruptedReset(
  deps: EffectDeps,
  timing: EffectTiming,
  node: string,
  before: Record<string, unknown> | null,
  show: (text: string) => void,
): Promise<boolean> {
  const sentAt = sentAtOf(before);
  const withBootId = bootIdOf(before) !== null;
  // said with the wait when the node refused its boot id before the send: the fallback compares clocks
  const byClock = bootIdRefused(before)
    ? ` Its boot id could not be read before the Reset (Read needs the os:admin role), so this is judged from its services' start times, which assumes its clock agrees with this machine's.`
    : '';
  const start = Date.now();
  const bound = Math.min(RESET_START_BOUND_MS, timing.nodeBackTimeoutMs);
  // since when the node has answered as before the send / answered with nothing to tell / not answered
  let unchangedSince: number | null = null;
  let unknownSince: number | null = null;
  let silentSince: number | null = null;
  for (;;) {
    const asked = Date.now();
    const view = await one(deps, node).catch(() => null);
    if (view?.maintenance) return true;
    if (view?.reachable) {
      silentSince = null;
      // an etcd history dated after the send is evidence only where clocks are compared anyway
      if (!withBootId && resetTookEffect(view, sentAt)) return true;
      const { boot, byBootId } = await bootSinceSend(deps, node, before);
      if (boot === 'rebooted') return true;
      if (await actingOnReset(deps, node)) return true;
      if (boot === 'same boot') {
        unknownSince = null;
        if (unchangedSince === null) {
          unchangedSince = asked;
          const waiting = sameBootWait(sentAt, unchangedSince + bound, byBootId);
          const fallback = byBootId ? '' : byClock;
          deps.journal.append({
            kind: 'observation',
            node,
            what: `checking whether ${node} got the Reset sent before the interruption`,
            result: fallback ? `${node} ${waiting}.${fallback}` : `${node} ${waiting}`,
          });
          // on screen for as long as the check waits (cleared when it ends)
          show(`Checking whether ${node} got the Reset sent before the interruption: it ${waiting}.${fallback}`);
        }
        if (Date.now() - unchangedSince >= bound) return false;
      } else unknownSince ??= asked;
    } else {
      // a node going away after it answered as before is acting on it now: what it showed before counts no more
      unchangedSince = null;
      unknownSince = null;
      silentSince ??= asked;
      if (Date.now() - silentSince > timing.nodeBackTimeoutMs) return true;
    }
    const undecided =
      (unknownSince !== null && Date.now() - unknownSince > timing.nodeBackTimeoutMs) ||
      Date.now() - start > 2 * timing.nodeBackTimeoutMs + bound;
    if (undecided)
      throw new ActionError(
        `Cannot tell whether ${node} got the Reset sent before the interruption (it answers, but shows nothing that dates its last boot), so it is not sent again on a guess: check its console (talosctl -n ${node} dmesg) and try again once it has settled.`,
        false,
        true,
      );
    if (deps.signal?.aborted) throw new ActionError(`Stopped while checking whether ${node} got the Reset.`, true);
    await new Promise((r) => setTimeout(r, timing.pollMs));
  }
}

/**
 * Whether the node shows the stage `resetting`: machined sets it when a Reset's sequence starts and keeps it until the
 * node goes down (controllers/runtime/machine_status.go@v1.13.9:404-420), so the node took a Reset and is acting on it
 * now. A real node first stops its pods, which can take minutes, all that time answering as before the send: the
 * stage tells at once what the hold above (min(5 min, nodeBackTimeoutMs) of "same boot") could only wait out, and a
 * node slower than the hold would have got the Reset a second time. The stage names no Reset in particular: one
 * already running when ours came would have refused ours (machined's sequencer lock, sequencer.go@v1.13.9:56-100),
 * and sending another now would be refused the same way, so a reset under way is never sent a second.
 * Journalled when seen; a node that cannot say
 * (an older client, a failed read) leaves the decision to the checks around it.
 */
async function actingOnReset(deps: EffectDeps, node: string): Promise<boolean> {
  if (!deps.client.machineStage) return false;
  const stage = await deps.client.machineStage(node, { timeoutMs: statusTimeout(deps) }).catch(() => null);
  if (!stage?.ok || stage.value !== 'resetting') return false;
  deps.journal.append({
    kind: 'observation',
    node,
    what: `checking whether ${node} got the Reset sent before the interruption`,
    result: `${node} shows the stage "resetting": it took the Reset and is acting on it`,
  });
  return true;
}

/** How many poll intervals a node must stay silent after an answered Reset before the silence counts as its reboot. */
const RESET_SILENCE_POLLS = 3;

/**
 * After the node answered the Reset: is it seen acting on it? It is once it answers with an etcd service history that
 * began after the send (services start a new history at every boot), comes back blank, or stays silent long enough to
 * be rebooting. A real node's reset stops its services, wipes and reboots, so it is silent for tens of seconds (facts
 * §3; siderolabs/talos internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer.go@v1.11.6, Sequencer.Reset:
 * outside container mode its phases stop all services, wipe, then reboot when the request asks for it). A single
 * status read that timed out (a loaded machine, a lost packet) is not that, and counting it let a node that had not
 * wiped yet, still Preparing from before, pass as reset. So silence counts only when unbroken over at least two reads
 * spanning RESET_SILENCE_POLLS poll intervals (with the real 2 s poll and 4 s read timeout, about 10 s, well inside a
 * reboot); a node back sooner is caught by its restarted history.
 */
async function resetSeenTakingEffect(
  deps: EffectDeps,
  timing: EffectTiming,
  node: string,
  before: Record<string, unknown> | null,
): Promise<boolean> {
  const sentAt = sentAtOf(before);
  const bootId = bootIdOf(before);
  const end = Date.now() + timing.nodeBackTimeoutMs;
  let silentSince: number | null = null;
  let silentReads = 0;
  for (;;) {
    const asked = Date.now();
    const view = await one(deps, node).catch(() => null);
    if (view?.maintenance) return true;
    if (view?.reachable) {
      // back with a new boot id: rebooted since the send, whatever its clock says; the etcd history dated after the
      // send by our clock counts only without one (a node whose clock is ahead would pass before it acted)
      if (bootId !== null) {
        if (bootSinceByBootId(bootId, await readBootId(deps, node)) === 'rebooted') return true;
      } else if (resetTookEffect(view, sentAt)) return true;
      silentSince = null;
      silentReads = 0;
    } else {
      silentSince ??= asked;
      silentReads += 1;
      if (silentReads >= 2 && Date.now() - silentSince >= timing.pollMs * RESET_SILENCE_POLLS) return true;
    }
    if (Date.now() > end || deps.signal?.aborted) return false;
    await new Promise((r) => setTimeout(r, timing.pollMs));
  }
}

/**
 * Step 6, wipe: Reset, then wait until the node is seen to act on it. Talos answers Reset before it does anything
 * (siderolabs/talos: internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.11.6:686-692 starts the
 * reset sequence in a goroutine and returns), so for a while the node still answers with its old etcd state, Preparing
 * included: it only counts as reset once it stayed away long enough to be rebooting, came back blank, or its etcd
 * service history restarted after the Reset was sent (resetSeenTakingEffect).
 */
export async function resetNode(
  deps: EffectDeps,
  timing: EffectTiming,
  input: { node: string; labels: string[]; opId: string },
): Promise<void> {
  const { node, labels } = input;
  await sayingRefusal(deps, async (said) => {
    await ledgered(deps, {
      opId: input.opId,
      action: `reset ${labels.join('+')} (graceful=false, reboot)`,
      node,
      destructive: true,
      answered: () => undefined,
      send: async () => {
        const result = await deps.client.reset(node, { graceful: false, reboot: true, labels }, { timeoutMs: 30_000 });
        // no answer, though the request left: the node may be resetting now, so the next attempt checks it first
        unwrapDestructive(result, 'reset');
      },
      // The send time, and the boot id read just before (bootIdBeforeSend, bounded by BOOT_ID_READ_MS so that it does
      // not hold this node's Reset back behind the snapshot source's, which goes last: SAFETY rule 3's order).
      witness: async () => {
        const bootId = await bootIdBeforeSend(deps, node, 'Reset', said);
        return { sentAt: Date.now(), ...bootId };
      },
      reconcile: async (before) => ((await interruptedResetLanded(deps, timing, node, before)) ? undefined : null),
    });
    const seen = await resetSeenTakingEffect(deps, timing, node, witnessOf(deps, input.opId));
    if (!seen)
      throw new ActionError(
        `${node} accepted the Reset but was not seen to go down or restart within ${Math.round(timing.nodeBackTimeoutMs / 1000)} s; check its console before trying again.`,
        true,
      );
  });
}

/** Step 6, re-create: a blank node gets its backed-up configuration over the maintenance API. */
export async function applyConfig(
  deps: EffectDeps,
  input: { node: string; file: string; opId: string },
): Promise<void> {
  const { node, file } = input;
  await ledgered(deps, {
    opId: input.opId,
    action: `apply the configuration backup ${basename(file)} over the maintenance API`,
    node,
    destructive: true,
    answered: () => undefined,
    send: async () => {
      if (!deps.connectMaintenance) throw new ActionError('The maintenance API cannot be reached from here.');
      if (!existsSync(file))
        throw new ActionError(`The configuration backup ${file} is missing; put it back and retry.`);
      const m = await deps.connectMaintenance(node).catch((e: unknown) => {
        throw new ActionError(messageOf(e), true);
      });
      try {
        deps.journal.append({
          kind: 'observation',
          node,
          what: 'maintenance server fingerprint (not verified by the cluster CA)',
          result: m.serverFingerprint,
        });
        await m.applyConfiguration({ data: readFileSync(file), mode: 'REBOOT' });
      } catch (error) {
        throw new ActionError(messageOf(error), false, true);
      } finally {
        m.close();
      }
    },
    reconcile: async () => ((await isBlank(deps, node)) ? null : undefined),
  });
}

/**
 * When the node's etcd service history began, as the node dates it, read just before Bootstrap is sent: Bootstrap
 * replaces etcd's runner, whose new history starts afresh (see bootstrapNode), so on a resume a history with another
 * start is the new runner's, compared with the node's own earlier date rather than with this machine's clock. Only a
 * complete history dates its start (fewer events than Talos keeps, as in bootSince); otherwise nothing is recorded
 * and the send time decides, as before.
 */
async function etcdHistoryBeforeSend(deps: EffectDeps, node: string): Promise<Record<string, unknown>> {
  const etcd = (await serviceHistories(deps, node))?.find((s) => s.id === 'etcd');
  if (!etcd || etcd.events.length === 0 || etcd.events.length >= SERVICE_EVENTS_KEPT) return {};
  const start = etcd.events[0]?.ts ?? null;
  return start === null ? {} : { etcdHistoryStart: start };
}

/** Talos keeps this many events per service (events.go@v1.13.9:17-18 MaxEventsToKeep). */
const SERVICE_EVENTS_KEPT = 64;

/** How many reads an interrupted Bootstrap's check makes before it gives up on a node that shows nothing to tell. */
const BOOTSTRAP_CHECK_READS = 10;
const BOOTSTRAP_CHECK_PAUSE_MS = 500;

/**
 * Did a Bootstrap the journal shows as sent, but never answered, reach the node? Only a read that shows etcd's service
 * tells (bootstrapLanded: Running, or a runner history other than the one witnessed just before the send, or, for a
 * journal without that witness, one that began after the send; the witnessed history, or one from before the send,
 * means it never arrived). A read without it (the node not answering, its service list lost or timed out on a loaded machine)
 * is no evidence: taking it for "never arrived" sent Bootstrap again while its restore may run (SAFETY rule 6). Such
 * reads are repeated, and a node that shows nothing for all of them is not sent it on a guess: the person is asked.
 */
async function interruptedBootstrapLanded(
  deps: EffectDeps,
  node: string,
  before: Record<string, unknown> | null,
): Promise<boolean> {
  const sentAt = sentAtOf(before);
  const historyBefore = typeof before?.etcdHistoryStart === 'number' ? before.etcdHistoryStart : null;
  for (let read = 1; ; read++) {
    const view = await one(deps, node).catch(() => null);
    if (bootstrapLanded(view, sentAt, historyBefore)) return true;
    if (view?.reachable && view.etcdHistoryStart != null) return false;
    if (read >= BOOTSTRAP_CHECK_READS)
      throw new ActionError(
        `Cannot tell whether ${node} got the Bootstrap sent before the interruption (its etcd service did not show in ${read} reads), so it is not sent again on a guess: check talosctl -n ${node} service etcd and try again.`,
        false,
        true,
      );
    if (deps.signal?.aborted) throw new ActionError(`Stopped while checking whether ${node} got the Bootstrap.`, true);
    await new Promise((r) => setTimeout(r, BOOTSTRAP_CHECK_PAUSE_MS));
  }
}

/**
 * Step 8: Bootstrap with recover_etcd. Whether an interrupted one landed is decided from what a real node shows:
 * Bootstrap replaces the etcd runner, whose history starts empty and no longer holds "Bootstrap requested"
 * (siderolabs/talos: internal/app/machined/pkg/system/services/etcd.go@v1.11.6:656-690,
 * internal/app/machined/pkg/system/system.go@v1.11.6:92,132; facts §4), so the evidence is etcd Running or a history
 * that began after the call was sent; AlreadyExists counts only with the journal's proof.
 */
export async function bootstrapNode(
  deps: EffectDeps,
  input: { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean },
): Promise<{ alreadyDone: boolean }> {
  const { node } = input;
  return ledgered(deps, {
    opId: input.opId,
    action: `bootstrap (recover_etcd${input.skipHashCheck ? ', recover_skip_hash_check' : ''})`,
    node,
    destructive: true,
    answered: () => ({ alreadyDone: true }),
    // the send time, with the start of etcd's service history as the node dates it just before
    witness: async () => {
      const history = await etcdHistoryBeforeSend(deps, node);
      return { sentAt: Date.now(), ...history };
    },
    send: async () => {
      const result = await deps.client.bootstrap(
        node,
        { recoverEtcd: true, recoverSkipHashCheck: input.skipHashCheck },
        { timeoutMs: 30_000 },
      );
      if (result.ok) return { alreadyDone: false };
      const kind = classifyFailure(result.error);
      if (kind === 'already-bootstrapped') {
        const v = await one(deps, node);
        const bootstrapSent = timesSent(deps, input.opId) > 1;
        const etcdService = v?.etcdService ?? null;
        if (bootstrapAlreadyDone({ wiped: input.wiped, uploadSent: input.uploadSent, bootstrapSent, etcdService }))
          return { alreadyDone: true };
        // This node was wiped and Bootstrap sent in this incident, yet etcd is not starting: a restore that failed
        // leaves the data directory non-empty (etcdutl writes member/snap/db before it checks the hash; facts §4).
        // Marked restoreFailed: step 8 offers exactly what it needs, a new wipe, upload and Bootstrap under new ids.
        if (input.wiped && bootstrapSent)
          throw new ActionError(
            `${node}'s etcd data directory is not empty after a restore that did not finish (etcd ${etcdService ?? 'not answering'}): it needs a new wipe and a new upload of the snapshot before Bootstrap.`,
            false, // retryable: not as it stands
            false, // mayHaveLanded: refused, nothing happened
            false, // unanswered: the node answered
            true, // restoreFailed
          );
        throw new ActionError(describeFailure(node, result.error, 'bootstrap'));
      }
      if (kind === 'bootstrap-not-ready' || kind === 'time-not-synced' || kind === 'not-control-plane')
        throw new ActionError(describeFailure(node, result.error, 'bootstrap'), kind !== 'not-control-plane');
      // anything else (a cut connection, a deadline): the request may have reached the node
      throw new ActionError(describeFailure(node, result.error, 'bootstrap'), false, true);
    },
    reconcile: async (before) =>
      (await interruptedBootstrapLanded(deps, node, before)) ? { alreadyDone: true } : null,
    describe: (r) => (r.alreadyDone ? 'had already happened' : 'accepted'),
  });
}
