/**
 * Issue 15, the freshest source when no member can say: etcd crash-loops on every node (scenario etcd-down-raw-copy:
 * cp-1 is 3 revisions behind, cp-3 9, cp-2 holds the newest data), so no member reports an applied index. Step 3
 * copies every member's raw database over the real wire, reads each copy's revision offline, uses the highest and
 * keeps the others as evidence, saying which and why on screen and in the journal. Before: the first node's copy
 * (cp-1) was taken and 3 revisions of writes were lost.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeGrounds, runScenario, startGround, type DrillRun } from '../drill/harness.js';
import { rawChoiceSentence, takeSnapshot } from '../../src/wizard/snapshot.js';
import { ActionError } from '../../src/wizard/ledger.js';
import { readJournal } from '../../src/journal/journal.js';

const runs: DrillRun[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'talos-dr-freshest-'));
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
  await closeGrounds();
  rmSync(scratch, { recursive: true, force: true });
});

/** etcd-down-raw-copy with extra faults: a variant of the shipped scenario, loaded from a path. */
function variant(name: string, faults: string[]): string {
  const shipped = readFileSync(join(import.meta.dirname, '../../scenarios/etcd-down-raw-copy.yaml'), 'utf8');
  const file = join(scratch, `${name}.yaml`);
  writeFileSync(file, `${shipped.replace(/^name: .*$/m, `name: ${name}`)}\nfaults:\n${faults.join('\n')}\n`);
  return file;
}

const everyMember = (nodes: string[]) => ({
  id: 'raw:every-member',
  method: 'raw' as const,
  node: null,
  nodes,
  file: null,
  label: 'copy the raw database from every member',
  failed: null,
});

describe('no member can say which data is freshest', () => {
  it('autopilot recovers from the copy with the highest revision (cp-2), not the first node, and loses nothing', async () => {
    const r = await runScenario('etcd-down-raw-copy');
    runs.push(r);
    const [cp1, cp2, cp3] = r.sim.nodes as [string, string, string];
    expect(r.lines.at(-1)).toBe('outcome: recovered');
    expect(r.context.verdict?.freshest).toBeNull();
    expect(r.context.snapshot).toMatchObject({ method: 'raw', node: cp2, needsSkipHashCheck: true });
    expect(r.sim.dataReport().lostRevisions).toBe(0);

    // every copy's revision, read offline, in the journal's decision; cp-2's is the highest
    const decision = r.journal.find((j) => j.kind === 'decision' && /highest revision/.test(j.what));
    const copies = decision?.data?.copies as { node: string; revision: number; file: string }[];
    expect(copies.map((c) => c.node)).toEqual([cp1, cp2, cp3]);
    const rev = Object.fromEntries(copies.map((c) => [c.node, c.revision]));
    expect(rev[cp2]! - rev[cp1]!).toBe(3);
    expect(rev[cp2]! - rev[cp3]!).toBe(9);
    expect(decision?.result).toBe(
      `the raw copy from ${cp2}: revision ${rev[cp2]}, the highest (${cp1}: revision ${rev[cp1]}; ${cp3}: revision ${rev[cp3]}); the other copies stay in snapshots/ as evidence`,
    );

    // on screen: the choice offered first (autopilot's answer), and step 3's line says which copy and why
    const chose = r.journal.find(
      (j) => j.kind === 'confirmation' && /^chose "copy the raw database from every/.test(j.result ?? ''),
    );
    expect(chose).toBeDefined();
    const step3 = r.context.steps.find((s) => s.name === 'snapshot');
    expect(step3?.result).toMatch(
      new RegExp(`^raw from ${cp2.replace(/\./g, '\\.')} \\(highest revision of 3 copies\\): revision ${rev[cp2]},`),
    );
    expect(step3?.result).toContain(`the raw copy from ${cp2}: revision ${rev[cp2]}, the highest`);
    expect(r.lines.find((l) => /^step 3\/\d+ /.test(l))).toContain(cp2);

    // the other two copies stay as evidence beside the one used, each with its .sha256
    const kept = readdirSync(join(r.dir, 'snapshots')).filter((f) => f.endsWith('.db'));
    expect(kept).toHaveLength(3);
    for (const c of copies) expect(kept).toContain(c.file.split('/').pop());
  });

  it('a copy that is cut in transit is named and skipped; the highest of the others is used', async () => {
    const g = await startGround(
      variant('cut-copy', ['  - { kind: cut-stream, node: cp-2, method: Copy, afterBytes: 3000, times: 5 }']),
    );
    const [cp1, cp2, cp3] = g.sim.nodes as [string, string, string];
    const deps = { ...g, connectMaintenance: null, statusTimeoutMs: 1000 };
    const info = await takeSnapshot(deps, everyMember([cp1, cp2, cp3]), 'snapshot:raw:every-member:0');
    expect(info).toMatchObject({ method: 'raw', node: cp1 });
    expect(info.candidates?.find((c) => c.node === cp2)).toMatchObject({ file: null, revision: null });
    expect(info.candidates?.find((c) => c.node === cp2)?.error).toMatch(/raw copy stream from .* is not a complete/);
    expect(info.choice).toMatch(new RegExp(`${cp2.replace(/\./g, '\\.')}: not used, the raw copy stream`));
    const decision = readJournal(g.incident.dir).find((j) => j.kind === 'decision');
    expect(decision?.node).toBe(cp1);
    // the cut copy left nothing behind: two copies and their checksums
    expect(readdirSync(g.incident.snapshots).sort()).toHaveLength(4);
  });

  it('says so when the copy used is the only one, or ties with another', () => {
    const one = rawChoiceSentence('10.0.0.2', 7, [
      { node: '10.0.0.2', revision: 7, error: null },
      {
        node: '10.0.0.3',
        revision: null,
        error: 'The raw copy from 10.0.0.3 is not a sound etcd database; nothing was kept.',
      },
    ]);
    expect(one).toBe(
      'the raw copy from 10.0.0.2: revision 7, the only copy that could be taken (10.0.0.3: not used, the raw copy from 10.0.0.3 is not a sound etcd database)',
    );
    const tie = rawChoiceSentence('10.0.0.2', 7, [
      { node: '10.0.0.2', revision: 7, error: null },
      { node: '10.0.0.3', revision: 7, error: null },
    ]);
    expect(tie).toBe(
      'the raw copy from 10.0.0.2: revision 7, as high as any (equal revisions: the first node given is used) (10.0.0.3: revision 7); the other copies stay in snapshots/ as evidence',
    );
  });

  it('when no copy can be taken, one sentence names each node and why', async () => {
    const g = await startGround(
      variant(
        'no-copy',
        ['cp-1', 'cp-2', 'cp-3'].map(
          (n) =>
            `  - { kind: fail, node: ${n}, method: Copy, times: 5, code: PermissionDenied, message: "not allowed" }`,
        ),
      ),
    );
    const deps = { ...g, connectMaintenance: null, statusTimeoutMs: 1000 };
    const error = await takeSnapshot(deps, everyMember(g.sim.nodes), 'snapshot:raw:every-member:0').catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ActionError);
    const message = (error as Error).message;
    expect(message).toMatch(/^No member's raw database could be copied \(/);
    for (const n of g.sim.nodes) expect(message).toContain(`${n}: `);
    expect(message).not.toMatch(/\n|at .*\.ts/);
    expect(readdirSync(g.incident.snapshots)).toEqual([]);
  });
});
