/**
 * How much the live region shows for a terminal size. Ink clears the whole screen (and the scrollback) every frame
 * once the live region is as tall as the terminal, so the region shrinks before that can happen: finished steps
 * live in <Static> history, and the panel and table lose their less urgent lines on small terminals.
 */
export interface Layout {
  /** one line per pending step, or one "next:" line */
  readonly compactSteps: boolean;
  /** drop the panel's "why" and extra talosctl lines */
  readonly compactPanel: boolean;
  /** drop the hostname and last-event columns */
  readonly compactTable: boolean;
}

export function layoutFor(columns: number, rows: number, nodeCount: number): Layout {
  return {
    compactSteps: rows < 40,
    compactPanel: rows < 26 + nodeCount,
    compactTable: columns < 70 || rows < 18,
  };
}
