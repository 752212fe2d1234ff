import { Box } from 'ink';
import { Bullet } from '../Bullet.js';
import { useTone } from '../theme.js';
import { useChoice } from './use-choice.js';

export interface ChoiceListProps {
  readonly options: readonly { readonly id: string; readonly label: string }[];
  /** the option the cursor starts on (the recommended one); default the first */
  readonly initialIndex?: number;
  readonly recommendedId?: string;
  /** default true */
  readonly isActive?: boolean;
  readonly onChoose: (id: string) => void;
}

/** "keep waiting (recommended)": the mark is added once, also when the option's own label already carries it. */
export const optionLabel = (label: string, recommended: boolean): string =>
  recommended && !/\(recommended\)/.test(label) ? `${label} (recommended)` : label;

/** A short list of numbered options; the recommended one is marked and the cursor starts on it. */
export function ChoiceList({ options, initialIndex = 0, recommendedId, isActive = true, onChoose }: ChoiceListProps) {
  const tone = useTone();
  const state = useChoice({
    count: options.length,
    initialIndex,
    isActive,
    onChoose: (i) => {
      const option = options[i];
      if (option) onChoose(option.id);
    },
  });
  return (
    <Box flexDirection="column">
      {options.map((o, i) => {
        const selected = i === state.index;
        const color = selected ? tone('active') : undefined;
        return (
          <Bullet key={o.id} marker={`${selected ? '❯' : ' '} ${i + 1}. `} {...(color ? { color } : {})}>
            {optionLabel(o.label, o.id === recommendedId)}
          </Bullet>
        );
      })}
    </Box>
  );
}
