/**
 * The import's progress line on a terminal while no bytes arrive (a stalled S3 download, a slow disk): it is drawn
 * again on its own, its rate falling and its time left growing, instead of looking frozen; and once the transfer ends
 * no timer is left (the process exits at once). Before: the line was drawn only when bytes arrived.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { TransferLine } from '../../src/commands/import.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

const MiB = 1024 * 1024;

describe('the transfer line while the source stalls', () => {
  test('redrawn about once a second with a falling rate; nothing more after done()', () => {
    const written: string[] = [];
    const line = new TransferLine({ isTTY: true, write: (s: string) => written.push(s) }, 'downloading');
    vi.advanceTimersByTime(1000);
    line.update(1 * MiB, 4 * MiB);
    expect(written).toEqual(['\r\x1b[2Kdownloading: 1.0 MiB of 4.0 MiB, 1.0 MiB/s, 3 s left']);

    // the source sends nothing for 3 s
    vi.advanceTimersByTime(3000);
    expect(written.length).toBeGreaterThanOrEqual(3);
    expect(written.at(-1)).toBe('\r\x1b[2Kdownloading: 1.0 MiB of 4.0 MiB, 256.0 KiB/s, 12 s left');

    line.done();
    expect(written.at(-1)).toBe('\r\x1b[2K');
    const count = written.length;
    vi.advanceTimersByTime(5000);
    expect(written).toHaveLength(count);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('not a terminal: no line and no timer', () => {
    const written: string[] = [];
    const line = new TransferLine({ write: (s: string) => written.push(s) }, 'importing');
    line.update(1, 2);
    vi.advanceTimersByTime(3000);
    expect(vi.getTimerCount()).toBe(0);
    line.done();
    expect(written).toEqual([]);
  });
});
