import { Box, Text } from 'ink';
import { age, truncate } from './format.js';
import { useTone } from './theme.js';
import { cellKey, type NodeColumn, type NodeRow } from './view-model.js';

export interface NodeTableProps {
  readonly rows: readonly NodeRow[];
  /** cells that changed in the latest refresh (`cellKey(address, column)`), shown bold and underlined */
  readonly changed?: ReadonlySet<string>;
  /** ms since epoch "now", so a silent node shows how long ago it last answered */
  readonly now: number;
  /** terminal width; the last-event column takes what is left */
  readonly width: number;
  /** drop the hostname and last-event columns when rows are few or the terminal narrow */
  readonly compact?: boolean;
}

const TYPE_LABEL: Record<NodeRow['machineType'], string> = {
  controlplane: 'cp',
  init: 'init',
  worker: 'worker',
  unknown: '?',
};

const dash = '—';

function healthLabel(h: boolean | null): string {
  if (h === null) return dash;
  return h ? 'ok' : 'bad';
}

function reachLabel(row: NodeRow, now: number): string {
  if (row.reachable) return 'yes';
  return row.lastAnsweredAt === null ? 'no' : `no ${age(now - row.lastAnsweredAt)}`;
}

interface Column {
  readonly key: NodeColumn | 'address';
  readonly title: string;
  readonly width: number;
  readonly text: (row: NodeRow) => string;
}

function columnsFor(rows: readonly NodeRow[], now: number, width: number, compact: boolean): Column[] {
  /** a column as wide as its title or its widest value, at most `cap` */
  const fitted = (key: Column['key'], title: string, text: Column['text'], cap: number): Column => ({
    key,
    title,
    width: Math.min(cap, Math.max(title.length, ...rows.map((r) => text(r).length))),
    text,
  });
  const cols: Column[] = [fitted('address', 'NODE', (r) => r.address, 21)];
  if (!compact) cols.push(fitted('hostname', 'HOST', (r) => r.hostname ?? dash, 12));
  cols.push(
    fitted('reachable', 'UP', (r) => reachLabel(r, now), 7),
    { key: 'machineType', title: 'TYPE', width: 6, text: (r) => TYPE_LABEL[r.machineType] },
    { key: 'etcdService', title: 'ETCD', width: 9, text: (r) => r.etcdService ?? dash },
    { key: 'healthy', title: 'HEALTH', width: 6, text: (r) => healthLabel(r.healthy) },
    { key: 'members', title: 'MEMB', width: 4, text: (r) => (r.members === null ? dash : String(r.members)) },
    fitted('raftAppliedIndex', 'APPLIED', (r) => r.raftAppliedIndex ?? dash, 12),
  );
  const used = cols.reduce((sum, c) => sum + c.width + 1, 0);
  const rest = width - used - 1;
  if (!compact && rest >= 10)
    cols.push({ key: 'lastEvent', title: 'LAST EVENT', width: rest, text: (r) => r.lastEvent ?? dash });
  return cols;
}

/** The live view of every control-plane node, one row each, refreshed by one fan-out call every few seconds. */
export function NodeTable({ rows, changed, now, width, compact = false }: NodeTableProps) {
  const tone = useTone();
  const cols = columnsFor(rows, now, width, compact);
  if (rows.length === 0) return <Text color={tone('muted')}>No node has been asked yet.</Text>;
  return (
    <Box flexDirection="column">
      <Box>
        {cols.map((c) => (
          <Box key={c.key} width={c.width + 1}>
            <Text color={tone('muted')}>{c.title}</Text>
          </Box>
        ))}
      </Box>
      {rows.map((row) => (
        <Box key={row.address}>
          {cols.map((c) => {
            const isChanged = c.key !== 'address' && changed?.has(cellKey(row.address, c.key)) === true;
            const silent = c.key === 'reachable' && !row.reachable;
            const failing =
              (c.key === 'healthy' && row.healthy === false) ||
              (c.key === 'etcdService' &&
                (row.etcdService === 'Failed' || (row.etcdService === null && row.reachable)));
            return (
              <Box key={c.key} width={c.width + 1}>
                {/* a changed cell is bold and underlined in the terminal's own colour (bright yellow was
                    unreadable on light themes); a silent or failing one is red */}
                <Text
                  bold={isChanged || silent}
                  underline={isChanged}
                  color={silent || failing ? tone('bad') : undefined}
                >
                  {truncate(c.text(row), c.width)}
                </Text>
              </Box>
            );
          })}
        </Box>
      ))}
    </Box>
  );
}
