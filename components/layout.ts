/**
 * How much the live region shows for a terminal size. Ink clears the whole screen (and the scrollback) every frame
 * once the live region is as tall as the terminal, so the region sheds its less urgent parts until its estimated
 * height fits: finished steps already live in <Static> history above it; then the pending steps fold into one line,
 * the step list goes (the header names the step), the panel loses its border, "why" and extra talosctl lines, and
 * last the table loses its hostname and last-event columns. Pure: no Ink.
 */
import { wrapWords } from './wrap.js';

export interface Layout {
  /** no step list: the header's "step n of m" says where we are */
  readonly hideSteps: boolean;
  /** one "next:" line instead of one line per pending step */
  readonly compactSteps: boolean;
  /** drop the panel's border, "why", extra talosctl lines, and "Next" when a live part speaks for itself */
  readonly compactPanel: boolean;
  /** drop the hostname and last-event columns */
  readonly compactTable: boolean;
}

export interface LayoutInput {
  readonly columns: number;
  readonly rows: number;
  readonly nodeCount: number;
  readonly pendingSteps: number;
  readonly talosctlLines: number;
  /** estimated height of the panel's live part (prompt, transfer, wait) and of a notice line above it */
  readonly liveLines: number;
  readonly drill: boolean;
}

/** Lines a text takes when wrapped at `width` columns, at words as the screens wrap it (components/wrap.ts). */
export const wrappedLines = (text: string, width: number): number => Math.max(1, wrapWords(text, width).length);

const CANDIDATES: readonly Layout[] = [
  { hideSteps: false, compactSteps: false, compactPanel: false, compactTable: false },
  { hideSteps: false, compactSteps: true, compactPanel: false, compactTable: false },
  { hideSteps: true, compactSteps: true, compactPanel: false, compactTable: false },
  { hideSteps: true, compactSteps: true, compactPanel: true, compactTable: false },
  { hideSteps: true, compactSteps: true, compactPanel: true, compactTable: true },
];

export function estimateHeight(l: Layout, i: LayoutInput): number {
  const header = i.drill ? 3 : 2;
  const steps = l.hideSteps ? 0 : l.compactSteps ? 2 : i.pendingSteps + 1;
  const table = i.nodeCount + 1;
  const panel = l.compactPanel
    ? 1 + i.liveLines + 1 + (i.liveLines === 0 ? 2 : 0)
    : 2 + 2 + 2 + i.talosctlLines + 1 + i.liveLines + 1;
  return header + steps + table + panel;
}

/**
 * The tallest terminal the live region plans for. Ink clears the screen and the scrollback when a frame starts while
 * the previous one is as tall as the terminal, which a resize makes so before the screen can lay itself out again:
 * planned for 24 rows, the region stays within any terminal down to 80×24, whatever size it is shrunk from.
 */
export const PLANNED_ROWS = 24;

export function layoutFor(input: LayoutInput): Layout {
  const i = { ...input, rows: Math.min(input.rows, PLANNED_ROWS) };
  const narrow = i.columns < 70;
  for (const l of CANDIDATES) {
    const layout = narrow ? { ...l, compactTable: true } : l;
    // one spare line: the cursor line Ink leaves below the frame
    if (estimateHeight(layout, i) <= i.rows - 2) return layout;
  }
  return CANDIDATES[CANDIDATES.length - 1] as Layout;
}
