import { runBrandq } from './main.js';

// `pnpm status`: an alias of `brandq status`.
runBrandq(['status', ...process.argv.slice(2)]);
