import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/talos/generated/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // The house rules of PRODUCT.md §7: machines are pure, components never talk to the cluster,
    // the simulator knows nothing of the wizard.
    files: ['machines/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['ink', 'ink-*', 'react', '@inkjs/*'], message: 'machines/ must not import Ink or React.' },
            {
              group: ['node:fs', 'node:fs/*', 'fs', 'fs/*', 'node:net', 'node:child_process'],
              message: 'machines/ does no I/O of its own; take it as an actor.',
            },
            { group: ['@grpc/*'], message: 'machines/ must not use grpc directly; take it as an actor.' },
            {
              group: ['**/src/commands/**', '**/src/wizard/**'],
              message: 'machines/ are pure: the runtime (src/wizard) and the commands call them, not the reverse.',
            },
          ],
        },
      ],
    },
  },
  { files: ['components/**/*.{ts,tsx}', 'src/**/*.tsx', 'test/**/*.tsx'], ...reactHooks.configs.flat.recommended },
  {
    files: ['components/**/*.ts', 'components/**/*.tsx'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/src/talos/client*', '**/src/talos/connection*', '@grpc/*'],
              message: 'components/ never call the Talos client.',
            },
            { group: ['**/src/sim/**'], message: 'components/ know nothing of the simulator.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/sim/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/machines/**', '**/components/**', '**/commands/**', '**/wizard/**', 'ink', 'react'],
              message: 'The simulator knows nothing of the wizard.',
            },
          ],
        },
      ],
    },
  },
  {
    // The layers under the commands never import them; below the wizard's runtime, nothing imports it either.
    files: ['src/talos/**/*.ts', 'src/etcd/**/*.ts', 'src/journal/**/*.ts', 'src/backups/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/commands/**'], message: 'Lower layers never import src/commands (PRODUCT.md §7).' },
            { group: ['**/wizard/**'], message: 'Only src/commands and the entry call into src/wizard.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/wizard/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/commands/**'], message: 'src/wizard is called by src/commands, never the reverse.' },
            {
              group: ['ink', 'ink-*', '@inkjs/*', '**/components/**'],
              message: 'Only components/ and the entry import Ink.',
            },
          ],
        },
      ],
    },
  },
);
