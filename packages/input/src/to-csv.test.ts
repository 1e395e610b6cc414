import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { toCsv } from './to-csv.js';

describe('toCsv', () => {
  it('writes a header and one CRLF-terminated record per row, in column order', () => {
    expect(toCsv([{ name: 'Nike', country: 'US', extra: 'ignored' }], ['name', 'country'])).toBe(
      'name,country\r\nNike,US\r\n',
    );
  });

  it('quotes fields containing commas, quotes or line breaks and doubles the quotes', () => {
    const csv = toCsv([{ a: 'P&G, Co.', b: 'say "hi"', c: 'two\nlines', d: 'plain' }], ['a', 'b', 'c', 'd']);
    expect(csv).toBe('a,b,c,d\r\n"P&G, Co.","say ""hi""","two\nlines",plain\r\n');
  });

  it('neutralizes formulas in every string field, and still quotes them when needed', () => {
    const csv = toCsv([{ name: '=HYPERLINK("http://x","y")', note: '@x', n: -12.5 }], ['name', 'note', 'n']);
    expect(csv).toBe(`name,note,n\r\n"'=HYPERLINK(""http://x"",""y"")",'@x,-12.5\r\n`);
  });

  it('writes missing values as empty, numbers and booleans as-is, dates as ISO and objects as JSON', () => {
    const row = {
      missing: undefined,
      nothing: null,
      count: 3,
      ok: false,
      at: new Date('2024-01-02T03:04:05.000Z'),
      sources: ['a.com', 'b.com'],
    };
    expect(toCsv([row], Object.keys(row))).toBe(
      'missing,nothing,count,ok,at,sources\r\n,,3,false,2024-01-02T03:04:05.000Z,"[""a.com"",""b.com""]"\r\n',
    );
  });

  it('strips control characters from fields and turns CR LF inside a field into LF', () => {
    expect(toCsv([{ a: 'x\u0000y\r\nz' }], ['a'])).toBe('a\r\n"xy\nz"\r\n');
  });

  it('writes only the header for no rows', () => {
    expect(toCsv([], ['brand', 'website'])).toBe('brand,website\r\n');
  });

  it('round-trips through a CSV parser', () => {
    const rows = [
      { brand: 'Ben "n" Jerry\'s', note: 'a,b\nc' },
      { brand: 'مطعم الشام', note: '' },
    ];
    expect(parse(toCsv(rows, ['brand', 'note']), { columns: true })).toEqual(rows);
  });
});
