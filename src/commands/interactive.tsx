/**
 * The interactive path of `recover`, `resume` and `drill`: mounts the wizard on the recovery actor that the command
 * created (and persists), waits until the screen exits, and turns how it ended into the exit code of PRODUCT.md §2.
 * The command owns argument parsing, the actor, its persistence and the headless path; this file owns Ink.
 */
import type { ReactNode } from 'react';
import { render, type Instance } from 'ink';
import type { DrillInfo, RecoveryActorRef } from '../../components/App.js';
import { StartingScreen, type StartingScreenProps } from '../../components/StartingScreen.js';
import { ThemeProvider, colorFromEnv } from '../../components/theme.js';
import { CliName } from '../../components/cli-name.js';
import { invokedAs } from './invocation.js';
import { UsageError } from '../errors.js';
import type { NodeView } from '../../machines/recovery-types.js';
import type { BriefingView } from '../../components/view-model.js';
import { exitCodeForMachine } from '../wizard/exit-codes.js';
import type { Screen } from '../wizard/run.js';

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
  /** how talos-dr is run from a shell (default `talos-dr`); the printed commands start with it */
  cli?: string;
  env?: NodeJS.ProcessEnv;
  /** default true: a stray console.log from a library is printed above the frame instead of through it */
  patchConsole?: boolean;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

export interface StartingOptions extends Omit<StartingScreenProps, 'since' | 'status'> {
  /** what is being done, e.g. "Starting the drill cluster" (the screen adds the ellipsis and a clock) */
  status: string;
  /** when the command started; default now */
  since?: number;
  env?: NodeJS.ProcessEnv;
  patchConsole?: boolean;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

/** The first frame, on screen while the command reaches the cluster; runInteractive() takes its place. */
export interface StartingHandle {
  /** says what is being done now */
  update(status: string): void;
  /**
   * Shows a drill's briefing until the trainee presses Enter (true) or quits (false: onQuit has been called, as q on
   * the first frame does); then the frame says what is being done again.
   */
  brief(view: BriefingView, incidentDir: string, signal?: AbortSignal): Promise<boolean>;
  /** clears the frame and gives the terminal back, e.g. before the command's error sentence */
  close(): Promise<void>;
}

/** The open first frame, if any: one process draws one screen, so runInteractive() takes this one over. */
let starting: { instance: Instance; stdout: NodeJS.WriteStream; close: () => Promise<void> } | null = null;

const inkOptions = (o: {
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  patchConsole?: boolean;
}) => ({
  stdin: o.stdin ?? process.stdin,
  stdout: o.stdout ?? process.stdout,
  ...(o.stderr ? { stderr: o.stderr } : {}),
  // Ctrl-C arrives as a keystroke in raw mode; the screens handle it like q (state saved, resume named).
  exitOnCtrlC: false,
  patchConsole: o.patchConsole ?? true,
});

/**
 * Draws the wizard's first frame at once (header, steps, what is being done), before the command loads the client or
 * starts the drill's simulated cluster, so the user sees where they are while that happens. Returns null without a
 * terminal (the command refuses or runs headless then). The next runInteractive() replaces the frame in place.
 */
export function openStartingScreen(opts: StartingOptions): StartingHandle | null {
  const stdin = opts.stdin ?? process.stdin;
  const stdout = opts.stdout ?? process.stdout;
  if (!stdin.isTTY || !stdout.isTTY) return null;
  if (starting) void starting.close();
  const since = opts.since ?? Date.now();
  let status = opts.status;
  // the briefing on screen, and how it ends: Enter begins, q quits
  let briefing: { view: BriefingView; incidentDir: string; end: (begin: boolean) => void } | null = null;
  const frame = () => (
    <ThemeProvider color={colorFromEnv(opts.env ?? process.env)}>
      <StartingScreen
        status={status}
        since={since}
        {...(opts.context !== undefined ? { context: opts.context } : {})}
        {...(opts.drill ? { drill: opts.drill } : {})}
        onQuit={() => {
          briefing?.end(false);
          opts.onQuit?.();
        }}
        {...(briefing
          ? { briefing: { view: briefing.view, incidentDir: briefing.incidentDir, onBegin: () => briefing?.end(true) } }
          : {})}
      />
    </ThemeProvider>
  );
  const instance = render(frame(), inkOptions(opts));
  const self = {
    instance,
    stdout,
    close: async () => {
      if (starting === self) starting = null;
      // asked for before unmount: Ink 6 creates the exit promise lazily, and one asked for later never settles
      const exited = instance.waitUntilExit().catch(() => undefined);
      instance.clear();
      instance.unmount();
      await exited;
    },
  };
  starting = self;
  return {
    update: (next) => {
      status = next;
      if (starting === self) instance.rerender(frame());
    },
    brief: (view, incidentDir, signal) => {
      if (starting !== self || signal?.aborted) return Promise.resolve(!signal?.aborted);
      return new Promise<boolean>((resolve) => {
        // a signal (Ctrl-C from outside, SIGTERM) ends the briefing as q does
        const onAbort = () => briefing?.end(false);
        signal?.addEventListener('abort', onAbort, { once: true });
        briefing = {
          view,
          incidentDir,
          end: (begin) => {
            briefing = null;
            signal?.removeEventListener('abort', onAbort);
            if (starting === self) instance.rerender(frame());
            resolve(begin);
          },
        };
        instance.rerender(frame());
      });
    },
    close: () => (starting === self ? self.close() : Promise.resolve()),
  };
}

/** Closes the first frame if nothing took it over (the command ended or failed before its wizard started). */
export async function closeStartingScreen(): Promise<void> {
  await starting?.close();
}

/** The open first frame becomes the wizard's screen; without one (or on other streams), a new screen. */
function mount(node: ReactNode, opts: InteractiveOptions, stdout: NodeJS.WriteStream): Instance {
  const open = starting;
  starting = null;
  if (open && open.stdout === stdout) {
    open.instance.rerender(node);
    return open.instance;
  }
  if (open) void open.close();
  return render(node, inkOptions({ ...opts, stdout }));
}

/** Exit code for how the wizard ended. A machine that has not reached its final state was stopped by the user. */
export function exitCodeFor(actor: RecoveryActorRef): number {
  return exitCodeForMachine(actor.getSnapshot());
}

/** The wizard's screen for a recovery session (src/wizard/run.ts mounts it once the session runs). */
export function wizardScreen(opts: {
  context: string;
  headlessAlternative: string;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** a drill's verdict at the end (the drill command has the simulator that judges it) */
  judge?: DrillInfo['judge'];
}): Screen {
  return (s) =>
    runInteractive({
      actor: s.session.actor,
      incidentDir: s.incidentDir,
      context: opts.context,
      endpoint: s.endpoint,
      refreshNodes: s.refreshNodes,
      ...(s.drill ? { drill: { ...s.drill, ...(opts.judge ? { judge: opts.judge } : {}) } } : {}),
      flush: s.flush,
      signal: opts.signal,
      headlessAlternative: opts.headlessAlternative,
      cli: invokedAs(opts.env),
      env: opts.env,
    });
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
  // the wizard's views (and @xstate/react) load here, after the first frame is up
  const { App } = await import('../../components/App.js');
  const instance = mount(
    <ThemeProvider color={colorFromEnv(opts.env ?? process.env)}>
      <CliName.Provider value={opts.cli ?? 'talos-dr'}>
        <App
          actor={opts.actor}
          incidentDir={opts.incidentDir}
          context={opts.context}
          endpoint={endpoint}
          {...(opts.drill ? { drill: opts.drill } : {})}
          {...(opts.refreshNodes ? { refreshNodes: opts.refreshNodes } : {})}
        />
      </CliName.Provider>
    </ThemeProvider>,
    { ...opts, stdin },
    stdout,
  );
  // SIGINT/SIGTERM: stop as q does (the machine journals the stop and the screen names the resume command); a
  // machine that cannot take `abort` any more (already ended) just has its screen closed.
  const onAbort = () => {
    if (opts.actor.getSnapshot().can({ type: 'abort' })) opts.actor.send({ type: 'abort' });
    else instance.unmount();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // a stop asked for before the wizard was up (q on the first frame, a signal while the cluster was reached)
  if (opts.signal?.aborted) onAbort();
  try {
    await instance.waitUntilExit();
    return exitCodeFor(opts.actor);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await opts.flush?.();
    opts.actor.stop?.();
  }
}
