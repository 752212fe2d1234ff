/**
 * The interactive path of `recover`, `resume` and `drill`: mounts the wizard on the recovery actor that the command
 * created (and persists), waits until the screen exits, and turns how it ended into the exit code of PRODUCT.md §2.
 * The command owns argument parsing, the actor, its persistence and the headless path; this file owns Ink.
 */
import { render } from 'ink';
import { App, type DrillInfo, type RecoveryActorRef } from '../../components/App.js';
import { ThemeProvider, colorFromEnv } from '../../components/theme.js';
import { EXIT, UsageError } from '../errors.js';
import type { NodeView } from '../../machines/recovery-types.js';

export type { DrillInfo, RecoveryActorRef } from '../../components/App.js';

export interface InteractiveOptions {
  /** the started recovery actor; stopped here when the screen exits */
  actor: RecoveryActorRef & { stop?: () => unknown };
  /** the incident folder, named on screen with the command that resumes from it */
  incidentDir: string;
  /** the talosconfig context shown in the header */
  context: string;
  /** the endpoint in use (the client fails over between endpoints, so it is read at each render) */
  endpoint?: string | (() => string | undefined);
  /** present for a drill: banner, time limit and score */
  drill?: DrillInfo;
  /**
   * One fan-out call reading every node's state (e.g. the effects' observeNodes over the Talos client). The live
   * node table calls it every few seconds and whenever the step changes; without it the table shows only what
   * the machine itself last read.
   */
  refreshNodes?: (nodes: string[]) => Promise<NodeView[]>;
  /** writes whatever state is still buffered (state.json, journal) before the process ends */
  flush?: () => Promise<void> | void;
  /** aborted on SIGINT/SIGTERM: the screen closes as if the user had pressed q */
  signal?: AbortSignal;
  /** the headless alternative, named when there is no terminal, e.g. 'talos-dr drill --autopilot' */
  headlessAlternative?: string;
  env?: NodeJS.ProcessEnv;
  /** default true: a stray console.log from a library is printed above the frame instead of through it */
  patchConsole?: boolean;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

/** Exit code for how the wizard ended. A machine that has not reached its final state was stopped by the user. */
export function exitCodeFor(actor: RecoveryActorRef): number {
  const snap = actor.getSnapshot();
  if (snap.status === 'error') return EXIT.failure;
  if (snap.status !== 'done') return EXIT.stoppedByUser;
  const outcome = snap.context.outcome;
  if (outcome === 'recovered' || outcome === 'stopped-quorum-intact' || outcome === 'nothing-to-do') return EXIT.ok;
  if (outcome === 'stopped-by-user') return EXIT.stoppedByUser;
  return EXIT.failure;
}

/**
 * Runs the wizard until it ends; returns the exit code. The final frame (the summary, ending with the outcome line,
 * or the resume notice after q) stays on screen as the last output on stdout, so the caller prints nothing after it.
 */
export async function runInteractive(opts: InteractiveOptions): Promise<number> {
  const stdin = opts.stdin ?? process.stdin;
  const stdout = opts.stdout ?? process.stdout;
  if (!stdin.isTTY || !stdout.isTTY)
    throw new UsageError(
      `This command needs an interactive terminal${opts.headlessAlternative ? `; without one, use ${opts.headlessAlternative}` : ''}.`,
    );
  const endpoint = typeof opts.endpoint === 'function' ? opts.endpoint : () => opts.endpoint as string | undefined;
  const instance = render(
    <ThemeProvider color={colorFromEnv(opts.env ?? process.env)}>
      <App
        actor={opts.actor}
        incidentDir={opts.incidentDir}
        context={opts.context}
        endpoint={endpoint}
        {...(opts.drill ? { drill: opts.drill } : {})}
        {...(opts.refreshNodes ? { refreshNodes: opts.refreshNodes } : {})}
      />
    </ThemeProvider>,
    {
      stdin,
      stdout,
      ...(opts.stderr ? { stderr: opts.stderr } : {}),
      // Ctrl-C arrives as a keystroke in raw mode; the App handles it like q (state saved, resume named).
      exitOnCtrlC: false,
      patchConsole: opts.patchConsole ?? true,
    },
  );
  // SIGINT/SIGTERM: stop as q does (the machine journals the stop and the screen names the resume command); a
  // machine that cannot take `abort` any more (already ended) just has its screen closed.
  const onAbort = () => {
    if (opts.actor.getSnapshot().can({ type: 'abort' })) opts.actor.send({ type: 'abort' });
    else instance.unmount();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await instance.waitUntilExit();
    return exitCodeFor(opts.actor);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await opts.flush?.();
    opts.actor.stop?.();
  }
}
