/** Step 3's effects: take a snapshot (API or raw copy) or check a given file, and re-hash it before the upload. */
import { createHash } from 'node:crypto';
import { chmodSync, constants, copyFileSync, createReadStream, existsSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { importSnapshot, sniffLayer } from '../backups/decode.js';
import { snapshotFreshness, type LiveRevision } from '../backups/freshness.js';
import { parseBackupName } from '../backups/names.js';
import { isS3Url } from '../backups/s3-url.js';
import { openBackup, type OpenedBackup } from '../backups/source.js';
import { acquireSnapshot } from '../etcd/acquire.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import type { SnapshotReport } from '../etcd/types.js';
import type { SnapshotInfo, SnapshotOption } from '../../machines/recovery-types.js';
import { persisted, statusTimeout, type EffectDeps } from './deps.js';
import { ActionError, ledgered, messageOf } from './ledger.js';
import { readJournal } from '../journal/journal.js';
import { fromPromise } from 'xstate';

function snapshotInfo(
  report: SnapshotReport,
  extra: { method: SnapshotInfo['method']; node: string | null; raftAppliedIndex: string | null; takenAt: number },
): SnapshotInfo {
  return {
    file: report.file,
    sha256: report.sha256,
    method: extra.method,
    node: extra.node,
    raftAppliedIndex: extra.raftAppliedIndex,
    revision: report.revision,
    totalKeys: report.totalKeys,
    totalSize: report.totalSize,
    hash: report.hash,
    integrity: report.integrity,
    kind: report.kind,
    structure: report.structure,
    usable: report.usable,
    needsSkipHashCheck: report.needsSkipHashCheck,
    problems: report.problems,
    storageVersion: report.storageVersion,
    bytes: report.size,
    takenAt: extra.takenAt,
  };
}

/** One moment of a transfer: what is being moved, the bytes so far and the total (0 when not known). */
export interface SnapshotProgress {
  label: string;
  bytes: number;
  total: number;
}

export interface TakeSnapshotOptions {
  /** called as bytes arrive (each phase starts at 0 with its own label: the download, then the verification) */
  onProgress?: (progress: SnapshotProgress) => void;
  /** an S3 download is given up after this long without a byte (default S3_STALL_MS, src/backups/s3.ts) */
  s3StallMs?: number;
}

/** Fewest milliseconds between two progress events: each is a state.json write. */
const PROGRESS_EVERY_MS = 200;

/**
 * Step 3's actor: takeSnapshot, with its progress sent to the machine as `snapshot.progress` events a few times a
 * second (a new phase and the end of one at once), so the screen shows bytes, rate and ETA as it does for the upload.
 */
export function acquireSnapshotActor(deps: EffectDeps) {
  return fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(({ input, self }) => {
    const parent = self._parent;
    let last = 0;
    let lastLabel = '';
    const onProgress = (p: SnapshotProgress): void => {
      const now = Date.now();
      const edge = p.label !== lastLabel || p.bytes === 0 || (p.total > 0 && p.bytes >= p.total);
      if (!edge && now - last < PROGRESS_EVERY_MS) return;
      last = now;
      lastLabel = p.label;
      parent?.send({ type: 'snapshot.progress', ...p });
    };
    return takeSnapshot(deps, input.option, input.opId, { onProgress });
  });
}

export async function takeSnapshot(
  deps: EffectDeps,
  option: SnapshotOption,
  opId: string,
  opts: TakeSnapshotOptions = {},
): Promise<SnapshotInfo> {
  if (option.method === 'raw' && option.nodes?.length) return freshestRawCopy(deps, option.nodes, opId, opts);
  if (option.method === 'backup') return importBackup(deps, option.file ?? '', opts);
  if (option.method === 'file' && (await sniffLayer(resolve(option.file ?? '')))) {
    return importBackup(deps, option.file ?? '', opts);
  }
  if (option.method === 'file') {
    await persisted(deps);
    // typed relative to where talos-dr runs now; a resume from another folder must not look for it there
    const typed = option.file ?? '';
    const source = resolve(typed);
    if (!existsSync(source)) throw new ActionError(`${source} does not exist; give the path of a snapshot file.`);
    const report = await inspectSnapshot(source, { signal: deps.signal, refuseOtherFormats: true }).catch(
      (e: unknown) => {
        throw new ActionError(messageOf(e));
      },
    );
    const takenAt = statSync(source).mtimeMs;
    const file = copyIntoIncident(deps, source);
    // the copy must be the file inspected (one written to while it was copied is not used)
    if ((await sha256OfFile(file)) !== report.sha256) {
      if (file !== source) unlinkSync(file);
      throw new ActionError(`${source} changed while it was copied; give it again once nothing writes to it.`);
    }
    deps.journal.append({
      kind: 'observation',
      what: `snapshot file ${source} copied into the incident folder`,
      result: file,
      ok: true,
      data: { from: source, typed, file, sha256: report.sha256, bytes: report.size },
    });
    return withFreshness(
      deps,
      snapshotInfo({ ...report, file }, { method: 'file', node: null, raftAppliedIndex: null, takenAt }),
    );
  }
  const node = option.node ?? '';
  const raw = option.method === 'raw';
  const before = await deps.client.etcdStatus([node], { timeoutMs: statusTimeout(deps) }).catch(() => []);
  const applied = before[0]?.ok ? before[0].value.raftAppliedIndex.toString() : null;
  return ledgered(deps, {
    opId,
    action: raw ? 'copy the raw etcd database' : 'take an etcd snapshot',
    node,
    destructive: false,
    send: async () => {
      const takenAt = Date.now();
      const label = raw ? `Copying the etcd database from ${node}` : `Downloading the etcd snapshot from ${node}`;
      // 0 bytes at once: the screen shows the download waiting (0 B/s) before its first byte, not a spinner
      opts.onProgress?.({ label, bytes: 0, total: 0 });
      try {
        const acquired = await acquireSnapshot(deps.client, node, {
          dir: deps.incident.snapshots,
          raw,
          signal: deps.signal,
          onProgress: (bytes) => opts.onProgress?.({ label, bytes, total: 0 }),
        });
        return snapshotInfo(acquired.report, { method: raw ? 'raw' : 'api', node, raftAppliedIndex: applied, takenAt });
      } catch (error) {
        // A cut stream or a node that is briefly away is worth another try; the toolkit left no partial file. A
        // snapshot that never sent a byte is not (its etcd does not serve: talos#14212): the next source is offered.
        const text = messageOf(error);
        const permanent = /not found|no such file|not a control|worker|unimplemented|permission|sent no byte/i.test(
          text,
        );
        throw new ActionError(text, !permanent);
      }
    },
    describe: (s) =>
      `${basename(s.file)}: revision ${s.revision}, integrity ${s.integrity}, sha256 ${s.sha256.slice(0, 12)}…`,
  });
}

/** One member's raw copy, as compared when no member can say which data is freshest. */
interface RawCopy {
  node: string;
  info: SnapshotInfo | null;
  error: ActionError | null;
}

/**
 * Issue 15: when no member reports an applied index (every etcd crash-looping or not serving), nothing live says which
 * node's data is newest, so the first node's copy may lose writes the others hold. Every reachable member's database
 * is copied instead (each verified on its own, as a single raw copy is), each copy's revision is read offline by our
 * bbolt reader, and the highest is used: the members apply one raft log in order and every write transaction adds one
 * to the revision (etcd-io/etcd server/storage/mvcc/kvstore_txn.go@02d3daf, storeTxnWrite.End: currentRev++), so the
 * copy with the highest revision has applied the most of it. The other copies stay in snapshots/ as evidence; a copy
 * that fails or does not verify is named and skipped.
 */
async function freshestRawCopy(
  deps: EffectDeps,
  nodes: readonly string[],
  opId: string,
  opts: TakeSnapshotOptions,
): Promise<SnapshotInfo> {
  // the copies run side by side: one line for all of them, their bytes added up
  const received = new Map<string, number>();
  const label = `Copying the etcd databases of ${nodes.length} members`;
  const progressOf = (node: string) => (p: SnapshotProgress) => {
    received.set(node, p.bytes);
    opts.onProgress?.({ label, bytes: [...received.values()].reduce((a, b) => a + b, 0), total: 0 });
  };
  const copies = await Promise.all(
    nodes.map(async (node): Promise<RawCopy> => {
      const single: SnapshotOption = {
        id: `raw:${node}`,
        method: 'raw',
        node,
        file: null,
        label: '',
        failed: null,
      };
      try {
        const info = await takeSnapshot(deps, single, `${opId}:${node}`, { onProgress: progressOf(node) });
        return { node, info, error: null };
      } catch (error) {
        return { node, info: null, error: error instanceof ActionError ? error : new ActionError(messageOf(error)) };
      }
    }),
  );
  const taken = copies.filter((c): c is RawCopy & { info: SnapshotInfo } => c.info !== null);
  const failed = copies.filter((c) => c.error).map((c) => `${c.node}: ${briefReason(c.error?.message ?? '')}`);
  if (taken.length === 0) {
    throw new ActionError(
      `No member's raw database could be copied (${failed.join('; ')}); check that the nodes answer and try again, or use a snapshot file.`,
      copies.some((c) => c.error?.retryable),
    );
  }
  // ties keep the nodes' order (the first given wins, as for the freshest member)
  const best = taken.reduce((a, b) => ((b.info.revision ?? -1) > (a.info.revision ?? -1) ? b : a));
  const candidates = copies.map((c) => ({
    node: c.node,
    file: c.info?.file ?? null,
    revision: c.info?.revision ?? null,
    error: c.error ? c.error.message : null,
  }));
  const choice = rawChoiceSentence(best.node, best.info.revision, candidates);
  deps.journal.append({
    kind: 'decision',
    step: 'snapshot',
    node: best.node,
    what: 'no member reports an applied index: the raw copy with the highest revision is used',
    result: choice,
    data: { chosen: best.node, file: best.info.file, copies: candidates },
  });
  return { ...best.info, candidates, choice };
}

/** "the copy from X: revision 130, the highest (Y: 127, Z: copy failed: …); the others stay in snapshots/ as evidence" */
export function rawChoiceSentence(
  node: string,
  revision: number | null,
  candidates: readonly { node: string; revision: number | null; error: string | null }[],
): string {
  const others = candidates
    .filter((c) => c.node !== node)
    .map((c) =>
      c.error ? `${c.node}: not used, ${briefReason(c.error)}` : `${c.node}: revision ${c.revision ?? '?'}`,
    );
  const tie = candidates.some((c) => c.node !== node && !c.error && c.revision === revision);
  const kept = candidates.filter((c) => c.node !== node && !c.error).length;
  const why =
    kept === 0
      ? 'the only copy that could be taken'
      : tie
        ? 'as high as any (equal revisions: the first node given is used)'
        : 'the highest';
  return `the raw copy from ${node}: revision ${revision ?? '?'}, ${why}${others.length ? ` (${others.join('; ')})` : ''}${kept ? '; the other copies stay in snapshots/ as evidence' : ''}`;
}

/** A failed copy's sentence without what applies to a single copy only (nothing kept, run again). */
function briefReason(sentence: string): string {
  const cut = sentence.search(/[;,:]? (nothing was kept|the partial snapshot was removed)/);
  const head = stripPeriod(cut > 0 ? sentence.slice(0, cut) : sentence);
  return head.charAt(0).toLowerCase() + head.slice(1);
}

function stripPeriod(sentence: string): string {
  return sentence.replace(/\.$/, '');
}

/**
 * Issue 16: a talos-backup snapshot as the source — a file (`.snap`, `.snap.zst`, `.snap.age`, `.snap.zst.age`), one
 * object (s3://bucket/prefix/NAME.snap…) or the newest under a prefix (s3://bucket/prefix) — decrypted, decompressed
 * into the incident's snapshots/ (0600) and verified exactly as `talos-dr import` does, with the sha256 chain
 * journalled. The age identity is the file TALOS_DR_IDENTITY names (its passphrase, if it has one, from
 * TALOS_DR_IDENTITY_PASSPHRASE: the screen cannot ask for it); the key is only ever in this process's memory.
 */
async function importBackup(deps: EffectDeps, spec: string, opts: TakeSnapshotOptions): Promise<SnapshotInfo> {
  await persisted(deps);
  const env = process.env;
  const s3 = isS3Url(spec);
  let opened: OpenedBackup | null = null;
  try {
    const identityFile = backupIdentityOf(deps) ?? env.TALOS_DR_IDENTITY;
    // the identity's loader (and age-encryption behind it) is loaded only when a backup is imported
    const identity = identityFile
      ? await (
          await import('../backups/identity.js')
        ).loadIdentity(resolve(identityFile), () => Promise.resolve(env.TALOS_DR_IDENTITY_PASSPHRASE || null))
      : undefined;
    opened = await openBackup(spec, {
      cwd: process.cwd(),
      env,
      newest: s3 && parseBackupName(spec) === null,
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(opts.s3StallMs !== undefined ? { stallMs: opts.s3StallMs } : {}),
    });
    const out = freeName(deps.incident.snapshots, `backup-${opened.plainName}`);
    const { source } = opened;
    const reading = `${s3 ? 'Downloading' : 'Importing'} ${source.name}`;
    const verifying = `Verifying ${basename(out)}`;
    opts.onProgress?.({ label: reading, bytes: 0, total: source.size ?? 0 });
    const result = await importSnapshot(source, {
      out,
      ...(identity ? { identity } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
      onProgress: (bytes, total) => opts.onProgress?.({ label: reading, bytes, total: total ?? 0 }),
      onVerifyProgress: (bytes, total) => opts.onProgress?.({ label: verifying, bytes, total }),
    });
    const named = opened.chosen?.takenAt ?? parseBackupName(opened.source.name)?.takenAt ?? null;
    const takenAt = named?.getTime() ?? (s3 ? Date.now() : statSync(resolve(spec)).mtimeMs);
    deps.journal.append({
      kind: 'observation',
      step: 'snapshot',
      what: `backup ${opened.source.name} imported into the incident folder`,
      result: result.file,
      ok: true,
      data: {
        from: opened.source.name,
        typed: spec,
        file: result.file,
        layers: result.layers,
        chain: result.chain.map((c) => ({ stage: c.stage, sha256: c.sha256, bytes: c.bytes })),
        takenAt: new Date(takenAt).toISOString(),
        ...(identity ? { identityFile: identity.file } : {}),
      },
    });
    const info = snapshotInfo(result.report, { method: 'file', node: null, raftAppliedIndex: null, takenAt });
    return withFreshness(deps, { ...info, source: opened.source.name });
  } catch (error) {
    if (error instanceof ActionError) throw error;
    // an S3 endpoint that cannot be reached may be back in a moment: the step tries again before giving up on it
    const text = messageOf(error);
    throw new ActionError(text, s3 && /cannot be reached|SlowDown|ServiceUnavailable|InternalError/.test(text));
  } finally {
    opened?.close();
  }
}

/**
 * The identity file `recover --identity` names: the lead passes it as EffectDeps.backupIdentity (read here without
 * depending on that field's declaration, so this works before and after it lands); else TALOS_DR_IDENTITY.
 */
function backupIdentityOf(deps: EffectDeps): string | undefined {
  const given = (deps as { backupIdentity?: unknown }).backupIdentity;
  return typeof given === 'string' && given !== '' ? given : undefined;
}

/** NAME, else NAME-1, NAME-2…: a name in `dir` that neither a snapshot nor its .sha256 uses yet. */
function freeName(dir: string, name: string): string {
  const ext = extname(name);
  const stem = basename(name, ext);
  for (let i = 0; ; i++) {
    const file = join(dir, `${stem}${i === 0 ? '' : `-${i}`}${ext}`);
    if (!existsSync(file) && !existsSync(`${file}.sha256`)) return file;
  }
}

/**
 * Issue 16, freshness before anything is wiped: a file's revision against the newest revision a member's data held
 * when it was read in this incident (a raw copy's or a snapshot's, from the journal). When none was read, the
 * sentence says so: restoring the file may lose writes.
 */
function withFreshness(deps: EffectDeps, info: SnapshotInfo): SnapshotInfo {
  if (info.revision === null) return info;
  const freshness = snapshotFreshness(info.revision, liveRevisionsRead(deps), new Date(info.takenAt), new Date());
  deps.journal.append({
    kind: freshness.verdict === 'older' || freshness.verdict === 'unknown' ? 'warning' : 'observation',
    step: 'snapshot',
    what: `freshness of ${basename(info.file)}: ${freshness.verdict}`,
    result: freshness.sentence,
    data: {
      snapshotRevision: freshness.snapshotRevision,
      liveRevision: freshness.liveRevision,
      liveNode: freshness.liveNode,
      behind: freshness.behind,
    },
  });
  return {
    ...info,
    freshness: {
      verdict: freshness.verdict,
      behind: freshness.behind,
      liveNode: freshness.liveNode,
      sentence: freshness.sentence,
    },
  };
}

/** Each member's newest revision read from its data in this incident: its raw copies and its snapshots. */
function liveRevisionsRead(deps: EffectDeps): LiveRevision[] {
  const newest = new Map<string, LiveRevision>();
  const note = (node: string, revision: number, source: LiveRevision['source']) => {
    const seen = newest.get(node);
    if (!seen || revision > seen.revision) newest.set(node, { node, revision, source });
  };
  for (const r of readJournal(deps.incident.dir)) {
    // the copies compared when no member could say which was freshest (freshestRawCopy's decision)
    if (r.kind === 'decision' && Array.isArray(r.data?.copies)) {
      for (const c of r.data.copies as { node?: unknown; revision?: unknown }[])
        if (typeof c.node === 'string' && typeof c.revision === 'number') note(c.node, c.revision, 'raw-copy');
    }
    const revision = r.data?.revision;
    if (r.kind !== 'observation' || !r.node || typeof revision !== 'number') continue;
    const how = /^snapshot (raw|api) /.exec(r.what)?.[1];
    if (how) note(r.node, revision, how === 'raw' ? 'raw-copy' : 'reported');
  }
  return [...newest.values()];
}

/**
 * A snapshot file the user gave, copied into the incident's snapshots/ (0600, never over another file): the evidence
 * stays with the incident, and the upload reads this copy even if the original is moved or the user resumes
 * elsewhere. A file already in snapshots/ is used where it is.
 */
function copyIntoIncident(deps: EffectDeps, source: string): string {
  if (dirname(source) === resolve(deps.incident.snapshots)) return source;
  const ext = extname(source);
  const stem = basename(source, ext);
  for (let i = 0; ; i++) {
    const dest = join(deps.incident.snapshots, `given-${stem}${i === 0 ? '' : `-${i}`}${ext}`);
    try {
      copyFileSync(source, dest, constants.COPYFILE_EXCL);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && i < 1000) continue;
      throw new ActionError(
        `Cannot copy ${source} into the incident folder (${messageOf(error)}); free some space there or give another file.`,
      );
    }
    chmodSync(dest, 0o600);
    return dest;
  }
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The snapshot file read again just before the upload: it must be the file that was verified. */
export async function verifySnapshotFile(deps: EffectDeps, file: string): Promise<{ sha256: string }> {
  await persisted(deps);
  try {
    return { sha256: await sha256OfFile(file) };
  } catch (error) {
    throw new ActionError(`The snapshot ${file} cannot be read any more (${messageOf(error)}).`);
  }
}
