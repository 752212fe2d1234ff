/**
 * Member replacement, killed and resumed: a child process runs `talos-dr drill --autopilot --scenario
 * member-crashloop`, is killed with SIGKILL at a point of the replacement (the removal sent, after it, mid-wipe, mid-
 * join, mid-check), and `talos-dr resume DIR` in a new process must end member-replaced without sending the removal
 * or the Reset twice. The simulator counts every call per node and keeps the counts in sim-state.json.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const ENV = { ...process.env, TALOS_DR_DRILL_SPEED: '100', CI: '1' };

function run(args: string[], killWhen?: (journal: string) => boolean, dir?: string) {
  return new Promise<{ code: number | null; stdout: string; killed: boolean }>((resolve) => {
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
  calls: { reset: number; bootstrap: number; apply: number; removeMember: number };
}
const simCalls = (dir: string): NodeCalls[] =>
  (JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as { nodes: NodeCalls[] }).nodes;

const started = (n: number) => (j: string) => j.includes(`"what":"step ${n} started"`);
const sent = (prefix: string) => (j: string) => j.includes(`"phase":"before","opId":"${prefix}`);

const KILL_POINTS: [string, (j: string) => boolean][] = [
  ['at the removal prompt', started(5)],
  ['removal sent', sent('remove-member:')],
  ['after the removal', started(6)],
  ['Reset sent', sent('replace-reset:')],
  ['mid-join', started(7)],
  ['mid-check', started(8)],
];

describe('member replacement: SIGKILL at every phase, then resume', () => {
  for (const [name, when] of KILL_POINTS) {
    it(`killed ${name}: resume ends member-replaced, removal and Reset sent once`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-replace-crash-')), 'incident');
      const first = await run(['drill', '--autopilot', '--scenario', 'member-crashloop', '--dir', dir], when, dir);
      expect(first.killed).toBe(true);
      const second = await run(['resume', dir]);
      const lines = second.stdout.trim().split('\n');
      expect(lines.at(-1)).toBe('outcome: member-replaced');
      expect(second.code).toBe(0);
      const calls = simCalls(dir);
      const total = (k: keyof NodeCalls['calls']) => calls.reduce((a, n) => a + n.calls[k], 0);
      expect(total('removeMember')).toBe(1);
      expect(total('reset')).toBe(1);
      expect(total('bootstrap') + total('apply')).toBe(0);
    }, 120_000);
  }
});
