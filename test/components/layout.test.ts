import { describe, expect, it } from 'vitest';
import { estimateHeight, layoutFor, PLANNED_ROWS } from '../../components/layout.js';

const base = { columns: 80, nodeCount: 3, pendingSteps: 7, talosctlLines: 2, liveLines: 4, drill: true };

describe('layoutFor: the live region stays shorter than the terminal', () => {
  it('shows everything when it fits the 80×24 budget', () => {
    expect(layoutFor({ ...base, nodeCount: 1, pendingSteps: 2, rows: 60 })).toEqual({
      hideSteps: false,
      compactSteps: false,
      compactPanel: false,
      compactTable: false,
    });
  });

  it('sheds the step list before the panel, and the panel before the table', () => {
    const mid = layoutFor({ ...base, rows: 24 });
    expect(mid.hideSteps).toBe(true);
    expect(mid.compactPanel).toBe(false);
    expect(mid.compactTable).toBe(false);
    const small = layoutFor({ ...base, rows: 20, liveLines: 9 });
    expect(small).toMatchObject({ hideSteps: true, compactPanel: true, compactTable: false });
  });

  it('never chooses a layout whose estimate reaches the bottom row when one fits', () => {
    for (let rows = 18; rows <= 50; rows++)
      for (const nodeCount of [1, 3, 5])
        for (const liveLines of [0, 3, 8]) {
          const input = { ...base, rows, nodeCount, liveLines };
          const layout = layoutFor(input);
          const smallest = estimateHeight(
            { hideSteps: true, compactSteps: true, compactPanel: true, compactTable: true },
            input,
          );
          if (smallest <= rows - 2) expect(estimateHeight(layout, input)).toBeLessThanOrEqual(rows - 2);
        }
  });

  it('plans for 24 rows on a taller terminal: shrunk back to 80×24, the region is never taller than it', () => {
    for (const rows of [30, 40, 60, 120])
      for (const nodeCount of [1, 3, 5]) {
        const input = { ...base, rows, nodeCount };
        expect(estimateHeight(layoutFor(input), input)).toBeLessThanOrEqual(PLANNED_ROWS - 2);
      }
  });

  it('drops table columns on a narrow terminal whatever its height', () => {
    expect(layoutFor({ ...base, columns: 60, rows: 60 }).compactTable).toBe(true);
  });
});
