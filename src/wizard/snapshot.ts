/** Step 3's effects: take a snapshot (API or raw copy) or check a given file, and re-hash it before the upload. */
import { createHash } from 'node:crypto';
import { chmodSync, constants, copyFileSync, createReadStream, existsSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { acquireSnapshot } from '../etcd/acquire.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import type { SnapshotReport } from '../etcd/types.js';
import type { SnapshotInfo, SnapshotOption } from '../../machines/recovery-types.js';
import { persisted, statusTimeout, type EffectDeps } from './deps.js';
import { ActionError, ledgered, messageOf } from './ledger.js';

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
    bytes: report.size,
    takenAt: extra.takenAt,
  };
}

export async function takeSnapshot(deps: EffectDeps, option: SnapshotOption, opId: string): Promise<SnapshotInfo> {
  if (option.method === 'file') {
    await persisted(deps);
    // typed relative to where talos-dr runs now; a resume from another folder must not look for it there
    const typed = option.file ?? '';
    const source = resolve(typed);
    if (!existsSync(source)) throw new ActionError(`${source} does not exist; give the path of a snapshot file.`);
    const report = await inspectSnapshot(source, { signal: deps.signal }).catch((e: unknown) => {
      throw new ActionError(messageOf(e));
    });
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
    return snapshotInfo({ ...report, file }, { method: 'file', node: null, raftAppliedIndex: null, takenAt });
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
      try {
        const acquired = await acquireSnapshot(deps.client, node, {
          dir: deps.incident.snapshots,
          raw,
          signal: deps.signal,
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
