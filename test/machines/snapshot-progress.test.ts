/**
 * Step 3 shows its transfer as it goes (issue 16: the backup "downloads with progress and ETA, then imports"; issue 12
 * item 7: the wizard's snapshot download shows its bytes/s): the actor's snapshot.progress events become the
 * context's transfer, which the screen draws as bytes, rate and ETA (components/TransferProgress.tsx), each phase
 * under its own label; the transfer is gone once the snapshot is taken. The machine itself does no I/O: the actor
 * here is scripted, the cluster in memory.
 */
import { expect, test } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { apiSnapshot, fakeCluster, NODES } from '../components/fake-cluster.js';
import type { SnapshotInfo, SnapshotOption, Transfer } from '../../machines/recovery.js';

test("the actor's progress is the step's transfer, phase by phase, and is cleared when the snapshot is in", async () => {
  const cluster = fakeCluster();
  const reports = [
    { label: 'Downloading s3://backups/prod-1/prod-1-2026-12-02T10:00:00Z.snap.zst.age', bytes: 0, total: 4096 },
    { label: 'Downloading s3://backups/prod-1/prod-1-2026-12-02T10:00:00Z.snap.zst.age', bytes: 1024, total: 4096 },
    { label: 'Downloading s3://backups/prod-1/prod-1-2026-12-02T10:00:00Z.snap.zst.age', bytes: 4096, total: 4096 },
    { label: 'Verifying backup-prod-1-2026-12-02T10:00:00Z.snap', bytes: 8192, total: 8192 },
  ];
  const seen: (Transfer | null)[] = [];
  const machine = cluster.machine.provide({
    actors: {
      acquireSnapshot: fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(async ({ self }) => {
        for (const report of reports) {
          self._parent?.send({ type: 'snapshot.progress', ...report });
          // the machine has taken it before the next one comes
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        return apiSnapshot();
      }),
    },
  });
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'tester', mode: 'drill', timing: { pollMs: 20, backoffMs: 10 } },
  });
  let answered = -1;
  actor.subscribe((s) => {
    const p = s.context.prompt;
    if (s.matches({ procedure: 'snapshot' }) && s.context.transfer !== seen.at(-1)) seen.push(s.context.transfer);
    if (p?.recommended && s.context.promptSeq !== answered && p.id !== 'typed-address') {
      answered = s.context.promptSeq;
      const event = p.recommended;
      setImmediate(() => actor.send(event));
    }
  });
  actor.start();
  const after = await waitFor(actor, (s) => s.matches({ procedure: 'backup' }) || s.status === 'done', {
    timeout: 10_000,
  });
  actor.stop();
  expect(after.matches({ procedure: 'backup' })).toBe(true);
  const shown = seen.filter((t): t is Transfer => t !== null);
  expect(shown.map((t) => ({ label: t.label, bytes: t.bytes, total: t.total }))).toEqual(reports);
  // nothing is shown as moving once the snapshot is in
  expect(after.context.transfer).toBeNull();
});
