import { Box, Text } from 'ink';
import { bytes as fmtBytes, clock } from './format.js';
import { useTone } from './theme.js';
import type { TransferView } from './view-model.js';

export interface TransferProgressProps {
  readonly transfer: TransferView;
  /** ms since epoch, for the rate and ETA */
  readonly now: number;
  /** characters available for the whole line (bar included) */
  readonly width: number;
}

/** Rate in bytes per second since the start; null until there is something to divide. */
export function transferRate(t: TransferView, now: number): number | null {
  const seconds = (now - t.startedAt) / 1000;
  return seconds > 0.2 && t.bytes > 0 ? t.bytes / seconds : null;
}

/**
 * "Uploading snapshot to 127.0.0.2  [██████░░░░]  3.1 MiB / 8.0 MiB  1.2 MiB/s  ETA 0:04". Without a known total
 * (a download), the bar gives way to the bytes so far and the rate.
 */
export function TransferProgress({ transfer, now, width }: TransferProgressProps) {
  const tone = useTone();
  const rate = transferRate(transfer, now);
  const rateText = rate === null ? '…' : `${fmtBytes(Math.round(rate))}/s`;
  const { total } = transfer;
  if (total === undefined || total <= 0) {
    return (
      <Box flexDirection="column">
        <Text wrap="truncate-end">{transfer.label}</Text>
        <Text>{`${fmtBytes(transfer.bytes)} so far  ${rateText}`}</Text>
      </Box>
    );
  }
  const fraction = Math.min(1, transfer.bytes / total);
  const eta = rate === null ? '…' : clock(((total - transfer.bytes) / rate) * 1000);
  const figures = `${fmtBytes(transfer.bytes)} / ${fmtBytes(total)}  ${rateText}  ETA ${eta}`;
  const percent = `${String(Math.floor(fraction * 100)).padStart(3)}%`;
  const barWidth = Math.max(10, Math.min(40, width - percent.length - 3));
  const filled = Math.round(fraction * barWidth);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">{transfer.label}</Text>
      <Text>
        <Text color={tone('active')}>{'█'.repeat(filled)}</Text>
        <Text color={tone('muted')}>{'░'.repeat(barWidth - filled)}</Text>
        {` ${percent}`}
      </Text>
      <Text wrap="truncate-end">{figures}</Text>
    </Box>
  );
}
