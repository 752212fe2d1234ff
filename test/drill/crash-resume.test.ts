/**
 * Crash and resume: a child process runs `talos-dr drill --autopilot`, is killed with SIGKILL at a point of the
 * procedure (between steps, in the middle of a reset, a wait, an upload, after Bootstrap was sent, during the final
 * verification), and `talos-dr resume DIR` in a new process must reach the same outcome without sending any
 * destructive call twice. The simulator counts every call per node and keeps the counts in sim-state.json, which the
 * drill saves after every step and every destructive call.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const ENV = { ...process.env, TALOS_DR_DRILL_SPEED: '100', CI: '1' };

interface Result {
  code: number | null;
  stdout: string;
}

function run(
  args: string[],
  killWhen?: (journal: string) => boolean,
  dir?: string,
): Promise<Result & { killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer =
      killWhen && dir
        ? setInterval(() => {
            const file = join(dir, 'journal.jsonl');
            if (!killed && existsSync(file) && killWhen(readFileSync(file, 'utf8'))) {
              killed = true;
              child.kill('SIGKILL');
            }
          }, 20)
        : null;
    child.on('exit', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, stdout, killed });
    });
  });
}

interface NodeCalls {
  state: { address: string };
  calls: { reset: number; bootstrap: number; apply: number; reboot: number; recover: number };
}

function simCalls(dir: string): NodeCalls[] {
  return (JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as { nodes: NodeCalls[] }).nodes;
}

const started = (n: number) => (j: string) => j.includes(`"what":"step ${n} started"`);
const sent = (prefix: string) => (j: string) => j.includes(`"phase":"before","opId":"${prefix}`);

const KILL_POINTS: [string, (j: string) => boolean][] = [
  ['after connect', started(2)],
  ['after assess', started(3)],
  ['mid-snapshot', sent('snapshot:')],
  ['after snapshot', started(4)],
  ['after backup', started(6)],
  ['mid-reset', sent('reset:')],
  ['mid-wait for Preparing', started(7)],
  ['mid-upload', sent('upload:')],
  ['Bootstrap sent', sent('bootstrap:')],
  ['mid-verify', started(9)],
];

describe('crash and resume (lost-quorum, SIGKILL at every step)', () => {
  for (const [name, when] of KILL_POINTS) {
    it(`killed ${name}: resume reaches the same outcome, no destructive call twice`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-crash-')), 'incident');
      const first = await run(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir], when, dir);
      expect(first.killed).toBe(true);
      const second = await run(['resume', dir]);
      const lines = second.stdout.trim().split('\n');
      expect(lines[0]).toBe(`resuming the drill in ${dir}`);
      expect(lines.at(-1)).toBe('outcome: recovered');
      expect(second.code).toBe(0);
      const calls = simCalls(dir);
      for (const n of calls) {
        expect(n.calls.reset, `${n.state.address} reset`).toBeLessThanOrEqual(1);
        expect(n.calls.bootstrap, `${n.state.address} bootstrap`).toBeLessThanOrEqual(1);
        expect(n.calls.apply + n.calls.reboot).toBe(0);
        // an upload cut by the crash is sent again from zero (Talos streams cannot resume); never a third time
        expect(n.calls.recover).toBeLessThanOrEqual(name === 'mid-upload' ? 2 : 1);
      }
      expect(calls.reduce((a, n) => a + n.calls.bootstrap, 0)).toBe(1);
      expect(calls.filter((n) => n.calls.reset === 1)).toHaveLength(3);
    }, 120_000);
  }
});
