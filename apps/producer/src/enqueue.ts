import { runBrandq } from './main.js';

// `pnpm enqueue`: an alias of `brandq enqueue`.
runBrandq(['enqueue', ...process.argv.slice(2)]);
