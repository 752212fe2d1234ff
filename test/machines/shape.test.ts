/**
 * The recovery machine's shape as a saved state.json names it: every state node id, its kind, the events it takes,
 * its delays, and the actors it invokes with their ids (an invoke's id is derived from its state node's path: a
 * persisted child is restored under it). Reorganising the code must leave this text unchanged; a deliberate change of
 * the procedure rewrites test/machines/golden/shape.txt (`TALOS_DR_RECORD_GOLDEN=1`) and shows in review.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { recoveryMachine } from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';

interface Node {
  id: string;
  type: string;
  initial?: { target: readonly { id: string }[] };
  on: Record<string, unknown>;
  after: readonly { delay: string | number; eventType: string }[];
  always?: readonly unknown[];
  invoke: readonly { id: string; src: unknown }[];
  states: Record<string, Node>;
}

function shape(machine: AnyStateMachine): string[] {
  const lines: string[] = [];
  const walk = (n: Node) => {
    const parts = [n.id, n.type];
    if (n.initial) parts.push(`initial=${n.initial.target.map((t) => t.id).join(',')}`);
    const events = Object.keys(n.on).filter((e) => !e.startsWith('xstate.after'));
    if (events.length) parts.push(`on=${events.sort().join(',')}`);
    if (n.after.length) parts.push(`after=${n.after.map((a) => String(a.delay)).join(',')}`);
    if (n.always?.length) parts.push(`always=${n.always.length}`);
    if (n.invoke.length) parts.push(`invoke=${n.invoke.map((i) => `${String(i.src)}#${i.id}`).join(',')}`);
    lines.push(parts.join(' '));
    for (const child of Object.values(n.states)) walk(child);
  };
  walk(machine.root as unknown as Node);
  return lines;
}

const FILE = join(import.meta.dirname, 'golden', 'shape.txt');

describe('the recovery machine keeps the shape saved state.json files name', () => {
  it('state ids, events, delays and invoke ids are unchanged', () => {
    const text = [...shape(recoveryMachine), '', ...shape(prepareNodeMachine), ''].join('\n');
    if (process.env.TALOS_DR_RECORD_GOLDEN === '1') writeFileSync(FILE, text);
    expect(text).toBe(readFileSync(FILE, 'utf8'));
  });
});
