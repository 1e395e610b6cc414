import { countChatPromptTokens } from './workspace.js';

/** The chat request of call `n` of process `pid` in `pnpm bench:limits` (about 270 prompt tokens). */
export function benchMessages(pid: number, n: number): { role: string; content: string }[] {
  return [
    { role: 'system', content: 'You extract facts about brands. Answer with JSON only.' },
    { role: 'user', content: `Brand: Bench ${pid} ${n}\nURL: https://example.com/${pid}/${n}\n${'A brand that makes and sells goods. '.repeat(30)}` },
  ];
}

export function benchPromptTokens(pid: number, n: number): number {
  return countChatPromptTokens(benchMessages(pid, n));
}
