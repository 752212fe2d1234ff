// Preloaded with `node --import ./bench/load-trace.mjs` by bench/startup.mjs: records every module URL the program
// resolves into the file named by BENCH_LOAD_TRACE, so the bench can tell whether `--help` loaded Ink.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.BENCH_LOAD_TRACE) appendFileSync(process.env.BENCH_LOAD_TRACE, r.url + '\\n');
  return r;
}`)}`,
);
