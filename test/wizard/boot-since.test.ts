/**
 * bootSince (machines/decisions.ts): what a node's service histories say about a boot since a call was sent, the
 * evidence the interrupted Reset check (src/wizard/destructive.ts) stands on. Only a complete history dates a boot:
 * Talos keeps 64 events per service and drops the oldest (events.go@v1.13.9:17-18).
 */
import { describe, expect, it } from 'vitest';
import { bootSince } from '../../machines/decisions.js';

const SENT = 1_800_000_000_000;
const history = (start: number, events = 3) => ({
  events: Array.from({ length: events }, (_, i) => ({ ts: start + i * 1000 })),
});

describe('bootSince', () => {
  it('a service that has run since before the send: the same boot', () => {
    expect(bootSince([history(SENT + 5000), history(SENT - 3_600_000)], SENT)).toBe('same boot');
  });

  it('every service started after the send: rebooted', () => {
    expect(bootSince([history(SENT + 5000), history(SENT + 6000)], SENT)).toBe('rebooted');
  });

  it('a full history (64 events) has lost its start: it dates nothing', () => {
    // a crash-looping etcd's: its first kept event is recent, its start is gone
    expect(bootSince([history(SENT + 5000, 64)], SENT)).toBe('unknown');
    expect(bootSince([history(SENT - 3_600_000, 64), history(SENT + 5000)], SENT)).toBe('rebooted');
  });

  it('no services, no dated events, or no send time: nothing to tell', () => {
    expect(bootSince([], SENT)).toBe('unknown');
    expect(bootSince(null, SENT)).toBe('unknown');
    expect(bootSince([{ events: [{ ts: null }] }, { events: [] }], SENT)).toBe('unknown');
    expect(bootSince([history(SENT - 1000)], null)).toBe('unknown');
  });
});
