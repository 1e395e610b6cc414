import { runBrandq } from './main.js';

// `pnpm export`: an alias of `brandq export`.
runBrandq(['export', ...process.argv.slice(2)]);
