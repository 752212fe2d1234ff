/**
 * How much the live region shows for a terminal size. Ink clears the whole screen (and the scrollback) every frame
 * once the live region is as tall as the terminal, so the region sheds its less urgent lines before that can happen:
 * finished steps already live in <Static> history above it; on a small terminal the step list (the header names
 * the step), the panel's "why", its border, and "Next" (when a prompt says what happens) go first.
 */
export interface Layout {
  /** no step list: the header's "step n of m" says where we are */
  readonly hideSteps: boolean;
  /** one "next:" line instead of one line per pending step */
  readonly compactSteps: boolean;
  /** drop the panel's "why", extra talosctl lines, its border, and "Next" when a prompt speaks for itself */
  readonly compactPanel: boolean;
  /** drop the hostname and last-event columns */
  readonly compactTable: boolean;
}

export function layoutFor(columns: number, rows: number, nodeCount: number): Layout {
  return {
    hideSteps: rows < 30,
    compactSteps: rows < 40,
    compactPanel: rows < 26 + nodeCount,
    compactTable: columns < 70 || rows < 18,
  };
}
