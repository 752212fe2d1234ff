/**
 * Golden incident folders: state.json (with the simulated cluster's sim-state.json, the journal, the snapshot and
 * configuration files beside it) saved by the recovery machine at several points of a lost-quorum drill, and `talos-dr
 * resume` on a copy of each must reach the drill's outcome. They pin what a saved state.json names — state ids, child
 * ids, prompt ids, operation ids in the journal — so that reorganising the machine cannot strand an incident that an
 * older build saved.
 *
 * Each folder is replayed as if the crash had just happened: every time in it (epoch milliseconds and ISO stamps, in
 * the machine's context, the simulator's service events and the journal) is moved forward by the time since it was
 * recorded, so a wait's deadline still lies ahead, as it would for a prompt resume.
 *
 * Recorded once with `TALOS_DR_RECORD_GOLDEN=1 npx vitest run test/machines/golden.test.ts` (the machine as it was at
 * the commit that added them); the normal run only resumes them.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import resume from '../../src/commands/resume.js';
import type { CommandContext } from '../../src/commands/types.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { startSimulator } from '../../src/sim/index.js';
import { createTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { RecoveryMachine } from '../../machines/recovery.js';
import { SPEED, startSessionOn, type Ground } from '../drill/harness.js';

const GOLDEN = join(import.meta.dirname, 'golden');
const PLACEHOLDER = '@INCIDENT@';
const SCENARIO = 'lost-quorum';
/** Files of an incident folder a resume reads (sim/ is rebuilt from sim-state.json). */
const KEPT = ['state.json', 'sim-state.json', 'journal.jsonl', 'snapshots', 'configs', 'given'];

type Snap = SnapshotFrom<RecoveryMachine>;

/** The dotted path of the deepest active state, e.g. "procedure.bootstrap.confirm". */
const at = (s: Snap): string => {
  const parts: string[] = [];
  let v: unknown = s.value;
  while (v && typeof v === 'object') {
    const [k, next] = Object.entries(v as Record<string, unknown>)[0] as [string, unknown];
    parts.push(k);
    v = next;
  }
  if (typeof v === 'string') parts.push(v);
  return parts.join('.');
};

/** The dotted state of a child actor, e.g. "back.observing". */
const childAt = (s: Snap, id: string): string | null => {
  const child = (s.children as Record<string, { getSnapshot(): { value: unknown } } | undefined>)[id];
  return child ? at(child.getSnapshot() as Snap).replace(/^\.|\.$/g, '') : null;
};

interface Point {
  name: string;
  /** a different loopback range per folder (outside the ranges the drill harness and `drill` pick at random) */
  addressBase: string;
  when: (s: Snap) => boolean;
  /** stop the procedure by the user (q) at that point instead of crashing there */
  abort?: boolean;
  /** why resuming this folder does not reach the outcome today (the test then expects it to fail, to be flipped) */
  knownDefect?: string;
  /** leave the open question unanswered while this holds (to let an effect in flight finish first) */
  hold?: (s: Snap) => boolean;
}

const POINTS: Point[] = [
  { name: '1-confirm-nodes', addressBase: '127.253.1.2', when: (s) => at(s) === 'procedure.confirmNodes' },
  { name: '2-snapshot-source', addressBase: '127.253.2.2', when: (s) => at(s) === 'procedure.snapshot.choosing' },
  {
    name: '3-prepare-second-node',
    addressBase: '127.253.3.2',
    // the first node's Reset answered, its child watching it come back; the second node's question open
    when: (s) =>
      at(s) === 'procedure.prepare.confirming' &&
      s.context.confirmed.length === 1 &&
      childAt(s, `prep:${s.context.confirmed[0]}`) === 'back.observing',
    hold: (s) => at(s) === 'procedure.prepare.confirming' && s.context.confirmed.length === 1,
  },
  {
    name: '4-stopped-mid-prepare',
    addressBase: '127.253.4.2',
    when: (s) => at(s) === 'procedure.prepare.confirming' && s.context.confirmed.length === 2,
    abort: true,
  },
  { name: '5-wait-preparing', addressBase: '127.253.5.2', when: (s) => at(s) === 'procedure.waitPreparing.polling' },
  { name: '6-bootstrap-confirm', addressBase: '127.253.6.2', when: (s) => at(s) === 'procedure.bootstrap.confirm' },
  {
    name: '7-verify',
    addressBase: '127.253.7.2',
    when: (s) => at(s) === 'procedure.verify.polling',
    knownDefect:
      "the simulator's saved state drops a Bootstrap it accepted but has not restored yet (src/sim), so the resumed cluster never restores and verify times out",
  },
];

// ---- replaying a folder ---------------------------------------------------------------------------------------------

const EPOCH_MS = /([:,[])(1[6-9]\d{11}|20\d{11})(?=[,}\]])/g;
const ISO = /"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"/g;

/** Moves every time in a JSON text forward by `delta` ms (numbers only where they are JSON values, never in hex). */
function shiftTimes(text: string, delta: number): string {
  return text
    .replace(EPOCH_MS, (_m, pre: string, ms: string) => `${pre}${Number(ms) + delta}`)
    .replace(ISO, (_m, iso: string) => `"${new Date(Date.parse(iso) + delta).toISOString()}"`);
}

interface Manifest {
  recordedAt: number;
  /** modification times of the files (the wizard dates a given snapshot by it), relative paths */
  mtimes: Record<string, number>;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** A copy of the golden folder `name` as a live incident folder, its times moved to now. */
function incidentFrom(name: string): string {
  const src = join(GOLDEN, name);
  // the folder as the tool makes it (with its empty snapshots/ and configs/), then the saved files
  const { dir } = createIncidentDir(join(mkdtempSync(join(tmpdir(), 'talos-dr-golden-')), 'incident'));
  const manifest = JSON.parse(readFileSync(join(src, 'manifest.json'), 'utf8')) as Manifest;
  const delta = Date.now() - manifest.recordedAt;
  for (const file of filesUnder(src)) {
    if (file === 'manifest.json') continue;
    const to = join(dir, file);
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    const text = /\.(json|jsonl|yaml|sha256)$/.test(file);
    if (text) {
      const content = readFileSync(join(src, file), 'utf8').split(PLACEHOLDER).join(dir);
      writeFileSync(to, file.endsWith('.yaml') ? content : shiftTimes(content, delta), { mode: 0o600 });
    } else cpSync(join(src, file), to);
    const mtime = manifest.mtimes[file];
    if (mtime) utimesSync(to, new Date(mtime + delta), new Date(mtime + delta));
  }
  return dir;
}

function ctxFor(args: string[], out: string[]): CommandContext {
  const stdout = new Writable({
    write(chunk, _enc, cb) {
      out.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const stderr = new Writable({
    write(chunk, _enc, cb) {
      out.push(`stderr: ${String(chunk)}`);
      cb();
    },
  });
  return {
    args,
    global: {},
    io: { stdout, stderr, stdinIsTTY: false, env: { TALOS_DR_DRILL_SPEED: String(SPEED) }, cwd: tmpdir() },
    signal: new AbortController().signal,
  };
}

interface NodeCalls {
  state: { address: string };
  calls: { reset: number; bootstrap: number; apply: number; reboot: number; recover: number };
}

const recording = process.env.TALOS_DR_RECORD_GOLDEN === '1';

describe.skipIf(recording)('golden state.json files resume to their outcome', () => {
  for (const point of POINTS) {
    (point.knownDefect ? it.fails : it)(
      `${point.name}: resume recovers, no destructive call twice`,
      async () => {
        const dir = incidentFrom(point.name);
        const out: string[] = [];
        const code = await resume(ctxFor([dir], out));
        expect(out[0]).toBe(`resuming the drill in ${dir}`);
        expect(out.at(-1)).toBe('outcome: recovered');
        expect(code).toBe(0);
        const calls = (JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as { nodes: NodeCalls[] }).nodes;
        for (const n of calls) {
          expect(n.calls.reset, `${n.state.address} reset`).toBeLessThanOrEqual(1);
          expect(n.calls.bootstrap, `${n.state.address} bootstrap`).toBeLessThanOrEqual(1);
          expect(n.calls.recover, `${n.state.address} upload`).toBeLessThanOrEqual(1);
        }
        expect(calls.reduce((a, n) => a + n.calls.bootstrap, 0)).toBe(1);
        expect(calls.filter((n) => n.calls.reset === 1)).toHaveLength(3);
      },
      120_000,
    );
  }
});

// ---- recording ------------------------------------------------------------------------------------------------------

async function record(point: Point): Promise<void> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-golden-rec-')), 'incident');
  const incident = createIncidentDir(dir);
  const sim = await startSimulator({
    scenario: SCENARIO,
    dir: join(dir, 'sim'),
    port: 0,
    addressBase: point.addressBase,
    speed: SPEED,
    talosconfigPath: join(dir, 'sim', 'talosconfig'),
  });
  await sim.writeGiven(dir);
  const client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), {
    defaultTimeoutMs: 2000,
    connectTimeoutMs: 2000,
  });
  const journal = new Journal(dir);
  const g: Ground = { sim, client, incident, journal, operator: 'autopilot' };
  const session = startSessionOn(g);
  const reached = new Promise<void>((resolve, reject) => {
    let answered = -1;
    let done = false;
    let aborting = false;
    const answer = (s: Snap) => {
      if (s.status !== 'active')
        reject(new Error(`the drill ended (${String(s.context.outcome)}) before ${point.name}`));
      const p = s.context.prompt;
      if (p?.recommended && s.context.promptSeq !== answered && !point.hold?.(s)) {
        answered = s.context.promptSeq;
        const event = p.recommended;
        setImmediate(() => session.actor.send(event));
      }
    };
    const sub = session.actor.subscribe((s) => {
      if (done) return;
      if (aborting) {
        if (s.value !== 'stoppedByUser') return;
      } else if (point.when(s)) {
        if (point.abort) {
          // stopped by the user (q) at this point: the saved state is stoppedByUser, with the step in its history
          aborting = true;
          setImmediate(() => session.actor.send({ type: 'abort' }));
          return;
        }
      } else {
        answer(s);
        return;
      }
      done = true;
      sub.unsubscribe();
      // state.json holds this snapshot already (the session writes it first); nothing more is sent from here
      session.stop();
      resolve();
    });
  });
  await reached;
  await sim.saveState(join(dir, 'sim-state.json'));
  client.close();
  journal.close();
  await sim.stop();

  // the envelope `drill --autopilot` writes (the harness's session writes only mode and nodes)
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
  const envelope = {
    ...state,
    scenario: SCENARIO,
    autopilot: true,
    context: sim.context,
    addressBase: point.addressBase,
  };
  writeFileSync(join(dir, 'state.json'), `${JSON.stringify(envelope)}\n`);

  const to = join(GOLDEN, point.name);
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  const manifest: Manifest = { recordedAt: Date.parse(String(state.savedAt)), mtimes: {} };
  for (const top of KEPT) {
    if (!existsSync(join(dir, top))) continue;
    const files = statSync(join(dir, top)).isDirectory() ? filesUnder(join(dir, top)).map((f) => join(top, f)) : [top];
    for (const file of files) {
      const from = join(dir, file);
      mkdirSync(dirname(join(to, file)), { recursive: true });
      if (/\.(json|jsonl|yaml|sha256)$/.test(file))
        writeFileSync(join(to, file), readFileSync(from, 'utf8').split(dir).join(PLACEHOLDER));
      else cpSync(from, join(to, file));
      manifest.mtimes[file] = statSync(from).mtimeMs;
    }
  }
  writeFileSync(join(to, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

describe.runIf(recording)('recording the golden incident folders', () => {
  const only = process.env.TALOS_DR_RECORD_ONLY;
  for (const point of POINTS.filter((p) => !only || p.name.startsWith(only)))
    it(point.name, () => record(point), 120_000);
});
