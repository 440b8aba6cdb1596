// The linter is a gate, like the compiler: no floating promises, return-await in try/catch,
// alphabetized imports, no devDependencies outside test/, bench/ and bin/, no focused or skipped tests.
import importPlugin from 'eslint-plugin-import';
import jestPlugin from 'eslint-plugin-jest';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', 'coverage/**', '**/dist/**', 'packages/cdk/assets/**', '**/*.js', '**/*.mjs', '**/*.d.ts'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'import/order': ['error', { alphabetize: { order: 'asc', caseInsensitive: true }, 'newlines-between': 'never' }],
      'import/no-extraneous-dependencies': ['error', { devDependencies: ['test/**', 'bench/**', 'bin/**'] }],
      // consumer/ is also a package whose `main` is its build (consumer/dist): a directory import
      // would load that build, or a stale one, instead of the sources.
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(\\.\\./)+consumer/?$', message: 'import consumer/index, not the consumer/ directory (its package.json points at the build)' }] },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    plugins: { jest: jestPlugin },
    rules: {
      'jest/no-focused-tests': 'error',
      'jest/no-disabled-tests': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
