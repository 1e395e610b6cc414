import { runBrandq } from './main.js';

// `pnpm checkpoint`: an alias of `brandq checkpoint`.
runBrandq(['checkpoint', ...process.argv.slice(2)]);
