import { runBrandq } from './main.js';

// `pnpm failed`: an alias of `brandq failed`.
runBrandq(['failed', ...process.argv.slice(2)]);
