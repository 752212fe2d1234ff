/**
 * Step 3's transfer as the screen draws it (issue 16: the newest backup "downloads with progress and ETA"; issue 12
 * item 7: the wizard's snapshot download shows its bytes/s): the context's transfer as the snapshot step sets it from
 * the actor's progress (a label, no node or file) is drawn under its own label, with the bar and ETA when the size is
 * known (an S3 object) and the bytes so far and rate when it is not (a node's EtcdSnapshot stream).
 */
import { expect, it } from 'vitest';
import { renderToString } from 'ink';
import { selectTransfer } from '../../components/selectors.js';
import { TransferProgress } from '../../components/TransferProgress.js';
import type { Transfer } from '../../machines/recovery-types.js';
import { NOW } from './fixtures.js';

const MiB = 1024 * 1024;
const stepThree = (label: string, bytes: number, total: number): Transfer => ({
  node: '',
  file: '',
  bytes,
  total,
  restarts: 0,
  label,
});

const draw = (transfer: Transfer, startedAt: number): string =>
  renderToString(<TransferProgress transfer={selectTransfer({ transfer }, startedAt)!} now={NOW} width={76} />, {
    columns: 80,
  });

it('the newest backup from S3: its name, the bar, bytes of the object, rate and ETA', () => {
  const label = 'Downloading s3://backups/prod-1/prod-1-2026-12-02T10:00:00Z.snap.zst.age';
  const f = draw(stepThree(label, 6 * MiB, 24 * MiB), NOW - 3000);
  expect(f).toContain(label);
  expect(f).not.toMatch(/Uploading/);
  expect(f).toMatch(/█+░+\s+25%/);
  expect(f).toContain('6.0 MiB / 24.0 MiB  2.0 MiB/s  ETA 0:09');
});

it("a node's snapshot stream: bytes so far and the rate, no ETA (its size is not known ahead)", () => {
  const f = draw(stepThree('Downloading the etcd snapshot from 127.0.0.2', 3 * MiB, 0), NOW - 1000);
  expect(f).toContain('Downloading the etcd snapshot from 127.0.0.2');
  expect(f).toContain('3.0 MiB so far  3.0 MiB/s');
  expect(f).not.toContain('ETA');
});
