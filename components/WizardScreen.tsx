import type { ReactNode } from 'react';
import { Box } from 'ink';
import { Bullet } from './Bullet.js';
import { Width } from './Paragraph.js';
import { Header, type HeaderProps } from './Header.js';
import { HelpOverlay } from './HelpOverlay.js';
import { layoutFor } from './layout.js';
import { NodeTable } from './NodeTable.js';
import { StepList } from './StepList.js';
import { StepPanel } from './StepPanel.js';
import { useTone } from './theme.js';
import type { KeyHint, NodeRow, StepExplanation, StepView } from './view-model.js';

export interface WizardScreenProps {
  readonly header: HeaderProps;
  /** the current and pending steps */
  readonly upcoming: readonly StepView[];
  readonly stepCount: number;
  readonly nodes: readonly NodeRow[];
  readonly changed: ReadonlySet<string>;
  readonly explanation: StepExplanation | null;
  /** the current step for the help overlay: "Step 3 of 9: Snapshot" */
  readonly step?: { readonly n: number; readonly title: string };
  readonly keys: readonly KeyHint[];
  /** the last refusal and the latest warning, one sentence each */
  readonly notices: readonly string[];
  readonly showHelp: boolean;
  readonly incidentDir: string;
  readonly now: number;
  readonly columns: number;
  readonly rows: number;
  /** estimated height of the live part (children), so the layout can make room */
  readonly liveLines: number;
  readonly drill: boolean;
  /** the current step's live part: a prompt, a transfer bar, a wait spinner */
  readonly children?: ReactNode;
}

/**
 * The live region of the wizard, kept shorter than the terminal (the App writes finished steps above it, once, in
 * <Static>): where am I, what each node does, what Enter does, how to stop.
 */
export function WizardScreen(props: WizardScreenProps) {
  const tone = useTone();
  const layout = layoutFor({
    columns: props.columns,
    rows: props.rows,
    nodeCount: props.nodes.length,
    pendingSteps: props.upcoming.length,
    talosctlLines: props.explanation?.talosctl.length ?? 0,
    liveLines: props.liveLines,
    drill: props.drill,
  });
  return (
    <Width width={props.columns}>
      <Box flexDirection="column" width={props.columns}>
        <Header {...props.header} />
        {/* help takes the step list's place: the header still says which step this is */}
        {!layout.hideSteps && !props.showHelp && (
          <StepList steps={props.upcoming} stepCount={props.stepCount} compact={layout.compactSteps} />
        )}
        {props.showHelp && (
          <HelpOverlay
            keys={props.keys}
            incidentDir={props.incidentDir}
            {...(props.step && props.explanation
              ? { step: { ...props.step, count: props.stepCount, ...props.explanation } }
              : {})}
          />
        )}
        {/* hidden, not removed, under the help: an answer half typed is still there when the help closes */}
        <Box flexDirection="column" display={props.showHelp ? 'none' : 'flex'}>
          <NodeTable
            rows={props.nodes}
            changed={props.changed}
            now={props.now}
            width={props.columns}
            compact={layout.compactTable}
          />
          {props.notices.map((n) => (
            // the mark in colour, the sentence in the terminal's own colour: readable on light and dark themes
            <Bullet key={n} marker="! " {...(tone('warn') ? { markerColor: tone('warn') } : {})}>
              {n}
            </Bullet>
          ))}
          {props.explanation && (
            <StepPanel explanation={props.explanation} keys={props.keys} compact={layout.compactPanel}>
              {props.children}
            </StepPanel>
          )}
        </Box>
      </Box>
    </Width>
  );
}
