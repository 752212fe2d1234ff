import type { ReactNode } from 'react';
import { Box, Text } from 'ink';
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
    <Box flexDirection="column" width={props.columns}>
      <Header {...props.header} />
      {!layout.hideSteps && (
        <StepList steps={props.upcoming} stepCount={props.stepCount} compact={layout.compactSteps} />
      )}
      {props.showHelp ? (
        <HelpOverlay keys={props.keys} incidentDir={props.incidentDir} />
      ) : (
        <>
          <NodeTable
            rows={props.nodes}
            changed={props.changed}
            now={props.now}
            width={props.columns}
            compact={layout.compactTable}
          />
          {props.notices.map((n) => (
            <Text key={n} color={tone('warn')}>{`! ${n}`}</Text>
          ))}
          {props.explanation && (
            <StepPanel explanation={props.explanation} keys={props.keys} compact={layout.compactPanel}>
              {props.children}
            </StepPanel>
          )}
        </>
      )}
    </Box>
  );
}
