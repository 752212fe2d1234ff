import { createContext, useContext, type ReactNode } from 'react';
import { Box, Text } from 'ink';
import { wrapWords } from './wrap.js';

/** The columns a sentence may use where it is drawn: the screen's width less borders, padding and markers. */
const WidthContext = createContext(80);

export const useWidth = (): number => useContext(WidthContext);

/** The width given to what is inside, `less` columns narrower than the width here (or exactly `width`). */
export function Width({ less = 0, width, children }: { less?: number; width?: number; children: ReactNode }) {
  const outer = useContext(WidthContext);
  return <WidthContext.Provider value={Math.max(10, width ?? outer - less)}>{children}</WidthContext.Provider>;
}

export interface ParagraphProps {
  readonly children: string;
  /** a label before the sentence on its first line, e.g. "Why: " (bold) */
  readonly lead?: string;
  /** the lead's colour, e.g. a warning's label */
  readonly leadColor?: string;
  readonly bold?: boolean;
  readonly color?: string;
}

/**
 * A sentence wrapped at word boundaries for the width here: no line starts with a space, and no word (a path, a
 * command) is cut in two.
 */
export function Paragraph({ children, lead = '', leadColor, bold, color }: ParagraphProps) {
  const width = useWidth();
  const lines = wrapWords(`${lead}${children}`, width);
  return (
    <Box flexDirection="column">
      {lines.map((line, i) => {
        const hasLead = i === 0 && lead !== '' && line.startsWith(lead.trimEnd());
        const rest = hasLead ? line.slice(lead.length) : line;
        return (
          // A line longer than the width is one word: it is written whole (the terminal folds it), never cut.
          <Box key={i} flexShrink={0} {...(line.length > width ? { width: line.length } : {})}>
            <Text {...(bold ? { bold } : {})} {...(color ? { color } : {})}>
              {hasLead && (
                <Text bold {...(leadColor ? { color: leadColor } : {})}>
                  {lead}
                </Text>
              )}
              {rest}
            </Text>
          </Box>
        );
      })}
    </Box>
  );
}

/**
 * One line to copy and paste (a command, a folder): never wrapped or cut; longer than the width, it is written whole
 * and the terminal folds it.
 */
export function Copyable({ children, bold }: { readonly children: string; readonly bold?: boolean }) {
  const width = useWidth();
  return (
    <Box flexShrink={0} {...(children.length > width ? { width: children.length } : {})}>
      <Text {...(bold ? { bold } : {})}>{children}</Text>
    </Box>
  );
}
