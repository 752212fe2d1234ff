/**
 * The built CLI in a child process, as an operator runs it: drills with the simulator's time compressed, waiting on
 * the incident's journal for a moment of the procedure (never on a timer), then a signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
export const ENV = { ...process.env, TALOS_DR_DRILL_SPEED: '100', CI: '1' };

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  done: Promise<Finished>;
}

export function start(args: string[], env: NodeJS.ProcessEnv = ENV): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Finished>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = ENV): Promise<Finished> {
  return start(args, env).done;
}

/** Resolves once the incident's journal satisfies `when` (checked as it grows), or null if the process ended first. */
export function journalReaches(dir: string, run: Running, when: (journal: string) => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let ended = false;
    void run.done.then(() => (ended = true));
    const check = () => {
      const file = join(dir, 'journal.jsonl');
      if (existsSync(file) && when(readFileSync(file, 'utf8'))) return resolve(true);
      if (ended) return resolve(false);
      setTimeout(check, 10);
    };
    check();
  });
}

export const started = (n: number) => (j: string) => j.includes(`"what":"step ${n} started"`);
export const sent = (prefix: string) => (j: string) => j.includes(`"phase":"before","opId":"${prefix}`);

/** Every file under a folder, relative paths. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string, rel: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) visit(path, `${rel}${name}/`);
      else out.push(`${rel}${name}`);
    }
  };
  visit(dir, '');
  return out;
}
