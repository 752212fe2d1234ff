import { Text } from 'ink';
import { useTone } from './theme.js';
import type { KeyHint } from './view-model.js';

/** "Enter continue · q quit (saved) · ? help": what every key does right now, on one line. */
export function KeyBar({ keys }: { readonly keys: readonly KeyHint[] }) {
  const tone = useTone();
  return (
    <Text wrap="truncate-end">
      {keys.map((k, i) => (
        <Text key={k.key}>
          {i > 0 && <Text color={tone('muted')}> · </Text>}
          <Text bold color={tone('accent')}>
            {k.key}
          </Text>
          <Text>{` ${k.does}`}</Text>
        </Text>
      ))}
    </Text>
  );
}
