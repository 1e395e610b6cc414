import { FakeOpenAIServer, type FakeOpenAIOptions } from './openai/fake-openai.js';
import { FakeSheetsServer, type FakeSheetsOptions } from './sheets/fake-sheets.js';
import { FakeTavilyServer, type FakeTavilyOptions } from './tavily/fake-tavily.js';

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
  const server = new FakeOpenAIServer(opts);
  await server.listen();
  return server;
}

export async function startFakeTavily(opts: FakeTavilyOptions = {}): Promise<FakeTavilyServer> {
  const server = new FakeTavilyServer(opts);
  await server.listen();
  return server;
}

export async function startFakeSheets(opts: FakeSheetsOptions = {}): Promise<FakeSheetsServer> {
  const server = new FakeSheetsServer(opts);
  await server.listen();
  return server;
}

export interface FakesOptions {
  openai?: FakeOpenAIOptions;
  tavily?: FakeTavilyOptions;
  sheets?: FakeSheetsOptions;
}

export interface Fakes {
  openai: FakeOpenAIServer;
  tavily: FakeTavilyServer;
  sheets: FakeSheetsServer;
  /** Environment that points brandq at the fakes (keys are accepted by the fakes unless configured). */
  env: Record<string, string>;
  /** Resets ledgers, limiter windows and queued faults of all three (sheet data stays). */
  reset(): void;
  close(): Promise<void>;
}

export async function startFakes(opts: FakesOptions = {}): Promise<Fakes> {
  const [openai, tavily, sheets] = await Promise.all([
    startFakeOpenAI(opts.openai),
    startFakeTavily(opts.tavily),
    startFakeSheets(opts.sheets),
  ]);
  return {
    openai,
    tavily,
    sheets,
    env: {
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: opts.openai?.apiKey ?? 'sk-fake',
      TAVILY_BASE_URL: tavily.url,
      TAVILY_API_KEY: opts.tavily?.apiKey ?? 'tvly-fake',
      GOOGLE_SHEETS_ROOT_URL: sheets.url,
      GOOGLE_SHEETS_ACCESS_TOKEN: opts.sheets?.apiKey ?? 'fake-token',
    },
    reset() {
      openai.reset();
      tavily.reset();
      sheets.reset();
    },
    async close() {
      await Promise.all([openai.close(), tavily.close(), sheets.close()]);
    },
  };
}
