/**
 * Runs the recovery machine in-process, with the real Talos client against the simulator, exactly as
 * `talos-dr drill --autopilot` does (same runDrill), but keeps the simulator running afterwards so the tests can ask it
 * what happened (destructive calls, data report, node views).
 */
import { spawn } from 'node:child_process';
import { onTestFinished } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal, type JournalRecord } from '../../src/journal/journal.js';
import { runDrill } from '../../src/wizard/drill.js';
import { readState } from '../../src/journal/state.js';
import type { RecoveryContext } from '../../machines/recovery.js';
import type { Timing } from '../../machines/recovery-types.js';
import type { Snapshot } from 'xstate';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { createTalosClient } from '../../src/talos/client.js';
import type { TalosClient } from '../../src/talos/types.js';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { startSession, type Session } from '../../src/wizard/session.js';
import { timingFor } from '../../src/wizard/run.js';
import type { IncidentPaths } from '../../src/journal/incident.js';

export const SPEED = 100;

let base = 10 + Math.floor(Math.random() * 200);
/** A loopback range of its own for each run (127.N.M.2…), so runs never collide. */
export function nextAddressBase(): string {
  base = (base + 1) % 250;
  return `127.${base + 1}.${(process.pid % 200) + 1}.2`;
}

export interface DrillRun {
  code: number;
  lines: string[];
  dir: string;
  sim: SimCluster;
  journal: JournalRecord[];
  context: RecoveryContext;
}

export async function runScenario(scenario: string, opts: { timeLimitMs?: number } = {}): Promise<DrillRun> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-drill-')), 'incident');
  const incident = createIncidentDir(dir);
  const addressBase = nextAddressBase();
  const sim = await startSimulator({
    scenario,
    dir: join(dir, 'sim'),
    port: 0,
    addressBase,
    speed: SPEED,
    talosconfigPath: join(dir, 'sim', 'talosconfig'),
  });
  // The test files that run drills share their worker process with the files after them: a drill that throws or
  // times out must not leave its simulator running (and its timers spending CPU) through them. Started inside a test,
  // the simulator stops when the test ends, whatever ends it; callers that keep it for later tests (beforeAll) stop it
  // themselves, and a drill that throws stops it here.
  try {
    onTestFinished(() => sim.stop());
  } catch {
    // not inside a test (vitest refuses the hook there): the caller stops it (afterAll)
  }
  try {
    return await drillOn(sim, dir, incident, scenario, addressBase, opts);
  } catch (error) {
    await sim.stop();
    throw error;
  }
}

async function drillOn(
  sim: SimCluster,
  dir: string,
  incident: ReturnType<typeof createIncidentDir>,
  scenario: string,
  addressBase: string,
  opts: { timeLimitMs?: number },
): Promise<DrillRun> {
  await sim.writeGiven(dir);
  const journal = new Journal(dir);
  const save = () => sim.saveState(join(dir, 'sim-state.json'));
  const lines: string[] = [];
  const code = await runDrill({
    operator: 'autopilot',
    print: (line) => lines.push(line),
    signal: new AbortController().signal,
    sim,
    save,
    incident,
    journal,
    scenario,
    speed: SPEED,
    addressBase,
    ...(opts.timeLimitMs ? { timeLimitMs: opts.timeLimitMs } : {}),
  });
  const state = readState(dir);
  if (!state.ok) throw new Error(state.reason);
  const context = (state.envelope.snapshot as { context: RecoveryContext }).context;
  return { code, lines, dir, sim, journal: readJournal(dir), context };
}

/** A simulated cluster with an incident folder, a client and a journal: what a session needs, for driving by hand. */
export interface Ground {
  sim: SimCluster;
  client: TalosClient;
  incident: IncidentPaths;
  journal: Journal;
  operator: string;
}

const grounds: (() => Promise<void>)[] = [];

/** Stops every session, client and simulator started by startGround / startSessionOn (use in afterAll). */
export async function closeGrounds(): Promise<void> {
  for (const close of grounds.splice(0).reverse()) await close();
}

export async function startGround(scenario: string, operator = 'tester'): Promise<Ground> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-ground-')), 'incident');
  const incident = createIncidentDir(dir);
  const sim = await startSimulator({
    scenario,
    dir: join(dir, 'sim'),
    port: 0,
    addressBase: nextAddressBase(),
    speed: SPEED,
    talosconfigPath: join(dir, 'sim', 'talosconfig'),
  });
  await sim.writeGiven(dir);
  const client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), {
    defaultTimeoutMs: 2000,
    connectTimeoutMs: 2000,
  });
  const journal = new Journal(dir);
  grounds.push(async () => {
    client.close();
    journal.close();
    await sim.stop();
  });
  return { sim, client, incident, journal, operator };
}

/**
 * A recovery session on the ground, as `drill` runs one (optionally continuing a persisted snapshot, as `resume`).
 * `timing` changes the drill's timing where a test waits out a deadline it does not measure (a count-down's floor).
 */
export function startSessionOn(g: Ground, restore?: Snapshot<unknown>, timing: Partial<Timing> = {}): Session {
  const session = startSession({
    deps: {
      client: g.client,
      connectMaintenance: (node) => connectMaintenance(`${node}:${g.sim.port}`, { connectTimeoutMs: 2000 }),
      incident: g.incident,
      journal: g.journal,
      operator: g.operator,
      statusTimeoutMs: 1000,
    },
    input: {
      nodes: g.sim.nodes,
      operator: g.operator,
      mode: 'drill',
      timing: { ...timingFor(SPEED), ...timing },
      givenSnapshots: g.sim.scenario.given
        .filter((x) => x.kind === 'snapshot')
        .map((x) => join(g.incident.dir, x.path)),
    },
    envelope: { mode: 'drill', nodes: g.sim.nodes },
    ...(restore ? { restore } : {}),
  });
  grounds.push(async () => session.stop());
  return session;
}

// ——— Crash and resume: the built CLI in child processes, SIGKILLed at moments the incident's journal names ———

/** The built CLI (npm run build first), run as an operator runs it, with the simulator's time compressed. */
export const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  /** what it wrote to stderr (a failure's sentence), for the failure messages */
  stderr: string;
  /** the test killed it (SIGKILL) before it ended by itself */
  killed: boolean;
  /** the incident's journal as the run left it */
  journal: string;
  /** the destructive calls as the run left them in sim-state.json (null before any was saved; set by killAndResume) */
  calls?: SavedCalls[] | null;
}

/** A moment to SIGKILL a run at: once the incident's journal satisfies `when`, then `delayMs` later if it still runs. */
export interface KillAt {
  when: (journal: string) => boolean;
  delayMs?: number;
  /** how the failure messages name this moment */
  name: string;
}

/** The incident's journal as text ('' before the run created it). */
export function journalText(dir: string): string {
  const file = join(dir, 'journal.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** How many records the journal holds. */
export const recordCount = (journal: string): number => journal.split('\n').filter((l) => l.trim() !== '').length;

export const stepStarted = (n: number) => (journal: string) => journal.includes(`"what":"step ${n} started"`);
/** a destructive (or transfer) call journalled as about to be sent: opIds start with the call's name ("reset:…") */
export const callSent = (prefix: string) => (journal: string) => journal.includes(`"phase":"before","opId":"${prefix}`);

/** The incident's outcome as its journal records it (null while it has none). */
export function journalOutcome(dir: string): string | null {
  const last = journalText(dir)
    .split('\n')
    .filter((l) => l.includes('"kind":"outcome"'))
    .at(-1);
  return last ? ((JSON.parse(last) as { result?: string }).result ?? '') : null;
}

/** Runs the CLI in a child process; SIGKILLs it at `kill` (the journal of `dir` is watched every 20 ms). */
export function runCliProcess(args: string[], dir: string, kill?: KillAt, speed = SPEED): Promise<CliRun> {
  const env = { ...process.env, TALOS_DR_DRILL_SPEED: String(speed), CI: '1' };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    let due = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killNow = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const watch = kill
      ? setInterval(() => {
          if (due || !kill.when(journalText(dir))) return;
          due = true;
          if (kill.delayMs) setTimeout(killNow, kill.delayMs);
          else killNow();
        }, 20)
      : null;
    child.on('exit', (code) => {
      if (watch) clearInterval(watch);
      resolve({ code, stdout, stderr, killed, journal: journalText(dir) });
    });
  });
}

/** Destructive calls per node, as the simulator counted them and saved them in the incident's sim-state.json. */
export interface SavedCalls {
  address: string;
  reset: number;
  bootstrap: number;
  apply: number;
  reboot: number;
  recover: number;
  removeMember: number;
  serviceRestart: number;
  defragment: number;
  alarmDisarm: number;
}

export function savedCalls(dir: string): SavedCalls[] {
  const saved = JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as {
    nodes: { state: { address: string }; calls: Partial<Omit<SavedCalls, 'address'>> }[];
  };
  return saved.nodes.map(({ state, calls }) => ({
    address: state.address,
    reset: calls.reset ?? 0,
    bootstrap: calls.bootstrap ?? 0,
    apply: calls.apply ?? 0,
    reboot: calls.reboot ?? 0,
    recover: calls.recover ?? 0,
    removeMember: calls.removeMember ?? 0,
    serviceRestart: calls.serviceRestart ?? 0,
    defragment: calls.defragment ?? 0,
    alarmDisarm: calls.alarmDisarm ?? 0,
  }));
}

export interface KilledDrill {
  dir: string;
  /** every run in order: the drill, then each resume */
  runs: CliRun[];
  /** the moments at which a run was killed (a kill that came after its run had ended is not counted) */
  killedAt: string[];
  /** the last run: the resume that ended the incident */
  last: CliRun;
  outcome: string | null;
  calls: SavedCalls[];
}

/**
 * The destructive calls the saved simulator gained over one run ("127.0.0.4 reset+1"): which run sent a call, when a
 * count comes out too high. A run killed before its save shows none (the simulator it had died with it).
 */
function callsGained(before: SavedCalls[] | null | undefined, after: SavedCalls[] | null | undefined): string {
  const gained: string[] = [];
  for (const node of after ?? []) {
    const was = before?.find((b) => b.address === node.address);
    for (const [kind, n] of Object.entries(node)) {
      if (kind === 'address' || typeof n !== 'number') continue;
      const more = n - ((was?.[kind as keyof SavedCalls] as number | undefined) ?? 0);
      if (more > 0) gained.push(`${node.address} ${kind}+${more}`);
    }
  }
  return gained.length > 0 ? ` [saved calls: ${gained.join(', ')}]` : '';
}

/**
 * What each run of a killed drill ended with (exit, killed or not, its last lines, the destructive calls its saved
 * simulator gained): the message of a kill assertion.
 */
export function runsSaid(r: KilledDrill): string {
  return r.runs
    .map((run, i) => {
      const tail = `${run.stdout}\n${run.stderr}`.trim().split('\n').slice(-3).join(' | ');
      const gained = callsGained(r.runs[i - 1]?.calls, run.calls);
      return `run ${i + 1}: ${run.killed ? 'killed' : `exit ${String(run.code)}`}: ${tail}${gained}`;
    })
    .join('\n');
}

/** Where the next run is killed, told the journal's record count as the run starts and the kills so far. */
export type NextKill = (recordsSoFar: number, killsSoFar: number) => KillAt | null;

/**
 * The crash tests' loop: `talos-dr drill --autopilot --scenario S` in a child process, SIGKILLed at the first moment
 * `kills` names, `talos-dr resume DIR` in a new process killed at the next, and so on; once there are no more kills,
 * resumed once more to the end. The loop also ends when the incident records its outcome, or when a run ends by
 * itself (the caller's assertions then say what went wrong). `opts.speed` compresses the simulator's time further
 * (TALOS_DR_DRILL_SPEED; SPEED unless given).
 */
export async function killAndResume(
  scenario: string,
  kills: KillAt[] | NextKill,
  opts: { speed?: number } = {},
): Promise<KilledDrill> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-crash-')), 'incident');
  const next: NextKill = Array.isArray(kills) ? (_, killed) => kills[killed] ?? null : kills;
  const runs: CliRun[] = [];
  const killedAt: string[] = [];
  let args = ['drill', '--autopilot', '--scenario', scenario, '--dir', dir];
  for (;;) {
    const kill = next(recordCount(journalText(dir)), killedAt.length) ?? undefined;
    const run = await runCliProcess(args, dir, kill, opts.speed);
    run.calls = existsSync(join(dir, 'sim-state.json')) ? savedCalls(dir) : null;
    runs.push(run);
    if (run.killed && kill) killedAt.push(kill.name);
    if (!run.killed || journalOutcome(dir) !== null) break;
    args = ['resume', dir];
  }
  return { dir, runs, killedAt, last: runs.at(-1)!, outcome: journalOutcome(dir), calls: savedCalls(dir) };
}
