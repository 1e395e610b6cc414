#!/usr/bin/env node
import { runBrandq } from './main.js';

runBrandq(process.argv.slice(2));
