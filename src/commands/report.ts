/**
 * `talos-dr report [DIR]`: renders an incident folder's timeline as Markdown on stdout and rewrites DIR/report.md.
 * Without DIR: the newest incident folder in the current directory.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { JOURNAL_FILE } from '../journal/journal.js';
import { newestIncidentDir } from '../journal/incident.js';
import { writeReport } from '../journal/report.js';

const run: CommandRun = async (ctx) => {
  const positional = ctx.args.filter((a) => !a.startsWith('-'));
  const unknown = ctx.args.find((a) => a.startsWith('-'));
  if (unknown) throw new UsageError(`Unknown flag ${unknown}; usage: talos-dr report [DIR].`);
  if (positional.length > 1) throw new UsageError('Give one incident folder; usage: talos-dr report [DIR].');
  const dir = positional[0] ? resolve(ctx.io.cwd, positional[0]) : newestIncidentDir(ctx.io.cwd);
  if (!dir)
    throw new UserError(
      `There is no incident folder (talos-dr-*) in ${ctx.io.cwd}; give its path: talos-dr report DIR.`,
      1,
    );
  if (!existsSync(join(dir, JOURNAL_FILE)))
    throw new UserError(
      `${dir} has no ${JOURNAL_FILE}, so it is not an incident folder; give the folder talos-dr wrote.`,
      1,
    );
  let text: string;
  try {
    text = writeReport(dir);
  } catch (error) {
    throw new UserError(
      `Cannot write ${join(dir, 'report.md')} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the folder's permissions.`,
      1,
    );
  }
  ctx.io.stdout.write(text);
  return EXIT.ok;
};
export default run;
