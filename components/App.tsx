import { useEffect, useMemo, useRef, useState } from 'react';
import { Box, Static, Text, useApp, useStdout } from 'ink';
import { shallowEqual, useSelector } from '@xstate/react';
import { transition } from 'xstate';
import type { RecoveryActor } from '../machines/recovery.js';
import { timeToRecoverMs } from '../machines/decisions.js';
import type { NodeView, RecoveryContext, RecoveryEvent } from '../machines/recovery-types.js';
import { GLOBAL_KEYS, RETRY_KEYS, TYPING_GLOBAL_KEYS } from './keymap.js';
import { optionLabel } from './choose/ChoiceList.js';
import { Copyable, Paragraph, Width } from './Paragraph.js';
import { BACK_EVENT, PromptArea, type PromptMode } from './PromptArea.js';
import { QuitNotice } from './QuitNotice.js';
import {
  assessmentStartedAt,
  overlayRefresh,
  currentStepRow,
  selectExplanation,
  selectNodeRows,
  selectNodeSource,
  selectOutcome,
  selectPromptView,
  selectSteps,
  selectTransfer,
  selectWarning,
  stepView,
  selectWait,
  userText,
} from './selectors.js';
import { STEP_TEXT } from './step-text.js';
import { wrappedLines } from './layout.js';
import { StepLine } from './StepList.js';
import { Summary } from './Summary.js';
import { useTone } from './theme.js';
import { shellWord, useCliName } from './cli-name.js';
import { TransferProgress } from './TransferProgress.js';
import { useHistory } from './use-history.js';
import { useNodeRefresh } from './use-node-refresh.js';
import { useNodeTracking } from './use-node-tracking.js';
import { useNow } from './use-now.js';
import { clock } from './format.js';
import { useTerminalSize } from './use-terminal-size.js';
import { useWizardKeys } from './use-wizard-keys.js';
import { WaitSpinner } from './WaitSpinner.js';
import { WizardScreen } from './WizardScreen.js';
import type { DrillScore, DrillVerdictView, KeyHint } from './view-model.js';

/** The recovery machine's actor (created, persisted and started by the command). */
export type RecoveryActorRef = RecoveryActor;

export interface DrillInfo {
  readonly scenario: string;
  readonly timeLimitSec?: number;
  /** asks the simulator how much data was lost, e.g. "none" or "12 writes after revision 4821" */
  readonly dataLost?: () => Promise<string> | string;
  /** the trainer's verdict on the ended run (the scenario's expected outcome and right answer against it) */
  readonly judge?: (context: RecoveryContext) => DrillVerdictView;
}

export interface AppProps {
  readonly actor: RecoveryActorRef;
  readonly incidentDir: string;
  /** the talosconfig context */
  readonly context: string;
  /** the endpoint in use, read at each render (the client fails over between endpoints) */
  readonly endpoint: () => string | undefined;
  readonly drill?: DrillInfo;
  /**
   * One fan-out call asking every node for its current state (the command supplies it from the Talos client), so
   * the node table stays live between the machine's own reads. Without it the table shows the machine's reads only.
   */
  readonly refreshNodes?: (nodes: string[]) => Promise<NodeView[]>;
  /** how often the node table refreshes itself; default REFRESH_MS (3 s) */
  readonly refreshMs?: number;
}

/**
 * Wires the recovery actor into the screens: reads it with selectors, sends the user's answers as events, and owns
 * the one exit path (the machine's final state, a machine error, or the user quitting). No business logic here: the
 * machine decides, the screens show.
 */
export function App(props: AppProps) {
  // Finished steps are written once, above everything else, and stay there through the summary or the quit notice.
  const stepRows = useSelector(props.actor, (s) => s.context.steps);
  const steps = useMemo(() => stepRows.map(stepView), [stepRows]);
  const history = useHistory(steps);
  return (
    <>
      <Static items={[...history]}>
        {(item) => <StepLine key={item.key} step={item.step} stepCount={steps.length} />}
      </Static>
      <AppBody {...props} />
    </>
  );
}

function AppBody({ actor, incidentDir, context, endpoint, drill, refreshNodes, refreshMs }: AppProps) {
  const { exit } = useApp();
  const { columns } = useTerminalSize();
  const status = useSelector(actor, (s) => s.status);
  const outcome = useSelector(actor, (s) => selectOutcome(s.context), shallowEqual);
  const steps = useSelector(actor, (s) => s.context.steps);
  const followUp = useSelector(actor, (s) => s.context.followUp);
  const [quitting, setQuitting] = useState(false);
  const [score, setScore] = useState<DrillScore | undefined>(undefined);
  // `abort` (q) and a "no" at the first question park the machine in stoppedByUser, which is not final: resume
  // continues from there. For the screen it is the end of this session all the same.
  const stoppedByUser = outcome?.kind === 'stopped-by-user';
  const ended = status === 'done' || status === 'error' || status === 'stopped' || stoppedByUser;
  const finalReady = quitting || stoppedByUser || (ended && (!drill || score !== undefined || status !== 'done'));

  // A drill's score needs the simulator's word on data loss; everything else is in the machine's context.
  useEffect(() => {
    if (!drill || status !== 'done') return;
    let live = true;
    void (async () => {
      const ctx = actor.getSnapshot().context;
      let dataLost = 'unknown';
      try {
        dataLost = (await drill.dataLost?.()) ?? 'unknown';
      } catch {
        dataLost = 'unknown (the simulator could not say)';
      }
      if (live) setScore(drillScore(ctx, drill, dataLost));
    })();
    return () => {
      live = false;
    };
  }, [status, actor, drill]);

  // The one exit: once the final frame is on screen.
  const exited = useRef(false);
  useEffect(() => {
    if (finalReady && !exited.current) {
      exited.current = true;
      exit();
    }
  }, [finalReady, exit]);

  if (quitting || stoppedByUser) {
    const row = currentStepRow({ steps });
    return (
      <QuitNotice
        incidentDir={incidentDir}
        columns={columns}
        {...(row ? { stoppedAt: `step ${row.n} of ${steps.length}: ${STEP_TEXT[row.name].title}` } : {})}
      />
    );
  }
  if (status === 'error') return <MachineError actor={actor} incidentDir={incidentDir} columns={columns} />;
  if (status === 'done' && outcome) {
    if (drill && !score) return <Text>Scoring the drill…</Text>;
    return (
      <Summary
        outcome={outcome}
        incidentDir={incidentDir}
        columns={columns}
        followUp={followUp.map(userText)}
        {...(score ? { score: { ...score, mistakesStopped: score.mistakesStopped.map(userText) } } : {})}
      />
    );
  }
  return (
    <LiveWizard
      actor={actor}
      incidentDir={incidentDir}
      context={context}
      endpoint={endpoint}
      {...(drill ? { drill } : {})}
      {...(refreshNodes ? { refreshNodes } : {})}
      {...(refreshMs ? { refreshMs } : {})}
      onQuit={() => {
        // Journalled by the machine as the user's stop; state.json then resumes at the step it left.
        if (actor.getSnapshot().can({ type: 'abort' })) actor.send({ type: 'abort' });
        setQuitting(true);
      }}
    />
  );
}

/** What Enter answers at a yes/no question: the recommended answer, or trying again after a failure. */
function yesNoDefault(recommended: RecoveryEvent | null | undefined, retryable: boolean): 'yes' | 'no' | null {
  if (recommended?.type === 'answer.yes' || recommended?.type === 'retry' || retryable) return 'yes';
  if (recommended?.type === 'answer.no') return 'no';
  return null;
}

/**
 * Whether the machine's "back" (BACK_EVENT) from its current question ends in stoppedByUser: worked out on the
 * machine's own transition (pure: no action runs), so the key bar names what Esc does wherever a question's No stops.
 */
function backEventStops(actor: RecoveryActor): boolean {
  const now = actor.getSnapshot();
  const [next] = transition(now.machine, now, BACK_EVENT);
  return next.value === 'stoppedByUser';
}

const NO_MODE: PromptMode = { typing: false, keys: [] };

function LiveWizard({
  actor,
  incidentDir,
  context,
  endpoint,
  drill,
  refreshNodes,
  refreshMs,
  onQuit,
}: Omit<AppProps, 'drill'> & { drill?: DrillInfo; onQuit: () => void }) {
  const now = useNow(1000);
  const { columns, rows } = useTerminalSize();
  const { stdout } = useStdout();
  const [showHelp, setShowHelp] = useState(false);
  const [mode, setMode] = useState<PromptMode>(NO_MODE);

  const stepRows = useSelector(actor, (s) => s.context.steps);
  const nodeSource = useSelector(actor, (s) => selectNodeSource(s.context), shallowEqual);
  const promptSource = useSelector(
    actor,
    (s) => ({ prompt: s.context.prompt, snapshot: s.context.snapshot, dataLossWindow: s.context.dataLossWindow }),
    shallowEqual,
  );
  const transfer = useSelector(actor, (s) => s.context.transfer);
  const wait = useSelector(actor, (s) => selectWait(s.context), shallowEqual);
  const refusal = useSelector(actor, (s) => s.context.notice);
  const warning = useSelector(actor, (s) => selectWarning(s.context));
  const attempt = useSelector(actor, (s) => s.context.attempt);
  // what the machine takes now, for the keys the screen offers: a way back, a retry
  const takesBack = useSelector(actor, (s) => s.can(BACK_EVENT));
  const takesRetry = useSelector(actor, (s) => s.can({ type: 'retry' }));
  // whether that "back" stops the run instead (a question whose No stops, resumable): Esc is then named for it
  const promptSeq = useSelector(actor, (s) => s.context.promptSeq);
  const backStops = useMemo(
    () => takesBack && backEventStops(actor),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- asked again for each new question
    [actor, takesBack, promptSeq],
  );

  const prompt = useMemo(() => selectPromptView(promptSource, now), [promptSource, now]);
  // A refused address is already said under the field by the confirmation itself; a warning (newer data on a live
  // member, a controller that may fight the recovery) is always shown, above all at a destructive prompt.
  const notices = [prompt?.kind === 'typed-address' ? null : refusal, warning]
    .map((n) => (n === null ? null : userText(n)))
    .filter((n, i, all): n is string => n !== null && all.indexOf(n) === i);

  const steps = useMemo(() => selectSteps({ steps: stepRows }), [stepRows]);
  const upcoming = steps.filter((s) => s.status === 'current' || s.status === 'pending');
  const current = currentStepRow({ steps: stepRows });
  const explanation = selectExplanation({ steps: stepRows });
  // The machine's rows, overlaid with the screen's own refresh when that was asked after the machine last read.
  const nodes = nodeSource.nodes;
  const refreshFn = useMemo(() => (refreshNodes ? () => refreshNodes(nodes) : undefined), [refreshNodes, nodes]);
  const refreshed = useNodeRefresh(refreshFn, `${current?.n ?? 0}:${current?.status ?? ''}`, nodeSource, refreshMs);
  const nodeViews = useMemo(() => {
    const rows = selectNodeRows(nodeSource);
    return refreshed && refreshed.basis === nodeSource ? overlayRefresh(rows, refreshed.views, nodeSource) : rows;
  }, [nodeSource, refreshed]);
  const tracked = useNodeTracking(nodeViews, now);
  const transferStart = useTransferStart(
    transfer ? `${transfer.node}:${transfer.label ?? ''}:${transfer.restarts}` : null,
    now,
  );
  const assessedAt = assessmentStartedAt({ steps: stepRows });

  // offered only when the machine takes it now (a failed action waiting for the user, not a scheduled retry)
  const canRetry = !prompt && attempt?.lastError != null && takesRetry;
  const typing = mode.typing && prompt !== null;
  useWizardKeys(
    {
      onQuit,
      onToggleHelp: () => setShowHelp((v) => !v),
      onCloseHelp: () => setShowHelp(false),
      ...(canRetry ? { onRetry: () => actor.send({ type: 'retry' }) } : {}),
    },
    { typing: typing && !showHelp, isActive: true },
  );

  const keys: KeyHint[] = [
    ...(prompt ? mode.keys : []),
    ...(canRetry ? RETRY_KEYS : []),
    ...(typing ? TYPING_GLOBAL_KEYS : GLOBAL_KEYS),
  ];
  const endpointNow = endpoint();

  return (
    <WizardScreen
      header={{
        context,
        ...(endpointNow ? { endpoint: endpointNow } : {}),
        stepNumber: current?.n ?? 1,
        stepCount: stepRows.length,
        stepTitle: current ? STEP_TEXT[current.name].title : '',
        ...(assessedAt !== null ? { sinceAssessmentMs: now - assessedAt } : {}),
        ...(drill
          ? { drill: { scenario: drill.scenario, ...(drill.timeLimitSec ? { timeLimitSec: drill.timeLimitSec } : {}) } }
          : {}),
      }}
      upcoming={upcoming}
      stepCount={stepRows.length}
      nodes={tracked.rows}
      changed={tracked.changed}
      explanation={explanation}
      {...(current ? { step: { n: current.n, title: STEP_TEXT[current.name].title } } : {})}
      keys={keys}
      notices={notices}
      showHelp={showHelp}
      incidentDir={incidentDir}
      now={now}
      columns={columns}
      rows={rows}
      liveLines={
        liveLinesFor(prompt, transfer !== null, wait !== null, columns) +
        notices.reduce((sum, n) => sum + wrappedLines(`! ${n}`, columns), 0)
      }
      drill={Boolean(drill)}
    >
      {prompt ? (
        <PromptArea
          prompt={prompt}
          send={(e) => actor.send(e)}
          accepts={(e) => actor.getSnapshot().can(e)}
          canGoBack={takesBack}
          backStops={backStops}
          yesNoDefault={yesNoDefault(prompt.recommended, takesRetry)}
          isActive={!showHelp}
          onMode={setMode}
        />
      ) : transfer ? (
        <TransferProgress transfer={selectTransfer({ transfer }, transferStart)!} now={now} width={columns - 4} />
      ) : wait ? (
        <WaitSpinner wait={wait} now={now} animate={Boolean(stdout.isTTY)} />
      ) : attempt?.lastError ? (
        <AttemptLine attempt={{ ...attempt, lastError: userText(attempt.lastError) }} now={now} />
      ) : (
        <WaitSpinner
          wait={{
            awaiting: current ? STEP_TEXT[current.name].working : 'the cluster to answer',
            since: current?.startedAt ?? now,
          }}
          now={now}
          animate={Boolean(stdout.isTTY)}
        />
      )}
    </WizardScreen>
  );
}

/** How tall the panel's live part will be, for the layout: a prompt's question, detail, options and field. */
function liveLinesFor(prompt: RecoveryContext['prompt'], transfer: boolean, wait: boolean, columns: number): number {
  const width = columns - 4;
  if (prompt)
    return (
      wrappedLines(prompt.question, width) +
      wrappedLines(prompt.detail, width) +
      (prompt.options ?? []).reduce(
        (sum, o) =>
          sum +
          wrappedLines(
            optionLabel(o.label, prompt.recommended?.type === 'choose' && prompt.recommended.option === o.id),
            width - 5,
          ),
        0,
      ) +
      (prompt.recommended ? 1 : 0) +
      2
    );
  if (transfer) return 3;
  return wait ? 2 : 2;
}

/** When the current transfer (or its latest restart from zero) began, for the rate and ETA, on the screen's clock. */
function useTransferStart(key: string | null, now: number): number {
  const [started, setStarted] = useState<{ key: string | null; at: number }>({ key, at: now });
  if (started.key !== key) {
    setStarted({ key, at: now });
    return now;
  }
  return started.at;
}

function AttemptLine({ attempt, now }: { attempt: NonNullable<RecoveryContext['attempt']>; now: number }) {
  const tone = useTone();
  const next =
    attempt.nextAt !== null ? ` — next try in ${Math.max(0, Math.ceil((attempt.nextAt - now) / 1000))}s` : '';
  // a node that stopped answering (a reboot) is waited for, not counted against the tries: say what is awaited
  const line = attempt.awaiting
    ? `${attempt.awaiting.what} — attempt ${attempt.count}, waiting since ${clock(Math.max(0, now - attempt.awaiting.since))}`
    : `${attempt.action}${attempt.node ? ` on ${attempt.node}` : ''}: attempt ${attempt.count} of ${attempt.max}${next}`;
  return (
    <Box flexDirection="column">
      <Text>
        <Text color={tone('warn')}>{'! '}</Text>
        {line}
      </Text>
      {attempt.lastError && <Text color={tone('bad')}>{`✗ ${attempt.lastError}`}</Text>}
    </Box>
  );
}

function MachineError({
  actor,
  incidentDir,
  columns,
}: {
  actor: RecoveryActorRef;
  incidentDir: string;
  columns: number;
}) {
  const tone = useTone();
  const cli = useCliName();
  const error = useSelector(actor, (s) => (s as { error?: unknown }).error);
  const detail = error instanceof Error ? error.message.split('\n')[0] : String(error ?? 'unknown error');
  return (
    <Width width={columns}>
      <Box flexDirection="column">
        <Paragraph bold lead="✗ " {...(tone('bad') ? { leadColor: tone('bad') } : {})}>
          {`The wizard stopped on an unexpected error (${detail}).`}
        </Paragraph>
        <Paragraph>{`Everything done so far is saved in ${incidentDir}; this continues from there:`}</Paragraph>
        <Copyable bold>{`${cli} resume ${shellWord(incidentDir)}`}</Copyable>
      </Box>
    </Width>
  );
}

/** The drill's score: time from the assessment to the end, data lost (the simulator's word), guard refusals. */
export function drillScore(ctx: RecoveryContext, drill: DrillInfo, dataLost: string): DrillScore {
  return {
    scenario: drill.scenario,
    // the one figure: the same function gives autopilot's score line and the report
    timeToRecoverMs: timeToRecoverMs(ctx),
    ...(drill.timeLimitSec !== undefined ? { timeLimitSec: drill.timeLimitSec } : {}),
    dataLost,
    mistakesStopped: ctx.guardStops.map((g) => g.message),
    ...(drill.judge ? { verdict: drill.judge(ctx) } : {}),
  };
}
