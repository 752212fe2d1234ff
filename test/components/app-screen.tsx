/**
 * The App on a recovery machine, as the keystroke tests drive it: the actor started with the in-memory cluster's
 * nodes and fast timings, the App rendered at 80×24 (helpers.ts renderSized), and the few ways those tests read a
 * frame (the live region, its key bar, the address a typed prompt asks for).
 */
import { createActor } from 'xstate';
import { App, type AppProps } from '../../components/App.js';
import type { recoveryMachine } from '../../machines/recovery.js';
import type { Timing } from '../../machines/recovery-types.js';
import { NODES } from './fake-cluster.js';
import { renderSized } from './helpers.js';

/** The drill the keystroke tests play unless they say otherwise. */
export const LOST_QUORUM_DRILL = { scenario: 'lost-quorum', dataLost: () => 'none' } as const;

export interface AppScreenOptions {
  /** timings over the fast test ones (poll 20 ms, backoff 10 ms) */
  timing?: Partial<Timing>;
  /** the App's other props (drill, refreshNodes, incidentDir …) */
  props?: Partial<Omit<AppProps, 'actor'>>;
  size?: { columns: number; rows: number; debug?: boolean };
  /** called with the actor before it starts (to listen to its emitted events from the first) */
  beforeStart?: (actor: ReturnType<typeof createActor<typeof recoveryMachine>>) => void;
}

export function startAppScreen(machine: typeof recoveryMachine, options: AppScreenOptions = {}) {
  const actor = createActor(machine, {
    input: {
      nodes: NODES,
      operator: 'trainee',
      mode: 'drill',
      timing: { pollMs: 20, backoffMs: 10, ...options.timing },
    },
  });
  options.beforeStart?.(actor);
  actor.start();
  const screen = renderSized(
    <App
      actor={actor}
      incidentDir="/tmp/incident"
      context="talos-dr-sim"
      endpoint={() => '127.0.0.2:50000'}
      {...options.props}
    />,
    options.size ?? { columns: 80, rows: 24 },
  );
  return { actor, screen, stdin: screen.stdin, lastFrame: screen.lastFrame };
}

/** The live region: from the status line down (the finished steps above it scroll away). */
export const liveRegion = (frame: string) => frame.slice(frame.indexOf('talos-dr · context'));
/** The key bar: the live region's last line that offers quitting. */
export const keyBar = (frame: string) =>
  liveRegion(frame)
    .split('\n')
    .findLast((l) => /quit \(saved\)/.test(l)) ?? '';
/** The address a typed confirmation asks for, or ''. */
export const typedTarget = (frame: string) => /Type (\S+) to confirm/.exec(frame)?.[1] ?? '';
/** The frame on one line, its wrapping undone. */
export const flat = (frame: string) => frame.replace(/\s+/g, ' ');
