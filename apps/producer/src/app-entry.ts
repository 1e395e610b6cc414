import { fileURLToPath } from 'node:url';

/**
 * The entry point of a sibling app (worker, board), in the same form as this module: the
 * TypeScript source when brandq runs from source, the compiled `dist/main.js` when it runs
 * from the build.
 */
export function appEntry(app: 'worker' | 'board'): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? `../../${app}/src/main.ts` : `../../${app}/dist/main.js`, import.meta.url));
}
