/**
 * A stop that comes before a decoding program starts: the import is stopped in the moment between creating its file
 * and starting zstd (or age). The program must not start; before, its 'abort' listener was added after the signal had
 * fired, so nothing ended it and the stopped import waited for the program to finish the whole file by itself (a CI
 * run's import-direct test waited for its stuck zstd until the test's limit).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { programIntoFile } from '../../src/backups/programs.js';

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-programs-stop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a decoding program and a stop that came first', () => {
  test('is not started, and the stop is what the import is told', async () => {
    const started = join(dir, 'started');
    // the program reads the backup itself (zstd -d of a local .zst): nothing is pumped that a stop could cut
    writeFileSync(join(dir, 'in'), 'backup');
    const input = openSync(join(dir, 'in'), 'r');
    const out = openSync(join(dir, 'out'), 'w', 0o600);
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    try {
      const run = programIntoFile(
        input,
        'sh',
        ['-c', `touch '${started}'; exec sleep 60`],
        out,
        () => null,
        stop.signal,
      );
      await expect(run).rejects.toThrow('stopped');
    } finally {
      closeSync(input);
      closeSync(out);
    }
    expect(existsSync(started)).toBe(false);
  }, 20_000);
});
