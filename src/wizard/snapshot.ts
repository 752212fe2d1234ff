/** Step 3's effects: take a snapshot (API or raw copy) or check a given file, and re-hash it before the upload. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
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
    const file = option.file ?? '';
    if (!existsSync(file)) throw new ActionError(`${file} does not exist; give the path of a snapshot file.`);
    const report = await inspectSnapshot(file, { signal: deps.signal }).catch((e: unknown) => {
      throw new ActionError(messageOf(e));
    });
    return snapshotInfo(report, {
      method: 'file',
      node: null,
      raftAppliedIndex: null,
      takenAt: statSync(file).mtimeMs,
    });
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
