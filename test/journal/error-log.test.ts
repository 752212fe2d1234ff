/**
 * The last-resort error log (issue 18, item 5) was written to a predictable name in the shared temp folder and
 * followed a planted symlink. It is created exclusively, never through a link, mode 0600, in the incident folder the
 * process holds, or else in a fresh private folder.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './crash-helpers.js';

/**
 * A rejection nobody awaits, raised inside the process once `waitFor` exists (a drill's journal, a simulator's folder:
 * the command is under way, so the program's last-resort handlers are in place). Not after a fixed time: a fault
 * raised 300 ms after start came before the handlers at load 14 (Node's own report, no file named).
 */
function fault(waitFor: string): string {
  const raise = `Promise.reject(new Error('simulated fault'))`;
  const code = `import { existsSync } from 'node:fs'; const t = setInterval(() => { if (existsSync(${JSON.stringify(waitFor)})) { clearInterval(t); ${raise}; } }, 5);`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

function crash(args: string[], env: NodeJS.ProcessEnv, waitFor: string) {
  const r = spawnSync(process.execPath, ['--import', fault(waitFor), CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1', ...env },
    timeout: 60_000,
  });
  const file = /Please report this with (\S+)\.$/.exec(r.stderr.trim())?.[1] ?? '';
  return { r, file };
}

describe('the last-resort error log', () => {
  it('goes into the incident folder the process holds, a new regular file of mode 0600', () => {
    const temp = mkdtempSync(join(tmpdir(), 'talos-dr-errlog-'));
    const dir = join(temp, 'incident');
    const { r, file } = crash(['drill', '--autopilot', '--dir', dir], { TMPDIR: temp }, join(dir, 'journal.jsonl'));
    expect(r.status).toBe(1);
    expect(dirname(file)).toBe(dir);
    const info = lstatSync(file);
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/Error: simulated fault\n\s+at /);
    // nothing in the shared temp folder besides the incident
    expect(readdirSync(temp)).toEqual(['incident']);
  }, 90_000);

  it('without an incident, goes into a fresh private folder (0700), never to a name known in advance', () => {
    const temp = mkdtempSync(join(tmpdir(), 'talos-dr-errlog-'));
    const shared = join(temp, 'tmp');
    mkdirSync(shared, { mode: 0o777 });
    const sim = join(temp, 'sim');
    const { r, file } = crash(['sim', '--scenario', 'lost-quorum', '--dir', sim], { TMPDIR: shared }, sim);
    expect(r.status).toBe(1);
    expect(dirname(dirname(file))).toBe(shared);
    expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    expect(dirname(file)).not.toBe(shared);
  }, 90_000);
});
